"""The DPO's pages without a browser: the hostile cases, fast (FastAPI's TestClient).

The pages are scoped as the admin API is (contract §2): an admin token sees the requests its
own organisation holds, redacted as ``GET /api/requests/{id}/record`` redacts them, and
another organisation's request answers exactly like a missing one (404). Checked here: the
roles, another holder's DPO, the search's hostile input (references with SQL wildcards,
impossible dates, huge page numbers), CSV formula injection, odd ids, and that the access
code and the person's address appear on the letter alone, each view of which is recorded.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from api_support import HOLDER, Tokens, access_code, api, refused, reviewable
from fastapi.testclient import TestClient
from httpx import Response

from carewall.api.admin import issue_token
from carewall.api.auth import list_tokens
from carewall.service import Service

HTML = {"accept": "text/html"}
OTHER = "whittington-health"
CONTACT = "Flat 2, 10 High Street, London N1 1AA"
# In the request (or the review and appeal) but never on a DPO page: contract §2.
WITHHELD = [
    "ISL-CRN-88213",  # the subject's reference
    "DC J. Smith",
    "j.smith@police.example",
    "Insp. R. Khan",
    "Suspect in a series",  # necessity
    "Spoke to K. Doyle",  # the review note
    "I was the victim",  # appeal grounds
]
HOSTILE_CELLS = ['=HYPERLINK("http://x.example","y")', "+1+1", "-2+3", "@SUM(A1)", "\tTAB", "\rCR"]


@dataclass
class World:
    client: TestClient
    svc: Service
    tokens: Tokens
    other_admin: str
    released: str  # held here, released, its notice's letter kept in the outbox
    code: str
    appealed: str
    theirs: str  # held by OTHER
    hostile: list[str]  # ids of requests whose references try formula injection

    def sign_in(self, token: str) -> Response:
        self.client.cookies.clear()
        page = self.client.get("/sign-in", headers=HTML)
        return self.client.post(
            "/sign-in",
            data={"csrf_token": csrf_of(page), "token": token},
            headers=HTML,
            follow_redirects=False,
        )

    def get(self, path: str) -> Response:
        return self.client.get(path, headers=HTML, follow_redirects=False)

    def notice_of(self, request_id: str) -> int:
        (notice,) = self.svc.notices(request_id)
        return notice.id


def csrf_of(page: Response) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found is not None, page.text[:500]
    return found.group(1)


def errors_of(page: Response) -> list[tuple[str, str]]:
    """The error summary's items as (field id, text), in order."""
    parts = page.text.split('class="govuk-error-summary"', 1)
    assert len(parts) == 2, "no error summary"
    summary = parts[1].split("</ul>", 1)[0]
    return [(a, t.strip()) for a, t in re.findall(r'<a href="#([^"]+)">([^<]*)</a>', summary)]


def rows_of(response: Response) -> list[dict[str, str]]:
    assert response.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.content.decode("utf-8"))))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("dpo-forms")
    with api(f"sqlite:///{tmp / 'cw.db'}", tmp) as (client, svc, tokens):
        client.base_url = "https://testserver"  # so the Secure session cookie is sent back
        doc = reviewable()
        doc["subjects"] = [{**doc["subjects"][0], "contact": CONTACT}]
        released = svc.submit(doc).id
        svc.review(released, "dpo-islington", True, "Spoke to K. Doyle")
        appealed = svc.submit(reviewable(reference="MPS-APPEAL")).id
        svc.review(appealed, "dpo-islington", True)
        svc.deliver_pending()
        svc.subject_appeal(appealed, access_code(svc, appealed), "I was the victim, not a suspect")
        svc.submit(refused(reference="A%B"))
        svc.submit(refused(reference="AxB"))
        svc.submit(refused(reference="A_B_"))
        hostile = [svc.submit(refused(reference=ref)).id for ref in HOSTILE_CELLS[:4]]
        court = {"reference": HOSTILE_CELLS[4], "court": HOSTILE_CELLS[5], "date": "2026-01-05"}
        hostile.append(svc.submit(refused(reference="COURT-1", court_order=court)).id)
        theirs = svc.submit(reviewable(holder=OTHER, reference="WH-SECRET-1")).id
        yield World(
            client=client,
            svc=svc,
            tokens=tokens,
            other_admin=issue_token(svc, OTHER, "admin").secret,
            released=released,
            code=access_code(svc, released),
            appealed=appealed,
            theirs=theirs,
            hostile=hostile,
        )


