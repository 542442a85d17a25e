"""Signed notes made by carewall's own keys: round trips and named invalid inputs."""

from __future__ import annotations

import pytest

from carewall.errors import InputError, VerificationError
from carewall.ledger.note import Signer, Verifier, key_id, open_note, parse_note, sign_note

TEXT = "carewall.example/log\n3\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer.generate("carewall.example/log")


def test_generated_key_round_trips(signer: Signer) -> None:
    again = Signer.from_skey(signer.skey())
    assert again.vkey() == signer.vkey()
    v = Verifier.from_vkey(signer.vkey())
    assert (v.name, v.key_id) == (signer.name, signer.key_id)
    assert len(signer.key_id) == 4
    assert v.verify(TEXT, signer.sign(TEXT))
    assert len(signer.sign(TEXT)) == 64


def test_sign_and_open(signer: Signer) -> None:
    other = Signer.generate("witness.example")
    note = sign_note(TEXT, [signer, other])
    opened = open_note(note, [signer.verifier()])
    assert opened.text == TEXT
    assert [s.name for s in opened.signatures] == [signer.name, other.name]
    assert [s.name for s in opened.verified] == [signer.name]
    both = open_note(note, [signer.verifier(), other.verifier()])
    assert len(both.verified) == 2


def test_key_id_definition(signer: Signer) -> None:
    raw = Verifier.from_vkey(signer.vkey())
    pub = __import__("base64").b64decode(signer.vkey().split("+", 2)[2])
    assert key_id(signer.name, pub) == raw.key_id


def test_same_name_other_key_is_ignored_not_trusted(signer: Signer) -> None:
    impostor = Signer.generate(signer.name)
    note = sign_note(TEXT, [impostor])
    with pytest.raises(VerificationError, match="no verifiable signatures"):
        open_note(note, [signer.verifier()])


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda n: n.replace("\n3\n", "\n4\n"), id="text-changed"),
        pytest.param(lambda n: n[:-10] + ("A" if n[-10] != "A" else "B") + n[-9:], id="sig-byte"),
    ],
)
def test_tampering_is_an_error(signer: Signer, tamper: object) -> None:
    note = tamper(sign_note(TEXT, [signer]))  # type: ignore[operator]
    with pytest.raises(VerificationError):
        open_note(note, [signer.verifier()])


@pytest.mark.parametrize(
    "note",
    [
        pytest.param(TEXT, id="no-signature-block"),
        pytest.param(TEXT + "\n", id="empty-signature-block"),
        pytest.param(TEXT + "\n— a QUFBQUFB", id="no-final-newline"),
        pytest.param(TEXT + "\n- a QUFBQUFB\n", id="hyphen-not-em-dash"),
        pytest.param(TEXT + "\n— a+b QUFBQUFB\n", id="plus-in-name"),
        pytest.param(TEXT + "\n— a QUFB\n", id="signature-too-short"),
        pytest.param(TEXT + "\n— a !!!!\n", id="not-base64"),
        pytest.param(TEXT + "\n— a\n", id="no-signature"),
        pytest.param("a\tb\n\n— a QUFBQUFB\n", id="control-character"),
    ],
)
def test_malformed_notes(note: str) -> None:
    with pytest.raises(VerificationError, match="malformed note"):
        parse_note(note)


@pytest.mark.parametrize(
    "vkey",
    [
        pytest.param("", id="empty"),
        pytest.param("name+1234abcd", id="two-fields"),
        pytest.param("name+1234abc+AQ==", id="short-hex"),
        pytest.param("name+zzzzzzzz+AQ==", id="bad-hex"),
        pytest.param("na me+1234abcd+AQ==", id="space-in-name"),
        pytest.param("name+1234abcd+", id="no-key"),
        pytest.param("name+1234abcd+AQ==", id="short-ed25519"),
        pytest.param("name+1234abcd+" + "B" * 44, id="wrong-key-id"),
    ],
)
def test_bad_vkeys(vkey: str) -> None:
    with pytest.raises(InputError):
        Verifier.from_vkey(vkey)


def test_bad_skeys(signer: Signer) -> None:
    sk = signer.skey()
    for bad in (sk.replace("PRIVATE+KEY", "PUBLIC+KEY"), sk[:-4] + "AAA=", "PRIVATE+KEY+x"):
        with pytest.raises(InputError):
            Signer.from_skey(bad)


def test_sign_refuses_text_without_final_newline(signer: Signer) -> None:
    with pytest.raises(InputError, match="newline"):
        sign_note("no newline", [signer])
    with pytest.raises(InputError):
        Signer.generate("bad name")
