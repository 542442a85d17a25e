"""One person listed once: the fast pass and the loop agree on every kind of ref."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carewall.policy.checks import VocabError, distinct_subjects, same_person_key


@pytest.mark.parametrize(
    ("refs", "index"),
    [
        (["9434765919", "943 476 5919"], 1),
        (["A1", "B2", "b-2"], 2),
        (["DUP-4471", "x", "dup.4471"], 2),
        (["a\x00b", "c", "A\x00B"], 2),  # the fast pass's separator inside a ref
        (["Ünal-1", "ünal1"], 1),  # not ASCII: the loop
        (["ref\u200b1", "ref1"], 1),  # an invisible character
    ],
)
def test_the_later_of_two_spellings_of_one_person_is_named(refs: list[str], index: int) -> None:
    with pytest.raises(VocabError) as e:
        distinct_subjects(refs)
    assert e.value.index == index


@pytest.mark.parametrize("refs", [["a\x00b", "ab"], ["1", "2", "3"], ["Ünal-1", "Unal-1"], []])
def test_distinct_people_pass(refs: list[str]) -> None:
    distinct_subjects(refs)


@given(st.lists(st.text(alphabet=" -.aAbB1\x00\u00e9\u200b", max_size=4), max_size=8))
def test_refused_exactly_when_two_keys_are_equal(refs: list[str]) -> None:
    keys = [same_person_key(r) for r in refs]
    duplicated = len(set(keys)) < len(keys)
    try:
        distinct_subjects(refs)
    except VocabError as e:
        assert duplicated
        assert e.index is not None and keys[e.index] in keys[: e.index]
    else:
        assert not duplicated