@pytest.fixture
def dpo(world: World) -> World:
    assert world.sign_in(world.tokens.admin).headers["location"] == "/dpo/requests"
    return world


def pages_of(world: World) -> list[str]:
    rid, notice = world.released, world.notice_of(world.released)
    return [
        "/dpo/requests",
        f"/dpo/requests/{rid}",
        "/dpo/requests.csv",
        "/dpo/notices",
        f"/dpo/notices/{notice}/letter",
        f"/dpo/notices/letters?request={rid}",
        "/dpo/register",
    ]


# ----- who may see the pages ----------------------------------------------------------------


@pytest.mark.parametrize("who", ["release", "appeal", "other_release"])
def test_a_reviewer_cannot_see_the_dpo_pages(world: World, who: str) -> None:
    assert world.sign_in(getattr(world.tokens, who)).status_code == 303
    for path in pages_of(world):
        r = world.get(path)
        assert r.status_code == 403, path
        assert "You cannot do that" in r.text and "Sign in as admin" in r.text
        assert world.code not in r.text and CONTACT not in r.text


def test_signed_out_is_asked_to_sign_in(world: World) -> None:
    world.client.cookies.clear()
    for path in pages_of(world):
        r = world.get(path)
        assert r.status_code == 401, path
        assert 'href="/sign-in"' in r.text and world.code not in r.text


def test_a_requester_token_cannot_sign_in(world: World) -> None:
    r = world.sign_in(world.tokens.requester)
    assert r.status_code == 403 and "Requester tokens cannot sign in" in r.text


def test_get_only_routes_refuse_a_post(dpo: World) -> None:
    for path in ("/dpo/requests", "/dpo/requests.csv", "/dpo/register", "/dpo/notices"):
        r = dpo.client.post(path, headers=HTML, data={"reference": "x"})
        assert r.status_code == 405, path
        assert "Traceback" not in r.text


# ----- another organisation's requests ------------------------------------------------------


def test_another_holders_dpo_sees_none_of_this_holders_requests(world: World) -> None:
    assert world.sign_in(world.other_admin).status_code == 303
    rid = world.released
    size = len(world.svc.admin_log(OTHER))
    for path in (
        f"/dpo/requests/{rid}",
        f"/dpo/notices/{world.notice_of(rid)}/letter",
        f"/dpo/notices/letters?request={rid}",
    ):
        r = world.get(path)
        assert r.status_code == 404, path
        assert "Page not found" in r.text and world.code not in r.text
    assert len(world.svc.admin_log(OTHER)) == size  # nothing was shown, so nothing recorded
    mine = world.get("/dpo/requests")
    assert rid not in mine.text and world.theirs in mine.text
    found = world.get("/dpo/requests?reference=MPS-2026-000123")
    assert "0 requests match" in found.text and rid not in found.text
    rows = rows_of(world.get("/dpo/requests.csv"))
    assert world.theirs in {r["id"] for r in rows} and {r["holder"] for r in rows} == {OTHER}
    assert rows_of(world.get("/dpo/requests.csv?reference=MPS-2026-000123")) == []
    assert rid not in world.get("/dpo/notices").text


def test_this_holders_dpo_does_not_see_the_other_holders_request(dpo: World) -> None:
    r = dpo.get(f"/dpo/requests/{dpo.theirs}")
    assert r.status_code == 404 and "WH-SECRET-1" not in r.text
    assert "0 requests match" in dpo.get("/dpo/requests?reference=WH-SECRET-1").text
    assert dpo.theirs not in dpo.get("/dpo/requests").text


