"""The scan rules as data: names, values and shares decide together."""

from __future__ import annotations

from pathlib import Path

import pytest

from carewall.clean.rules import default_rules, load_rules, normalise_name
from carewall.errors import InputError

# (column name, the category a shipped rule would consider it for, or None)
NAMES = [
    ("Nationality", "nationality"),
    ("NationalityCode", "nationality"),
    ("pupil_nationality", "nationality"),
    ("nat_cd", "nationality"),
    ("Citizenship", "nationality"),
    ("CountryOfBirth", "country_of_birth"),
    ("country_of_birth", "country_of_birth"),
    ("COB", "country_of_birth"),
    ("ctry_of_birth", "country_of_birth"),
    ("BirthCountry", "country_of_birth"),
    ("PlaceOfBirth", "country_of_birth"),
    ("ImmigrationStatus", "immigration_status"),
    ("visa_type", "immigration_status"),
    ("ResidenceStatus", "immigration_status"),
    ("NationalCurriculumYear", None),
    ("NationalInsuranceNumber", None),
    ("FirstLanguage", None),
    ("Ethnicity", None),
    ("TripDestination", None),
    ("SchoolCountry", None),
    ("Postcode", None),
    ("HousingStatus", None),
]


@pytest.mark.parametrize(("column", "category"), NAMES)
def test_name_patterns(column: str, category: str | None) -> None:
    got = {r.category for r in default_rules().candidates(column)}
    assert got == ({category} if category else set())


def test_normalise_name() -> None:
    assert normalise_name("Country_Of-Birth ") == "countryofbirth"


def test_recognisers_know_countries_codes_and_census_answers() -> None:
    rec = default_rules().recognisers
    for value in ("GBR", "GB", "826", "UNITED KINGDOM", "POLAND", "YUG"):
        assert value in rec["iso3166"]
    for value in ("NOT", "REF", "REFUSED", "NOT YET OBTAINED"):
        assert value in rec["census"]
    assert "POLISH" in rec["demonyms"]
    assert "WBRI" not in set().union(*rec.values())  # an ethnicity code is nothing of these


def test_values_and_share_decide() -> None:
    rule = default_rules().candidates("Nationality")[0]
    assert rule.holds(values=100, matched=50)
    assert not rule.holds(values=100, matched=49)
    assert not rule.holds(values=0, matched=0)


def test_only_refuses_a_category_without_rules() -> None:
    with pytest.raises(InputError) as e:
        default_rules().only(["health_record"])
    assert e.value.field == "--category"


def test_extra_rules_file_adds_a_category(tmp_path: Path) -> None:
    extra = tmp_path / "extra.toml"
    extra.write_text(
        '[recogniser.yes_no]\nwords = ["Y", "N"]\n'
        '[[rule]]\nid = "local/fsm"\ncategory = "financial"\nnames = ["^fsm"]\n'
        'values = ["yes_no"]\nmin_share = 0.9\n'
    )
    rules = load_rules([extra])
    assert [r.category for r in rules.candidates("FSMEligible")] == ["financial"]


BAD = [
    ("unknown key", '[[rule]]\nid = "x"\ncategory = "nationality"\nnames = ["a"]\nvalues = '
     '["census"]\ncolour = 1\n', "rule[0]"),
    ("unknown category", '[[rule]]\nid = "x"\ncategory = "shoe_size"\nnames = ["a"]\n'
     'values = ["census"]\n', "rule[0].category"),
    ("no names", '[[rule]]\nid = "x"\ncategory = "nationality"\nnames = []\n'
     'values = ["census"]\n', "rule[0].names"),
    ("bad regex", '[[rule]]\nid = "x"\ncategory = "nationality"\nnames = ["("]\n'
     'values = ["census"]\n', "rule[0].names[0]"),
    ("unknown recogniser", '[[rule]]\nid = "x"\ncategory = "nationality"\nnames = ["a"]\n'
     'values = ["nope"]\n', "rule[0].values"),
    ("share above 1", '[[rule]]\nid = "x"\ncategory = "nationality"\nnames = ["a"]\n'
     'values = ["census"]\nmin_share = 1.5\n', "rule[0].min_share"),
    ("duplicate id", '[[rule]]\nid = "nationality/named-country-or-demonym"\n'
     'category = "nationality"\nnames = ["a"]\nvalues = ["census"]\n', "rule[0].id"),
    ("unknown library", '[recogniser.x]\nlibrary = "iso639"\n', "recogniser.x.library"),
    ("not toml", "[[rule", "--rules"),
]  # fmt: skip


@pytest.mark.parametrize(("why", "text", "field"), BAD, ids=[b[0] for b in BAD])
def test_bad_rules_files_name_the_field(tmp_path: Path, why: str, text: str, field: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(InputError) as e:
        load_rules([path])
    assert e.value.field == field, why
