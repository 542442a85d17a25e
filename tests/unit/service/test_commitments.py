"""A request's subject commitments, computed in bulk, are the contract's commitments.

:func:`carewall.service.logentries.commitments_for` keys its HMAC once per holder key and
copies it for each subject; :func:`carewall.entries.subject_commitment` is the one
definition (contract §6). The two must give the same hex for any key, request id and refs.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carewall.entries import subject_commitment
from carewall.service.logentries import commitments_for

REFS = st.lists(st.text(st.characters(exclude_categories=["Cs"]), min_size=1), max_size=5)


@given(key=st.binary(min_size=1, max_size=80), request_id=st.text(), refs=REFS)
@settings(max_examples=300, deadline=None)
def test_commitments_for_equals_subject_commitment(
    key: bytes, request_id: str, refs: list[str]
) -> None:
    want = [subject_commitment(key, request_id, ref) for ref in refs]
    assert commitments_for(key, request_id, refs) == want
    assert commitments_for(key, request_id, refs) == want  # again, from the key's cached HMAC


def test_each_holder_key_gives_its_own_commitments() -> None:
    refs = ["943 476 5919", "DUP-4471"]
    a = commitments_for(b"holder a", "r" + "0" * 20, refs)
    b = commitments_for(b"holder b", "r" + "0" * 20, refs)
    assert a != b and len(set(a)) == 2
    assert a == [subject_commitment(b"holder a", "r" + "0" * 20, ref) for ref in refs]


def test_a_lone_surrogate_is_refused_as_by_subject_commitment() -> None:
    with pytest.raises(UnicodeEncodeError):
        subject_commitment(b"k", "r1", "\ud800")
    with pytest.raises(UnicodeEncodeError):
        commitments_for(b"k", "r1", ["\ud800"])