def test_requests_made_by_the_organisation_are_not_its_register(world: World) -> None:
    """As the API: an admin sees what its organisation holds, not what it asked for."""
    asked = world.svc.submit(reviewable(requester=HOLDER, holder=OTHER, reference="ISL-ASK")).id
    assert world.sign_in(world.tokens.admin).status_code == 303
    assert world.get(f"/dpo/requests/{asked}").status_code == 404
    assert asked not in world.get("/dpo/requests").text


# ----- the record: what is withheld ---------------------------------------------------------


def test_the_record_is_redacted_as_the_admin_api_redacts_it(dpo: World) -> None:
    for rid in (dpo.released, dpo.appealed):
        r = dpo.get(f"/dpo/requests/{rid}")
        assert r.status_code == 200
        for text in WITHHELD:
            assert text not in r.text, text
        assert "Withheld from data protection officers" in r.text
    r = dpo.get(f"/dpo/requests/{dpo.released}")
    assert "MPS-2026-000123" in r.text  # the requester's reference, as the API shows it
    assert "Theft Act 1968" in r.text or "theft_act_1968_s1" in r.text
    for text in WITHHELD:
        assert text not in dpo.get("/dpo/requests.csv").text, text


def test_every_record_renders_whatever_its_state(dpo: World) -> None:
    withdrawn = dpo.svc.submit(reviewable(reference="MPS-WITHDRAWN")).id
    dpo.svc.withdraw(withdrawn, "met-police")
    for summary in dpo.svc.list_requests(holder=HOLDER):
        r = dpo.get(f"/dpo/requests/{summary.id}")
        assert r.status_code == 200, summary
        assert "Everything that happened to this request" in r.text
    r = dpo.get(f"/dpo/requests/{withdrawn}")
    assert "Withdrawn by" in r.text and "met-police" in r.text
    rows = rows_of(dpo.get("/dpo/requests.csv?reference=MPS-WITHDRAWN"))
    assert [(x["stage"], x["outcome"], x["withdrawn_by"]) for x in rows] == [
        ("withdrawn", "withdrawn", "met-police")
    ]


def test_no_access_code_or_address_on_any_page_but_the_letter(dpo: World) -> None:
    notice = dpo.notice_of(dpo.released)
    for path in pages_of(dpo):
        r = dpo.get(path)
        assert r.status_code == 200, path
        on_letter = "/letter" in path
        assert (dpo.code in r.text) is on_letter, path
        assert (CONTACT in r.text) is on_letter, path
    letter = dpo.get(f"/dpo/notices/{notice}/letter")
    assert f"Your access code:  {dpo.code}" in letter.text
    # the appeal's code too: never outside its own letter
    appeal_code = access_code(dpo.svc, dpo.appealed)
    assert appeal_code not in dpo.get(f"/dpo/requests/{dpo.appealed}").text


def test_every_letter_shown_is_recorded_by_id_only(dpo: World) -> None:
    notice = dpo.notice_of(dpo.released)
    before = len(dpo.svc.admin_log(HOLDER))
    assert dpo.get(f"/dpo/notices/{notice}/letter").status_code == 200
    assert dpo.get(f"/dpo/notices/letters?request={dpo.released}").status_code == 200
    new = dpo.svc.admin_log(HOLDER)[before:]
    assert [(x.action, x.detail) for x in new] == [
        ("letter_view", {"notice": notice, "request": dpo.released}),
    ] * 2
    admin = next(t.id for t in list_tokens(dpo.svc.store, HOLDER) if t.role == "admin")
    assert {x.actor for x in new} == {admin}  # the token's id, never its secret
    flat = repr(new)
    assert dpo.code not in flat and CONTACT not in flat and "cw_" not in flat


