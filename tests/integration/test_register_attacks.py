"""Named attacks on the organisations register (contract §1, §2), from a file and the CLI.

Each row is one attack; each must be refused with exit code 2 and an error naming the
field, and must leave the public log as it was. The HTTP side is in test_admin_scope.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from hypothesis import given, settings
from hypothesis import strategies as st

from carewall.audit.register import RegisterReplay
from carewall.cli import main
from carewall.errors import ConflictError, InputError
from carewall.ledger import verify_ledger
from carewall.policy import parse_register
from carewall.policy.register import (
    EXTRA_IMMIGRATION_TERMS,
    IMMIGRATION_TERMS,
    has_unreadable_letters,
    names_immigration_enforcement,
)
from carewall.service import Service

# Ids that look like valid ones but are not (contract §1: matched whole, ASCII only).
LOOKALIKE_IDS = [
    pytest.param("kent-police\n", id="trailing-newline"),
    pytest.param("kent-police ", id="trailing-space"),
    pytest.param("kent police", id="inner-space"),
    pytest.param("Kent-police", id="uppercase"),
    pytest.param("kent-pоlice", id="cyrillic-o"),
    pytest.param("kent\u200d-police", id="zero-width-joiner"),
]

# Names that name immigration enforcement, however disguised (contract §2).
IMMIGRATION_NAMES = [
    pytest.param("Home Office", id="home-office"),
    pytest.param("H0ME 0FFICE", id="digit-zero"),
    pytest.param("UK Visas and Immigration", id="ukvi"),
    pytest.param("Border Force", id="border-force"),
    pytest.param("Ηome Office", id="greek-eta"),
    pytest.param("Hоme Оffice", id="cyrillic-o"),
    pytest.param("Home\u200bOffice", id="zero-width-space"),
    pytest.param("ＨＯＭＥ ＯＦＦＩＣＥ", id="full-width"),
    pytest.param("HomeOffice Liaison", id="no-space"),
    pytest.param("Home-Office", id="hyphen"),
    pytest.param("lmmigration Enforcement Unit", id="lower-l-for-I"),
    pytest.param("I m m i g r a t i o n Compliance", id="spaced-letters"),
    pytest.param("Bordér Förce", id="accents"),
]

BAD_NAMES = [
    pytest.param("", id="empty"),
    pytest.param("   ", id="blank"),
    pytest.param("Kent\tPolice", id="tab"),
    pytest.param("Kent\nPolice", id="newline"),
    pytest.param("Kent\x00Police", id="nul"),
    pytest.param("Kent\u202ePolice", id="bidi-override"),
    pytest.param("K" * 201, id="too-long"),
]


def q(s: str) -> str:
    """A TOML basic string (JSON escapes are TOML escapes)."""
    return json.dumps(s, ensure_ascii=True)


def org_toml(org_id: str = "kent-police", name: str = "Kent Police", fn: str = "police") -> str:
    return f"[[organisation]]\nid = {q(org_id)}\nname = {q(name)}\nfunction = {q(fn)}\n"


def reviewer_toml(rev_id: str, org: str = "kent-police", extra: str = "") -> str:
    return (
        f'[[reviewer]]\nid = {q(rev_id)}\nname = "A. Person"\norganisation = {q(org)}\n'
        f'roles = ["release_reviewer"]\n{extra}'
    )


def refused(r: Result, field: str) -> None:
    """Exit 2, one error line naming ``field``, and no traceback."""
    assert r.exit_code == 2, r.output
    assert f"error: {field}: " in r.output, r.output
    assert "Traceback" not in r.output


@dataclass
class Cli:
    db: list[str]
    url: str
    key: Path

    def __call__(self, *args: str, stdin: str | None = None) -> Result:
        return CliRunner().invoke(main, [*args, *self.db], input=stdin, catch_exceptions=False)

    def verify(self) -> Result:
        """``carewall ledger verify`` (it reads the log only, so takes no --key)."""
        return CliRunner().invoke(main, ["ledger", "verify", "--db", self.url])

    def service(self) -> Service:
        return Service.open(self.url, self.key)

    def size(self) -> int:
        svc = self.service()
        try:
            return svc.ledger.size()
        finally:
            svc.close()

    def entry(self, index: int) -> dict[str, Any]:
        svc = self.service()
        try:
            (raw,) = svc.ledger.entries(index, index + 1)
        finally:
            svc.close()
        out: dict[str, Any] = json.loads(raw)
        return out


def make_cli(tmp: Path) -> Cli:
    url = f"sqlite:///{tmp / 'cw.db'}"
    cli = Cli(["--db", url, "--key", str(tmp / "cw.key")], url, tmp / "cw.key")
    r = cli("init")
    assert r.exit_code == 0, r.output
    return cli


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    """One instance for the attacks that must change nothing."""
    return make_cli(tmp_path_factory.mktemp("register"))


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return make_cli(tmp_path)


@pytest.fixture
def unchanged(shared: Cli) -> Iterator[Cli]:
    """The shared instance; asserts afterwards that the attack logged nothing."""
    before = shared.size()
    yield shared
    assert shared.size() == before


def init_with(tmp: Path, text: str) -> Result:
    orgs = tmp / "orgs.toml"
    orgs.write_text(text, encoding="utf-8")
    db = ["--db", f"sqlite:///{tmp / 'cw.db'}", "--key", str(tmp / "cw.key")]
    return CliRunner().invoke(main, ["init", "--orgs", str(orgs), *db], catch_exceptions=False)


# ----- look-alike ids --------------------------------------------------------------------


@pytest.mark.parametrize("bad", LOOKALIKE_IDS)
def test_lookalike_organisation_id_in_the_register_file(tmp_path: Path, bad: str) -> None:
    refused(init_with(tmp_path, org_toml(bad)), "organisation[0].id")
    with pytest.raises(InputError) as e:
        parse_register(org_toml() + reviewer_toml("dpo-kent", org=bad))
    assert e.value.field == "reviewer[0].organisation"


@pytest.mark.parametrize("bad", LOOKALIKE_IDS)
def test_lookalike_reviewer_id_in_the_register_file(tmp_path: Path, bad: str) -> None:
    refused(init_with(tmp_path, org_toml() + reviewer_toml(bad)), "reviewer[0].id")


@pytest.mark.parametrize("bad", LOOKALIKE_IDS)
def test_lookalike_ids_on_the_cli(unchanged: Cli, bad: str) -> None:
    refused(unchanged("register", "org", "add", bad, "--name", "K", "--function", "police"), "id")
    refused(
        unchanged("register", "reviewer", "add", bad, "--name", "R", "--org", "met-police",
                  "--role", "release_reviewer"),
        "id",
    )  # fmt: skip
    refused(
        unchanged("register", "reviewer", "add", "dpo-new", "--name", "R", "--org", bad,
                  "--role", "release_reviewer"),
        "organisation",
    )  # fmt: skip
    refused(unchanged("register", "org", "retire", bad), "id")
    refused(unchanged("register", "reviewer", "retire", bad), "id")
    refused(unchanged("token", "create", "--org", bad, "--role", "requester"), "organisation")


def test_a_lookalike_of_a_real_id_is_not_that_id(unchanged: Cli) -> None:
    # 'met-pоlice' with a Cyrillic o is not met-police: refused, never matched to it.
    refused(unchanged("register", "org", "retire", "met-pоlice"), "id")
    refused(unchanged("register", "reviewer", "retire", "DPO-ISLINGTON"), "id")


# ----- names that name immigration enforcement ------------------------------------------------


@pytest.mark.parametrize("name", IMMIGRATION_NAMES)
def test_immigration_body_registered_as_police_from_a_file(tmp_path: Path, name: str) -> None:
    refused(init_with(tmp_path, org_toml("ho-liaison", name)), "organisation[0].function")


@pytest.mark.parametrize("name", IMMIGRATION_NAMES)
def test_immigration_body_registered_as_police_on_the_cli(unchanged: Cli, name: str) -> None:
    r = unchanged("register", "org", "add", "ho-liaison", "--name", name, "--function", "police")
    refused(r, "function")
    assert name not in r.output  # free text is never echoed


def test_an_immigration_body_registers_under_its_own_function(cli: Cli) -> None:
    r = cli("register", "org", "add", "ukvi", "--name", "UK Visas and Immigration",
            "--function", "immigration_enforcement")  # fmt: skip
    assert r.exit_code == 0, r.output
    index = int(r.output.split()[-1])
    entry = cli.entry(index)
    assert (entry["kind"], entry["id"], entry["function"], entry["change"]) == (
        "organisation",
        "ukvi",
        "immigration_enforcement",
        "add",
    )
    # ... but a disguised name still has to be printable
    r = cli("register", "org", "add", "ho-2", "--name", "Home\u200bOffice",
            "--function", "immigration_enforcement")  # fmt: skip
    refused(r, "name")


@pytest.mark.parametrize("name", BAD_NAMES)
def test_names_must_be_printable_text(unchanged: Cli, tmp_path: Path, name: str) -> None:
    refused(unchanged("register", "org", "add", "new-org", "--name", name, "--function", "police"),
            "name")  # fmt: skip
    refused(
        unchanged("register", "reviewer", "add", "new-rev", "--name", name, "--org", "met-police",
                  "--role", "release_reviewer"),
        "name",
    )  # fmt: skip
    refused(init_with(tmp_path, org_toml(name=name)), "organisation[0].name")


_LOOKS = {
    "o": "oO0οОо",
    "i": "iI1lΙІі",
    "e": "eE3ЕеΕ",
    "a": "aA4АаΑ",
    "s": "sS5$Ѕѕ",
    "h": "hHΗН",
    "b": "bB8ВΒ",
    "m": "mMМΜ",
    "t": "tTТΤ7",
}


@st.composite
def disguised(draw: st.DrawFn) -> str:
    term = draw(st.sampled_from(IMMIGRATION_TERMS))
    out = []
    for ch in term:
        if ch == " ":
            out.append(draw(st.sampled_from([" ", "  ", "-", "_", ".", "", "\u00a0"])))
            continue
        out.append(draw(st.sampled_from(_LOOKS.get(ch, ch + ch.upper()))))
        out.append(draw(st.sampled_from(["", "", "", "\u200b", "\u200d", "\u00ad"])))
    prefix = draw(st.sampled_from(["", "UK ", "The ", "North "]))
    suffix = draw(st.sampled_from(["", " Team", " Unit", " (South)"]))
    return prefix + "".join(out) + suffix


@settings(deadline=None, max_examples=300)
@given(disguised())
def test_any_disguise_of_a_term_is_seen_through(name: str) -> None:
    assert names_immigration_enforcement(name), name
    with pytest.raises(InputError) as e:
        parse_register(org_toml("liaison", name))
    assert e.value.field == "organisation[0].function"


def test_ordinary_names_are_not_flagged() -> None:
    ordinary = ["Davis Associates", "Metropolitan Police Service", "Islington Council"]
    ordinary += ["Advisory Board", "Tim Migration Ltd", "Home Start"]
    # near misses for the word-spanning match and the extra term 'border agency'
    ordinary += ["Visage Salon", "Immingham Port Authority"]
    ordinary += ["Home Offset Printing", "Scottish Borders Agency", "Borderline Agency"]
    ordinary += ["Cross Border Agenda", "Tim Migrations"]
    # near misses for the whole-word terms and the one-slip 'immigration'
    ordinary += ["Envisage Health", "Home Departure Lounge", "Emigration Museum"]
    ordinary += ["Borderlands Security Ltd", "Ukvision Opticians", "Migration Watch"]
    for name in ordinary:
        assert not names_immigration_enforcement(name), name
        assert not has_unreadable_letters(name), name


def test_a_body_called_visa_is_flagged_whatever_it_is() -> None:
    """The cost of the singular 'visa' as a whole-word term: the card company's name is
    flagged too. No register of bodies that ask for or hold people's data needs it, and
    'UK Visa Services' must not pass as police."""
    for name in ["Visa Services Ltd", "Visa SAS", "Visa S.A.", "UK Visa Services"]:
        assert names_immigration_enforcement(name), name


# A break put inside a term: it still counts when the match runs from the start of a word
# to the end of one ('tim migration' and 'davis associates' do not).
BROKEN_TERMS = [
    pytest.param("Immi-gration Enforcement", id="hyphen-inside-immigration"),
    pytest.param("Immi gration Enforcement", id="space-inside-immigration"),
    pytest.param("Home Off-ice Liaison", id="hyphen-inside-office"),
    pytest.param("Hom e Office", id="space-inside-home"),
    pytest.param("UK Vi.sas Unit", id="dot-inside-visas"),
    pytest.param("B order Force", id="space-inside-border"),
    pytest.param("Bor/der Fo rce North", id="two-breaks"),
    pytest.param("Immigratioʼn Team", id="modifier-apostrophe-inside"),
    pytest.param("UK Border Agency", id="former-border-agency"),
    pytest.param("Bord er Agen-cy", id="broken-border-agency"),
]


@pytest.mark.parametrize("name", BROKEN_TERMS)
def test_break_inside_a_term_registered_as_police(tmp_path: Path, name: str) -> None:
    assert names_immigration_enforcement(name), name
    refused(init_with(tmp_path, org_toml("liaison", name)), "organisation[0].function")


@pytest.mark.parametrize("name", BROKEN_TERMS[:3])
def test_break_inside_a_term_on_the_cli(unchanged: Cli, name: str) -> None:
    r = unchanged("register", "org", "add", "liaison", "--name", name, "--function", "police")
    refused(r, "function")
    assert name not in r.output  # free text is never echoed


@st.composite
def broken_term(draw: st.DrawFn) -> str:
    """A term with separators put between any of its letters, among other words."""
    term: str = draw(st.sampled_from(IMMIGRATION_TERMS + EXTRA_IMMIGRATION_TERMS))
    letters = term.replace(" ", "")
    out = letters[0]
    for ch in letters[1:]:
        out += draw(st.sampled_from(["", "", " ", "-", ".", "/", " - "])) + ch
    prefix = draw(st.sampled_from(["", "UK ", "The ", "North-"]))
    suffix = draw(st.sampled_from(["", " Team", " Unit", " (South)", "."]))
    return prefix + out.title() + suffix


@settings(deadline=None, max_examples=300)
@given(broken_term())
def test_any_break_inside_a_term_is_seen_through(name: str) -> None:
    assert names_immigration_enforcement(name), name


# Letters from scripts carewall cannot fold to Latin: the name cannot be checked, so any
# body but an immigration-enforcement one is refused on its name.
UNREADABLE_NAMES = [
    pytest.param("\u13bbome Office", id="cherokee-H"),
    pytest.param("\u13a5mmigration Enforcement", id="cherokee-i"),
    pytest.param("\ua4f2mmigration Compliance", id="lisu-I"),
    pytest.param("Home \ua4f3ffice Liaison", id="lisu-O"),
    pytest.param("Bor\u0501er Force", id="cyrillic-komi-de"),  # mapped: still caught by name
    pytest.param("\u0392order \u0192orce", id="greek-B-latin-f-hook"),
    pytest.param("\u5185\u52d9\u7701", id="cjk"),
    pytest.param("\u0394elta Services", id="greek-delta"),
]


@pytest.mark.parametrize("name", UNREADABLE_NAMES)
def test_unreadable_letters_registered_as_police(tmp_path: Path, name: str) -> None:
    r = init_with(tmp_path, org_toml("liaison", name))
    assert r.exit_code == 2, r.output
    assert "error: organisation[0].function: " in r.output or (
        "error: organisation[0].name: " in r.output and "Latin" in r.output
    ), r.output


@pytest.mark.parametrize("name", UNREADABLE_NAMES[:4])
def test_unreadable_letters_on_the_cli(unchanged: Cli, name: str) -> None:
    r = unchanged("register", "org", "add", "liaison", "--name", name, "--function", "police")
    if names_immigration_enforcement(name):
        # 'mmigration' with the unreadable letter dropped is one slip from the word: the
        # name check refuses it first, as naming immigration enforcement
        refused(r, "function")
    else:
        refused(r, "name")
        assert "Latin" in r.output
    assert name not in r.output  # free text is never echoed


def test_the_one_slip_rule_is_what_catches_the_dropped_letter() -> None:
    assert [names_immigration_enforcement(str(p.values[0])) for p in UNREADABLE_NAMES[:4]] == [
        False,
        True,
        True,
        False,
    ]


def test_unreadable_letters_are_an_audit_finding() -> None:
    r = RegisterReplay()
    entry = {"id": "liaison", "name": "\u13bbome Office", "function": "police", "change": "add"}
    [problem] = r.organisation(entry, 1)
    assert "cannot read as Latin" in problem
    assert r.is_immigration("liaison")  # fail closed
    ok = {"id": "ie", "name": "\u13bbome Office", "function": "immigration_enforcement"}
    # an immigration-enforcement body may have such a name, but not the name of a body
    # of another function: both then count as immigration enforcement
    [clash] = r.organisation({**ok, "change": "add"}, 2)
    assert "has the name of 'liaison'" in clash
    other = {"id": "ie-2", "name": "\u13bbome Office North", "function": "immigration_enforcement"}
    assert r.organisation({**other, "change": "add"}, 3) == []


READABLE_NAMES = [
    "Cyngor Sir Ynys M\u00f4n",
    "Bwrdd Iechyd Prifysgol Betsi Cadwaladr",
    "Ospid\u00e9al Naomh S\u00e9amas",
    "\u00c6thelred Academy",
    "\u00de\u00f3rsh\u00f6fn Trust",
    "Stra\u00dfe Clinic",
    "\u00c6r\u00f8 Kommune",
    "Hawai\u02bbi Health Partnership",
    "Ma\u00f1ana \u0152uvre \u00d0oru \u014aga",
]


@pytest.mark.parametrize("name", READABLE_NAMES)
def test_latin_names_in_other_spellings_still_register(tmp_path: Path, name: str) -> None:
    assert not has_unreadable_letters(name), name
    assert not names_immigration_enforcement(name), name
    r = init_with(tmp_path, org_toml("body", name))
    assert r.exit_code == 0, r.output


def test_an_immigration_body_may_have_a_name_in_another_script(tmp_path: Path) -> None:
    r = init_with(tmp_path, org_toml("ie", "\u5185\u52d9\u7701", "immigration_enforcement"))
    assert r.exit_code == 0, r.output


# ----- an organisation's function never changes; ids are never reused ----------------------


def test_function_change_by_readding_an_active_id(unchanged: Cli) -> None:
    r = unchanged("register", "org", "add", "met-police", "--name", "Metropolitan Police",
                  "--function", "court")  # fmt: skip
    refused(r, "id")
    assert "already registered" in r.output


def test_function_change_by_readding_a_retired_id(cli: Cli) -> None:
    assert cli("register", "org", "retire", "dvla").exit_code == 0
    size = cli.size()
    r = cli("register", "org", "add", "dvla", "--name", "DVLA", "--function", "police")
    refused(r, "id")
    assert "retired" in r.output
    r = cli("register", "org", "add", "dvla", "--name", "DVLA", "--function", "licensing")
    refused(r, "id")  # not even under the same function: ids are never reused
    assert cli.size() == size
    with pytest.raises(ConflictError):
        svc = cli.service()
        try:
            svc.add_organisation("dvla", "Driver and Vehicle Licensing Agency", "licensing")
        finally:
            svc.close()


def test_duplicate_and_reused_ids_in_a_file(tmp_path: Path) -> None:
    retired = org_toml("a", "A", "police") + 'retired_at = "2026-01-01T00:00:00Z"\n'
    with pytest.raises(InputError) as e:
        parse_register(retired + org_toml("a", "A", "court"))
    assert e.value.field == "organisation[1].id"
    # a reviewer at a retired organisation must be retired too
    with pytest.raises(InputError) as e:
        parse_register(retired + org_toml("b", "B", "court") + reviewer_toml("r", org="a"))
    assert e.value.field == "reviewer[0].organisation"


def test_a_file_with_retired_entries_logs_both_add_and_retire(tmp_path: Path) -> None:
    text = (
        org_toml("old-force", "Old Force", "police")
        + 'retired_at = "2026-01-01T00:00:00Z"\n'
        + org_toml("new-force", "New Force", "court")
        + reviewer_toml("r-old", "old-force", 'retired_at = "2026-01-01T00:00:00Z"\n')
    )
    r = init_with(tmp_path, text)
    assert r.exit_code == 0, r.output
    svc = Service.open(f"sqlite:///{tmp_path / 'cw.db'}", tmp_path / "cw.key")
    try:
        got = [json.loads(e) for e in svc.ledger.entries(1, svc.ledger.size())]
        register = svc.register()
    finally:
        svc.close()
    assert [(e["kind"], e["id"], e["change"]) for e in got] == [
        ("organisation", "new-force", "add"),
        ("organisation", "old-force", "add"),
        ("reviewer", "r-old", "add"),
        ("reviewer", "r-old", "retire"),
        ("organisation", "old-force", "retire"),
    ]
    assert "old-force" in register.retired_organisations
    assert "old-force" not in register.organisations


# ----- retired organisations and reviewers ---------------------------------------------------


def test_retired_organisation_can_neither_request_nor_hold(cli: Cli, tmp_path: Path) -> None:
    doc = json.loads((Path(__file__).parents[2] / "examples" / "07-police-theft-suspect.json")
                     .read_text())  # fmt: skip
    token = json.loads(cli("token", "create", "--org", "met-police", "--role", "requester").output)
    r = cli("register", "org", "retire", "met-police")
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    # its two reviewers first, then the organisation: each entry printed with its index
    assert [ln.split()[1:4] for ln in lines] == [
        ["reviewer", "disclosure-met", "retire"],
        ["reviewer", "dpo-met", "retire"],
        ["organisation", "met-police", "retire"],
    ]
    for ln in lines:
        entry = cli.entry(int(ln.split()[-1]))
        assert (entry["kind"], entry["id"], entry["change"]) == tuple(ln.split()[1:4])
        assert "name" not in entry or entry["kind"] == "organisation"
    size = cli.size()
    refused(cli("submit", stdin=json.dumps(doc)), "requester")
    as_holder = {**doc, "requester": "dwp", "holder": "met-police"}
    r = cli("submit", stdin=json.dumps(as_holder))
    refused(r, "holder")
    assert "retired" in r.output
    refused(cli("token", "create", "--org", "met-police", "--role", "requester"), "organisation")
    assert cli.size() == size
    # its token was revoked with it, and the admin log says so (ids only)
    log = [json.loads(x) for x in cli("token", "log", "--org", "met-police").output.splitlines()]
    assert {"action": "token_revoke", "token": token["id"]} in [
        {"action": x["action"], "token": x["detail"].get("token")} for x in log
    ]
    assert token["secret"] not in cli("token", "log").output
    assert cli.verify().exit_code == 0


def test_retired_reviewer_cannot_review(cli: Cli) -> None:
    doc = json.loads((Path(__file__).parents[2] / "examples" / "07-police-theft-suspect.json")
                     .read_text())  # fmt: skip
    sub = json.loads(cli("submit", stdin=json.dumps(doc)).output)
    assert sub["outcome"] == "review"
    r = cli("register", "reviewer", "retire", "dpo-islington")
    assert r.exit_code == 0, r.output
    size = cli.size()
    r = cli("review", sub["id"], "--reviewer", "dpo-islington", "--release")
    refused(r, "reviewer")
    refused(cli("register", "reviewer", "roles", "dpo-islington", "--role", "appeal_reviewer"),
            "id")  # fmt: skip
    refused(cli("register", "reviewer", "retire", "dpo-islington"), "id")
    refused(
        cli("token", "create", "--org", "islington-council", "--role", "release_reviewer",
            "--reviewer", "dpo-islington"),
        "reviewer",
    )  # fmt: skip
    # its id is never reused, even for the same person at the same organisation
    refused(
        cli("register", "reviewer", "add", "dpo-islington", "--name", "K. Doyle",
            "--org", "islington-council", "--role", "release_reviewer"),
        "id",
    )  # fmt: skip
    assert cli.size() == size


# ----- every change is logged, and the log still verifies --------------------------------------


def test_every_cli_change_is_logged(cli: Cli) -> None:
    steps: list[tuple[list[str], list[tuple[str, str, str]]]] = [
        (["register", "org", "add", "kent-police", "--name", "Kent Police", "--function", "police"],
         [("organisation", "kent-police", "add")]),
        (["register", "reviewer", "add", "dpo-kent", "--name", "A. Kent", "--org", "kent-police",
          "--role", "release_reviewer"],
         [("reviewer", "dpo-kent", "add")]),
        (["register", "reviewer", "roles", "dpo-kent", "--role", "release_reviewer",
          "--role", "appeal_reviewer"],
         [("reviewer", "dpo-kent", "update")]),
        (["register", "reviewer", "retire", "dpo-kent"], [("reviewer", "dpo-kent", "retire")]),
        (["register", "org", "retire", "kent-police"],
         [("organisation", "kent-police", "retire")]),
    ]  # fmt: skip
    for args, expected in steps:
        size = cli.size()
        r = cli(*args)
        assert r.exit_code == 0, r.output
        assert cli.size() == size + len(expected)
        for line, (kind, id_, change) in zip(r.output.splitlines(), expected, strict=True):
            assert line == f"logged {kind} {id_} {change} at log index {size}"
            entry = cli.entry(size)
            assert (entry["kind"], entry["id"], entry["change"]) == (kind, id_, change)
            assert "A. Kent" not in json.dumps(entry)
            size += 1
    entry = cli.entry(cli.size() - 3)
    assert entry["roles"] == ["appeal_reviewer", "release_reviewer"]
    # the same role list again is no change, and logs nothing
    refused(cli("register", "reviewer", "roles", "dpo-islington", "--role", "release_reviewer"),
            "roles")  # fmt: skip
    listed = json.loads(cli("register", "list", "--json").output)
    kent = next(o for o in listed["organisations"] if o["id"] == "kent-police")
    assert kent["retired_at"] is not None
    assert all("name" not in r for r in listed["reviewers"])
    actions = [json.loads(x)["action"] for x in cli("token", "log").output.splitlines()]
    assert actions == [
        "organisation_add",
        "reviewer_add",
        "reviewer_update",
        "reviewer_retire",
        "organisation_retire",
    ]
    r = cli.verify()
    assert r.exit_code == 0 and r.output.startswith("ok:"), r.output
    svc = cli.service()
    try:
        assert verify_ledger(svc.store).ok
    finally:
        svc.close()


def test_register_changes_on_every_backend(db_url: str, tmp_path: Path) -> None:
    svc = Service.init(db_url, None, "register.test/log", tmp_path / "log.key")
    try:
        start = svc.ledger.size()
        svc.add_organisation("kent-police", "Kent Police", "police", actor="cli")
        svc.add_reviewer("dpo-kent", "A. Kent", "kent-police", ["release_reviewer"])
        svc.update_reviewer_roles("dpo-kent", ["appeal_reviewer"])
        change = svc.retire_organisation("kent-police")
        assert [(x.kind, x.id, x.change) for x in change.logged] == [
            ("reviewer", "dpo-kent", "retire"),
            ("organisation", "kent-police", "retire"),
        ]
        got = [json.loads(e) for e in svc.ledger.entries(start, svc.ledger.size())]
        assert [(e["kind"], e["change"]) for e in got] == [
            ("organisation", "add"),
            ("reviewer", "add"),
            ("reviewer", "update"),
            ("reviewer", "retire"),
            ("organisation", "retire"),
        ]
        other = Service.open(db_url, tmp_path / "log.key")
        try:
            reg = other.register()
            assert "kent-police" in reg.retired_organisations
            assert "dpo-kent" in reg.retired_reviewers
            with pytest.raises(InputError) as e:
                reg.organisation("kent-police", field_name="holder")
            assert e.value.field == "holder" and "retired" in e.value.message
        finally:
            other.close()
        assert verify_ledger(svc.store).ok
    finally:
        svc.close()


# ----- tokens ------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["admin", "release_reviewer", "appeal_reviewer"])
def test_no_admin_or_reviewer_token_for_an_immigration_body(unchanged: Cli, role: str) -> None:
    args = ["token", "create", "--org", "home-office-ie", "--role", role]
    if role != "admin":
        args += ["--reviewer", "some-reviewer"]
    refused(unchanged(*args), "role")


def test_an_immigration_body_may_still_hold_a_requester_token(cli: Cli) -> None:
    # Its requests must reach carewall, to be refused by the pledge and logged.
    r = cli("token", "create", "--org", "home-office-ie", "--role", "requester")
    assert r.exit_code == 0, r.output


def test_reviewer_option_explains_itself(unchanged: Cli) -> None:
    r = unchanged("token", "create", "--org", "met-police", "--role", "admin",
                  "--reviewer", "dpo-met")  # fmt: skip
    refused(r, "--reviewer")
    assert "only for release_reviewer and appeal_reviewer tokens" in r.output
    assert "leave it out for role admin" in r.output
    r = unchanged("token", "create", "--org", "met-police", "--role", "release_reviewer")
    refused(r, "--reviewer")
