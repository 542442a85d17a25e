"""Checkpoints: round trips through signing, and a table of named invalid bodies."""

from __future__ import annotations

import base64

import pytest

from carewall.errors import InputError, VerificationError
from carewall.ledger.checkpoint import (
    Checkpoint,
    open_checkpoint,
    parse_checkpoint,
    sign_checkpoint,
)
from carewall.ledger.merkle import hash_leaf
from carewall.ledger.note import Signer, sign_note
from carewall.types import RootHash

ROOT = RootHash(hash_leaf(b"root"))
R64 = base64.b64encode(ROOT).decode()


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer.generate("carewall.example/log")


def test_round_trip(signer: Signer) -> None:
    cp = Checkpoint("carewall.example/log", 42, ROOT, ("ext one",))
    note = sign_checkpoint(cp, signer)
    assert note.startswith(f"carewall.example/log\n42\n{R64}\next one\n\n— carewall.example/log ")
    assert open_checkpoint(note, [signer.verifier()]) == cp


def test_origin_must_name_the_key(signer: Signer) -> None:
    with pytest.raises(InputError, match="origin"):
        sign_checkpoint(Checkpoint("other.example/log", 1, ROOT), signer)
    # a note signed by the right key over a checkpoint for another origin does not open
    note = sign_note(Checkpoint("other.example/log", 1, ROOT).to_text(), [signer])
    with pytest.raises(VerificationError, match="no verifiable signatures"):
        open_checkpoint(note, [signer.verifier()])


def test_sign_refuses_short_root(signer: Signer) -> None:
    with pytest.raises(InputError, match="32 bytes"):
        sign_checkpoint(Checkpoint(signer.name, 1, RootHash(b"short")), signer)


@pytest.mark.parametrize(
    ("body", "line"),
    [
        pytest.param(f"o\n1\n{R64}", "last", id="no-final-newline"),
        pytest.param("\n1\n" + R64 + "\n", "origin", id="empty-origin"),
        pytest.param(" o\n1\n" + R64 + "\n", "origin", id="space-origin"),
        pytest.param("o\n", "size", id="only-origin"),
        pytest.param("o\n1\n", "root", id="no-root"),
        pytest.param(f"o\n01\n{R64}\n", "size", id="leading-zero"),
        pytest.param(f"o\n+1\n{R64}\n", "size", id="plus-sign"),
        pytest.param(f"o\n-1\n{R64}\n", "size", id="negative"),
        pytest.param(f"o\n１\n{R64}\n", "size", id="non-ascii-digit"),
        pytest.param(f"o\n{2**64}\n{R64}\n", "size", id="over-64-bits"),
        pytest.param("o\n1\nnot base64!\n", "root", id="root-not-base64"),
        pytest.param("o\n1\nYmFuYW5hcw==\n", "root", id="root-not-32-bytes"),
        pytest.param(f"o\n1\n{R64}\n\n", "extension", id="empty-extension"),
    ],
)
def test_invalid_bodies_name_the_line(body: str, line: str) -> None:
    with pytest.raises(VerificationError, match=f"checkpoint {line} line") as err:
        parse_checkpoint(body)
    assert err.value.field == f"checkpoint.{line}"


def test_size_zero_and_max_are_valid() -> None:
    assert parse_checkpoint(f"o\n0\n{R64}\n").size == 0
    assert parse_checkpoint(f"o\n{2**64 - 1}\n{R64}\n").size == 2**64 - 1