def test_a_letter_that_is_not_kept_is_refused_and_not_recorded(dpo: World) -> None:
    rid = dpo.svc.submit(reviewable(reference="MPS-DEFER", prejudice=True)).id
    dpo.svc.review(rid, "dpo-islington", True, defer_until=_days_ahead(dpo.svc, 30))
    notice = dpo.notice_of(rid)
    before = len(dpo.svc.admin_log(HOLDER))
    r = dpo.get(f"/dpo/notices/{notice}/letter")
    assert r.status_code == 409 and "deferred" in r.text
    assert len(dpo.svc.admin_log(HOLDER)) == before
    record = dpo.get(f"/dpo/requests/{rid}")
    assert "Notices delayed" in record.text and "Not kept" in record.text


def _days_ahead(svc: Service, days: int) -> str:
    from datetime import UTC, timedelta

    return (svc.clock().astimezone(UTC).date() + timedelta(days=days)).isoformat()


@pytest.mark.parametrize(
    "bad",
    [
        "{rid}%20",
        "{rid}%0A",
        "%20{rid}",
        "r%D0%B0{tail}",  # a Cyrillic a for a Latin one
        "{rid}x",
        "R{tail}",
        "x" * 300,
        "..%2F..%2Fetc",
        "%00",
    ],
)
def test_odd_request_ids_are_not_found(dpo: World, bad: str) -> None:
    rid = dpo.released
    path = bad.format(rid=rid, tail=rid[1:])
    for url in (f"/dpo/requests/{path}", f"/dpo/notices/letters?request={path}"):
        r = dpo.get(url)
        assert r.status_code == 404, url
        assert "Traceback" not in r.text and dpo.code not in r.text


@pytest.mark.parametrize("bad", ["0", "-1", "1%20", "%EF%BC%91", "0x1", "1.0", "9" * 40, "abc"])
def test_odd_notice_ids_are_not_found(dpo: World, bad: str) -> None:
    r = dpo.get(f"/dpo/notices/{bad}/letter")
    assert r.status_code == 404
    assert dpo.code not in r.text


# ----- the search ---------------------------------------------------------------------------


def test_search_by_reference_finds_exactly_that_request(dpo: World) -> None:
    r = dpo.get("/dpo/requests?reference=MPS-2026-000123")
    assert "1 request matches" in r.text and dpo.released in r.text
    assert dpo.appealed not in r.text
    r = dpo.get("/dpo/requests?reference=%20MPS-2026-000123%20")  # spaces around are trimmed
    assert "1 request matches" in r.text


@pytest.mark.parametrize(
    ("reference", "found"),
    [("A%B", 1), ("A_B", 0), ("A%", 0), ("%", 0), ("_", 0), ("A_B_", 1), ("a%b", 0)],
)
def test_wildcards_in_a_reference_match_only_themselves(
    dpo: World, reference: str, found: int
) -> None:
    r = dpo.get("/dpo/requests?" + _query(reference=reference))
    assert r.status_code == 200
    rows = rows_of(dpo.get("/dpo/requests.csv?" + _query(reference=reference)))
    assert [row["reference"] for row in rows] == [reference] * found


def _query(**params: str) -> str:
    from urllib.parse import urlencode

    return urlencode(params)


