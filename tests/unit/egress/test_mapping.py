"""The mapping file: hostile input, refused with the field at fault and a fix."""

from __future__ import annotations

from pathlib import Path

import pytest
from egress_helpers import MAPPING

from carewall.egress.mapping import fail_closed, load_mapping
from carewall.errors import InputError


def test_parses_in_file_order() -> None:
    m = load_mapping(MAPPING)
    assert m.subject_ref == "ref"
    assert [c for c, _ in m.columns] == ["forename", "postcode", "attendance", "nationality", "sen"]
    assert m.fact_sources == {"is_child": "under_18", "is_victim_or_witness": "victim",
                              "consent": "consent"}  # fmt: skip
    assert m.fact_columns == ("under_18", "victim", "consent")
    assert m.referenced()[0] == "ref"


def test_reads_a_path_and_stated_booleans(tmp_path: Path) -> None:
    p = tmp_path / "m.toml"
    p.write_text(MAPPING.replace('consent = "consent"', "consent = false"))
    m = load_mapping(p)
    assert m.fact_sources["consent"] is False
    assert m.fact_columns == ("under_18", "victim")


def test_fail_closed_values() -> None:
    assert fail_closed("is_child") and fail_closed("is_victim_or_witness")
    assert not fail_closed("consent")


def _swap(old: str, new: str) -> str:
    assert old in MAPPING
    return MAPPING.replace(old, new)


INVALID: dict[str, tuple[str, str]] = {
    "not toml": ("subject_ref = ", "MAPPING"),
    "unknown top-level key": ("extra = 1\n" + MAPPING, "extra"),
    "no subject_ref": (_swap('subject_ref = "ref"', ""), "subject_ref"),
    "blank subject_ref": (_swap('subject_ref = "ref"', 'subject_ref = "  "'), "subject_ref"),
    "subject_ref not a string": (_swap('subject_ref = "ref"', "subject_ref = 3"), "subject_ref"),
    "no columns table": (_swap("[columns]", "[other]"), "other"),
    "unknown category": (_swap('forename = "name"', 'forename = "names"'), "columns.'forename'"),
    "category not a string": (_swap('forename = "name"', "forename = 1"), "columns.'forename'"),
    "category wrong case": (_swap('forename = "name"', 'forename = "Name"'), "columns.'forename'"),
    "column mapped twice by case": (
        _swap('forename = "name"', 'forename = "name"\nForename = "name"'),
        "columns.'Forename'",
    ),
    "blank column name": (_swap('forename = "name"', '"" = "name"'), "columns.''"),
    "spaces around a name": (
        _swap('forename = "name"', '" forename" = "name"'),
        "columns.' forename'",
    ),
    "control character": (
        _swap('forename = "name"', '"fore\\u0000name" = "name"'),
        "columns.'fore\\x00name'",
    ),
    "newline in a name": (
        _swap('forename = "name"', '"fore\\nname" = "name"'),
        "columns.'fore\\nname'",
    ),
    "too long a name": (_swap('forename = "name"', f'"{"a" * 300}" = "name"'), ""),
    "missing fact": (_swap('consent = "consent"', ""), "facts.consent"),
    "unknown fact": (
        _swap('consent = "consent"', 'consent = "consent"\nis_adult = "x"'),
        "facts.'is_adult'",
    ),
    "fact as a number": (_swap('consent = "consent"', "consent = 1"), "facts.consent"),
    "fact column also output": (
        _swap('consent = "consent"', 'consent = "forename"'),
        "facts.consent",
    ),
    "one column for two facts": (_swap('victim"', 'under_18"'), "facts.is_victim_or_witness"),
    "fact from the subject_ref": (
        _swap('consent = "consent"', 'consent = "ref"'),
        "facts.consent",
    ),
    "subject_ref output as a column": (
        _swap('sen = "education_record"', 'ref = "name"'),
        "columns.'ref'",
    ),
    "subject_ref output in another case": (
        _swap('sen = "education_record"', 'REF = "name"'),
        "columns.'REF'",
    ),
    "no facts table": (_swap("[facts]", "[fact]"), "fact"),
    "empty columns": (
        'subject_ref = "r"\n[columns]\n[facts]\nis_child = true\n'
        "is_victim_or_witness = true\nconsent = false\n",
        "columns",
    ),
}


@pytest.mark.parametrize("case", list(INVALID))
def test_refuses(case: str) -> None:
    text, field = INVALID[case]
    with pytest.raises(InputError) as e:
        load_mapping(text)
    assert e.value.fix
    if field:
        assert e.value.field is not None and e.value.field.startswith(field[:40])


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(InputError) as e:
        load_mapping(tmp_path / "missing.toml")
    assert e.value.field == "MAPPING"


def test_hostile_names_are_accepted_as_names() -> None:
    m = load_mapping(_swap('forename = "name"', '\'a"; DROP TABLE x; --\' = "name"'))
    assert m.columns[0] == ('a"; DROP TABLE x; --', "name")
