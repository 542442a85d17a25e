"""Deletion certificates: signed notes over canonical JSON, and value commitments."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carewall.clean.certificate import (
    HEADER,
    ValueCommitment,
    certificate_sha256,
    check_entry_matches,
    open_certificate,
    sign_certificate,
)
from carewall.errors import VerificationError
from carewall.ledger.note import Signer

SIGNER = Signer.generate("school.test/log")
BODY = {
    "type": HEADER,
    "holder": "st-marys-primary",
    "categories": ["nationality"],
    "records": 3,
    "tables": [],
    "post_purge_scan": {"values_remaining": 0},
}


def test_round_trip() -> None:
    text = sign_certificate(BODY, SIGNER)
    assert text.startswith(HEADER + "\n{")
    assert open_certificate(text, SIGNER.verifier()) == BODY
    assert certificate_sha256(text) == certificate_sha256(text.encode())


TAMPER = [
    ("records changed", lambda t: t.replace('"records":3', '"records":2')),
    ("holder changed", lambda t: t.replace("st-marys", "st-johns")),
    ("signature cut", lambda t: t.rsplit("\n", 2)[0] + "\n"),
    ("not a note", lambda t: "hello\n"),
]


@pytest.mark.parametrize(("why", "change"), TAMPER, ids=[t[0] for t in TAMPER])
def test_tampered_certificates_fail(why: str, change: object) -> None:
    text = sign_certificate(BODY, SIGNER)
    with pytest.raises(VerificationError):
        open_certificate(change(text), SIGNER.verifier())  # type: ignore[operator]


def test_another_key_fails() -> None:
    text = sign_certificate(BODY, SIGNER)
    other = Signer.generate("school.test/log")
    with pytest.raises(VerificationError) as e:
        open_certificate(text, other.verifier())
    assert "not signed by the given key" in e.value.message


def test_entry_must_match() -> None:
    entry = {"holder": "st-marys-primary", "categories": ["nationality"], "records": 3}
    check_entry_matches(BODY, entry)
    with pytest.raises(VerificationError) as e:
        check_entry_matches(BODY, {**entry, "records": 4})
    assert e.value.field == "records"


def _commit(values: list[str], key: bytes = b"k" * 32) -> str:
    mac = ValueCommitment(key, "census", "Nationality")
    mac.add(sorted(values))
    return mac.hexdigest()


@settings(deadline=None, max_examples=200)
@given(st.lists(st.text(max_size=4), max_size=6), st.lists(st.text(max_size=4), max_size=6))
def test_commitments_bind_the_values(a: list[str], b: list[str]) -> None:
    # Length prefixes: ["ab"] and ["a", "b"] never share a commitment.
    assert (_commit(a) == _commit(b)) == (sorted(a) == sorted(b))


def test_commitment_needs_the_key() -> None:
    assert _commit(["GBR"]) != _commit(["GBR"], key=b"j" * 32)