def _dates(day: str, month: str, year: str, prefix: str = "from") -> dict[str, str]:
    return {f"{prefix}-day": day, f"{prefix}-month": month, f"{prefix}-year": year}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (_dates("30", "2", "2026"), [("from-day", "Date received from must be a real date")]),
        (_dates("abc", "1", "2026"), [("from-day", "Date received from must be a real date")]),
        (_dates("1", "13", "2026", "to"), [("to-day", "Date received to must be a real date")]),
        (_dates("1", "1", "26"), [("from-day", "Date received from must be a real date")]),
        (_dates("", "", "2026"), [("from-day", "Date received from must include a day")]),
        (_dates("1", "", "2026", "to"), [("to-month", "Date received to must include a month")]),
        (_dates("１", "1", "2026"), [("from-day", "Date received from must be a real date")]),
        (
            {**_dates("2", "3", "2026"), **_dates("1", "3", "2026", "to")},
            [("to-day", "Date received to must be the same as or after date received from")],
        ),
        ({"state": "everything"}, [("state", "Select a state from the list")]),
        ({"reference": "R" * 201}, [("reference", "Reference must be 200 characters or fewer")]),
        (
            {"reference": "MPS\x00-1"},
            [
                (
                    "reference",
                    "Reference must not include tabs, line breaks or other control characters",
                )
            ],
        ),
    ],
)
def test_a_bad_search_shows_the_error_summary(
    dpo: World, params: dict[str, str], expected: list[tuple[str, str]]
) -> None:
    for path in ("/dpo/requests?", "/dpo/requests.csv?"):
        r = dpo.get(path + _query(**params))
        assert r.status_code == 400, r.text[:300]
        assert r.headers["content-type"].startswith("text/html")
        assert errors_of(r) == expected
        assert "<title>Error: " in r.text
        for anchor, _ in expected:
            assert f'id="{anchor}"' in r.text  # the link goes to a field on the page
        assert "Traceback" not in r.text


def test_a_good_date_range_filters(dpo: World) -> None:
    day = dpo.svc.get(dpo.released).received_at[:10]
    y, m, d = day.split("-")
    same = {**_dates(d, m, y), **_dates(d, m, y, "to")}
    assert dpo.released in dpo.get("/dpo/requests?" + _query(**same)).text
    before = _dates("1", "1", "2000", "to")
    r = dpo.get("/dpo/requests?" + _query(**before))
    assert "0 requests match" in r.text and "No requests match your search" in r.text


def test_state_filters(dpo: World) -> None:
    rows = rows_of(dpo.get("/dpo/requests.csv?state=appealed"))
    assert [r["id"] for r in rows] == [dpo.appealed]
    assert {r["outcome"] for r in rows_of(dpo.get("/dpo/requests.csv?state=refused"))} == {
        "refused"
    }


@pytest.mark.parametrize("page", ["999999999", "9" * 50, "0", "-3", "abc", "1e9", "２"])
def test_any_page_number_gives_a_page(dpo: World, page: str) -> None:
    for path in (
        f"/dpo/requests?page={page}",
        f"/dpo/requests?state=refused&page={page}",
        f"/dpo/notices?page={page}",
        f"/dpo/notices/letters?request={dpo.released}&page={page}",
    ):
        r = dpo.get(path)
        assert r.status_code == 200, path
        assert "Traceback" not in r.text


# ----- the CSV ------------------------------------------------------------------------------


def test_the_csv_is_a_safe_attachment(dpo: World) -> None:
    before = len(dpo.svc.admin_log(HOLDER))
    r = dpo.get("/dpo/requests.csv")
    assert r.status_code == 200
    assert r.headers["content-disposition"].startswith("attachment; filename=")
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.headers["cache-control"] == "no-store"
    header = r.content.decode("utf-8").split("\r\n", 1)[0]
    assert header.startswith("id,reference,received_at,requester")
    rows = rows_of(r)
    assert {row["holder"] for row in rows} == {HOLDER}
    assert dpo.theirs not in {row["id"] for row in rows}
    (logged,) = dpo.svc.admin_log(HOLDER)[before:]
    assert (logged.action, logged.detail) == ("requests_export", {"requests": len(rows)})


def test_the_csv_is_formula_injection_safe(dpo: World) -> None:
    rows = {row["id"]: row for row in rows_of(dpo.get("/dpo/requests.csv"))}
    cells = [rows[i]["reference"] for i in dpo.hostile[:4]]
    court = rows[dpo.hostile[4]]
    cells += [court["court_order_reference"], court["court_order_court"]]
    assert cells == ["'" + c for c in HOSTILE_CELLS]
    for row in rows.values():
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), value


