"""``carewall show ID`` and ``carewall requests`` filters, through the command line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import Cli, one_line_error, run, wide_console


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Cli]:
    with wide_console():
        yield Cli.init(tmp_path)


def test_show_a_released_request(cli: Cli) -> None:
    rid = cli.released()
    rec = cli.service().get(rid)
    res = run(["show", rid, *cli.db])
    assert res.exit_code == 0, res.output
    out = res.stdout
    # the DPO record: ids, the reference and requester, holder, purpose, basis, state
    for text in (
        rid,
        "MPS-2026-000777",
        "met-police",
        "whittington-health",
        "prevention_detection_of_crime",
        "dpa2018_sch2_p1_para2_crime",
        "reviewed / released",
        "DC Lee Marchetti",
    ):
        assert text in out, text
    # per category: what the policy said, what went, and the rule behind it
    assert "pledge/never-nationality" in out
    assert "local/police-crime-suspect" in out
    assert "Nationality, country of birth and immigration status are never disclosed." in out
    # every event, with its log index; the notice with its own entry's index
    for event in rec.events:
        assert event.kind in out and str(event.log_index) in out
    assert [e.kind for e in rec.events] == ["received", "decided", "reviewed", "released"]
    (notice,) = rec.notices
    assert "notices" in out and str(notice.log_index) in out and "outbox" in out

    res = run(["show", rid, *cli.db, "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout) == rec.model_dump()


def test_show_a_refused_request(cli: Cli) -> None:
    rid = cli.refused()
    res = run(["show", rid, *cli.db])
    assert res.exit_code == 0, res.output
    assert "decided / refused" in res.stdout
    assert "pledge/no-immigration-recipient" in res.stdout
    assert "pledge/no-immigration-purpose" in res.stdout
    assert "released" not in res.stdout.split("decision by category")[0]  # nothing went
    got = json.loads(run(["show", rid, *cli.db, "--json"]).stdout)
    assert got["outcome"] == "refused" and got["release"] is None and got["notices"] == []
    assert set(got["decision"]["categories"]) == {"name", "address", "nationality"}


def test_show_what_a_requester_wrote_as_plain_text(cli: Cli) -> None:
    """Markup and terminal escapes in free text are shown, never obeyed."""
    rid = cli.submit(necessity="[bold red]urgent[/bold red] \x1b[2J\u202eevil")
    res = run(["show", rid, *cli.db])
    assert res.exit_code == 0, res.output
    assert "[bold red]urgent[/bold red]" in res.stdout
    assert "\x1b" not in res.stdout and "\u202e" not in res.stdout
    assert "\\u001b[2J\\u202eevil" in res.stdout


def test_show_an_unknown_id(cli: Cli) -> None:
    line = one_line_error(run(["show", "r0000000000000000000f", *cli.db]), "id")
    assert "no such request" in line


@pytest.mark.parametrize(
    "odd",
    [
        "",
        " r1",
        "r1 ",
        "r 1",
        "r1\n",
        "r1\x00",
        "rü",
        "ｒ1",  # fullwidth r
        "r1'; DROP TABLE svc_requests; --",
        "%",
        "../r1",
        "r" * 65,
        "r" * 100_000,
    ],
)
def test_show_an_odd_id_is_one_clean_line(cli: Cli, odd: str) -> None:
    line = one_line_error(run(["show", odd, *cli.db]), "id")
    assert "carewall requests" in line  # the fix: where to copy a real id from
    assert len(line) < 200  # the id is never echoed back


def test_show_needs_an_instance(tmp_path: Path) -> None:
    res = run(["show", "r1", "--db", str(tmp_path / "none.db")])
    assert "carewall init" in one_line_error(res, "--db")


# ----- carewall requests: the filters the DPO's page uses too ---------------------------


def _ids(cli: Cli, *options: str) -> list[str]:
    res = run(["requests", *cli.db, "--json", *options])
    assert res.exit_code == 0, res.output
    return [json.loads(line)["id"] for line in res.stdout.splitlines()]


def test_reference_finds_exactly_its_request(cli: Cli) -> None:
    refs = ["MPS-2026-000001", "MPS-2026-000002", "A%B", "AxB", "A_C", "AyC", "a%b", "A\\B"]
    ids = {ref: cli.submit(reference=ref) for ref in refs}
    for ref in refs:
        assert _ids(cli, "--reference", ref) == [ids[ref]], ref
    # wildcards are letters like any other: nothing matches a pattern
    for pattern in ("%", "_", "A%", "MPS-2026-00000_", "MPS%", "mps-2026-000001", "MPS-2026"):
        assert _ids(cli, "--reference", pattern) == [], pattern
    # the table never prints the reference it was searched by
    res = run(["requests", *cli.db, "--reference", "MPS-2026-000001"])
    assert res.exit_code == 0 and ids["MPS-2026-000001"] in res.stdout
    assert "MPS-2026-000001" not in res.stdout and "1 requests" in res.stdout


@pytest.mark.postgres
def test_reference_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    cli = Cli.init(tmp_path, pg_url)
    ids = {ref: cli.submit(reference=ref) for ref in ("A%B", "AxB", "A_C")}
    assert _ids(cli, "--reference", "A%B") == [ids["A%B"]]
    assert _ids(cli, "--reference", "A_C") == [ids["A_C"]]
    assert _ids(cli, "--reference", "A%") == []
    days = _ids(cli, "--since", "2026-11-21", "--until", "2026-11-21")
    assert sorted(days) == sorted(ids.values())  # same time: in id order


def test_days_filters_and_paging(cli: Cli) -> None:
    october = cli.submit(received_at="2026-10-31T23:59:59Z")
    first = cli.submit(received_at="2026-11-01T00:00:00Z")
    last = cli.submit(received_at="2026-11-30T23:59:59Z")
    december = cli.submit(received_at="2026-12-01T00:00:00Z")
    assert _ids(cli, "--since", "2026-11-01", "--until", "2026-11-30") == [first, last]
    assert _ids(cli, "--since", "2026-11-30") == [last, december]
    assert _ids(cli, "--until", "2026-10-31") == [october]
    assert _ids(cli, "--until", "9999-12-31") == [october, first, last, december]
    assert _ids(cli, "--limit", "2") == [october, first]
    assert _ids(cli, "--limit", "2", "--offset", "2") == [last, december]
    assert _ids(cli, "--offset", "3") == [december]
    assert _ids(cli, "--state", "review", "--since", "2026-12-01") == [december]
    assert _ids(cli, "--state", "refused") == []


@pytest.mark.parametrize(
    ("options", "field"),
    [
        (["--since", "2026-13-01"], "--since"),
        (["--since", "2026-02-30"], "--since"),
        (["--since", "1/11/2026"], "--since"),
        (["--since", "20261101"], "--since"),
        (["--since", "2026-11-01T00:00"], "--since"),
        (["--since", "２０２６-11-01"], "--since"),
        (["--until", "yesterday"], "--until"),
        (["--until", " 2026-11-01"], "--until"),
        (["--since", "2026-11-02", "--until", "2026-11-01"], "--until"),
    ],
)
def test_a_bad_day_names_its_option(cli: Cli, options: list[str], field: str) -> None:
    line = one_line_error(run(["requests", *cli.db, *options]), field)
    assert "YYYY-MM-DD" in line or "before since" in line


@pytest.mark.parametrize(
    ("options", "option"),
    [
        (["--limit", "0"], "--limit"),
        (["--offset", "-1"], "--offset"),
        (["--limit", "many"], "--limit"),
        (["--state", "lost"], "--state"),
    ],
)
def test_bad_paging_and_state_are_usage_errors(cli: Cli, options: list[str], option: str) -> None:
    res = run(["requests", *cli.db, *options])
    assert res.exit_code == 2 and option in res.stderr and "Traceback" not in res.output