def test_unicode_survives_the_csv(world: World) -> None:
    rid = world.svc.submit(refused(reference="Réf-ÆØÅ-ß-日本")).id
    assert world.sign_in(world.tokens.admin).status_code == 303
    rows = rows_of(world.get("/dpo/requests.csv?" + _query(reference="Réf-ÆØÅ-ß-日本")))
    assert [(r["id"], r["reference"]) for r in rows] == [(rid, "Réf-ÆØÅ-ß-日本")]


def test_a_reference_is_escaped_on_the_page(world: World) -> None:
    ref = '<script>alert("x")</script>'
    rid = world.svc.submit(refused(reference=ref)).id
    assert world.sign_in(world.tokens.admin).status_code == 303
    r = world.get(f"/dpo/requests/{rid}")
    assert ref not in r.text and "&lt;script&gt;" in r.text
    r = world.get("/dpo/requests?" + _query(reference=ref))
    assert ref not in r.text and rid in r.text


# ----- the register ------------------------------------------------------------------------


def test_the_register_shows_only_its_own_reviewers_and_no_names(dpo: World) -> None:
    r = dpo.get("/dpo/register")
    assert "dpo-islington" in r.text and "appeals-islington" in r.text
    assert "ig-whittington" not in r.text  # another organisation's reviewer
    assert "whittington-health" in r.text  # the organisations register is public
    assert "carewall register" in r.text
    for reviewer in dpo.svc.register().reviewers.values():
        assert reviewer.name not in r.text


def test_paging_and_counts(tmp_path: Path) -> None:
    with api(f"sqlite:///{tmp_path / 'cw.db'}", tmp_path) as (client, svc, tokens):
        client.base_url = "https://testserver"
        empty = w_empty(client, svc, tokens)
        assert (
            "No requests have been made to Islington Council yet" in empty.get("/dpo/requests").text
        )
        assert "There are no notices yet" in empty.get("/dpo/notices").text
        assert rows_of(empty.get("/dpo/requests.csv")) == []
        for i in range(27):
            svc.submit(refused(reference=f"PAGE-{i:02}"))
        ids = [s.id for s in svc.list_requests(holder=HOLDER)]  # the register's order
        w = empty
        first = w.get("/dpo/requests")
        assert "27 requests held" in first.text and "Requests 1 to 25 of 27" in first.text
        assert ids[24] in first.text and ids[25] not in first.text
        assert 'href="/dpo/requests?page=2"' in first.text
        last = w.get("/dpo/requests?page=2")
        assert ids[25] in last.text and ids[26] in last.text and ids[0] not in last.text
        assert w.get("/dpo/requests?page=999999999").text.count("/dpo/requests/r") == 2
        assert len(rows_of(w.get("/dpo/requests.csv"))) == 27  # every match, not one page


def w_empty(client: TestClient, svc: Service, tokens: Tokens) -> World:
    w = World(client, svc, tokens, "", "", "", "", "", [])
    assert w.sign_in(tokens.admin).status_code == 303
    return w


def test_the_search_on_sqlite_and_postgresql(served: tuple[TestClient, Service, Tokens]) -> None:
    """The reference is matched in SQL (a JSON function of each database): literally."""
    client, svc, tokens = served
    client.base_url = "https://testserver"
    for ref in ("A%B", "AxB", "A_B_", "Ré-日本"):
        svc.submit(refused(reference=ref))
    w = w_empty(client, svc, tokens)
    for ref, found in (("A%B", 1), ("A_B", 0), ("%", 0), ("A_B_", 1), ("Ré-日本", 1)):
        rows = rows_of(w.get("/dpo/requests.csv?" + _query(reference=ref)))
        assert [r["reference"] for r in rows] == [ref] * found, ref
    r = w.get("/dpo/requests?" + _query(reference="A\x00B"))
    assert r.status_code == 400 and "Traceback" not in r.text
