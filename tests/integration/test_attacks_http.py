"""A hostile review of the HTTP surface: a hostile requester, a nosy subject, a low-privilege
token, and anyone on the internet.

Each test asserts what should happen. A test marked ``xfail(strict=True)`` is a gap found in
review: its reason says what goes wrong; it starts passing (and so fails, being strict) once
the gap is fixed, and then loses its mark.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from api_support import HOLDER, Tokens, access_code, api, example, refused, reviewable
from fastapi.testclient import TestClient
from httpx import Response

from carewall.api.admin import issue_token
from carewall.api.app import create_app
from carewall.service import Service

HTML = {"accept": "text/html"}
SECRET = "Zelda-Q-Nobody-7781"  # stands for personal data: must never come back or be logged
MISSING = "r" + "0" * 20


@dataclass
class World:
    client: TestClient  # raises on a server error, so any 500 fails the test outright
    svc: Service
    tokens: Tokens

    def auth(self, name: str) -> dict[str, str]:
        return self.tokens.auth(name)

    def json_post(self, path: str, body: bytes, token: str | None = None) -> Response:
        headers = {"content-type": "application/json"}
        if token is not None:
            headers.update(self.auth(token))
        r: Response = self.client.post(path, content=body, headers=headers)
        return r

    def waiting(self, **changes: Any) -> str:
        got = self.svc.submit(reviewable(**changes))
        assert got.outcome == "review"
        return got.id

    def released(self, **changes: Any) -> tuple[str, str]:
        rid = self.waiting(**changes)
        self.svc.review(rid, "dpo-islington", True)
        return rid, access_code(self.svc, rid)

    def peer(self, address: str) -> TestClient:
        """A client at another network address (the limiter counts per address)."""
        return TestClient(self.client.app, client=(address, 40000))


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with api(f"sqlite:///{tmp_path / 'cw.db'}", tmp_path) as (client, svc, tokens):
        yield World(client, svc, tokens)


def assert_error_shape(r: Response) -> dict[str, Any]:
    body: dict[str, Any] = r.json()
    assert set(body) <= {"error", "message", "field", "fix", "fields"}, body
    assert body["error"] and body["message"], body
    assert "Traceback" not in r.text and 'File "' not in r.text
    return body


# ----- scoping: another organisation's request is a 404 exactly like a missing one ----------


def _same_404(a: Response, b: Response) -> None:
    assert a.status_code == b.status_code == 404, (a.text, b.text)
    assert a.json() == b.json()


@pytest.mark.parametrize(
    ("method", "path", "token", "body"),
    [
        ("GET", "/api/requests/{id}", "other_requester", None),
        ("POST", "/api/requests/{id}/withdraw", "other_requester", None),
        ("POST", "/api/requests/{id}/appeal", "other_requester", {"grounds": "not ours"}),
        ("GET", "/api/requests/{id}/record", "other_release", None),
        ("POST", "/api/requests/{id}/review", "other_release", {"release": True}),
    ],
)
def test_another_organisations_request_is_a_404_like_a_missing_one(
    world: World, method: str, path: str, token: str, body: dict[str, Any] | None
) -> None:
    rid = world.waiting()
    theirs = world.client.request(method, path.format(id=rid), json=body, headers=world.auth(token))
    missing = world.client.request(
        method, path.format(id=MISSING), json=body, headers=world.auth(token)
    )
    _same_404(theirs, missing)
    record = world.svc.get(rid)
    assert (record.stage, record.outcome, record.withdrawn_at) == ("decided", "review", None)


def test_another_holders_appeal_reviewer_cannot_decide_an_appeal(world: World) -> None:
    rid = world.svc.submit(refused()).id
    world.svc.appeal(rid, "requester", "the offence was mis-coded")
    other = issue_token(world.svc, "whittington-health", "appeal_reviewer", "caldicott-whittington")
    headers = {"Authorization": f"Bearer {other.secret}"}
    path = "/api/requests/{}/appeal/decision"
    theirs = world.client.post(path.format(rid), json={"uphold": False}, headers=headers)
    missing = world.client.post(path.format(MISSING), json={"uphold": False}, headers=headers)
    _same_404(theirs, missing)
    assert world.svc.get(rid).stage == "appealed"


def test_another_holders_deferral_answers_like_a_missing_request(world: World) -> None:
    rid = world.waiting(prejudice=True)
    world.svc.review(rid, "dpo-islington", True)
    body = {"action": "lift"}
    theirs = world.client.post(
        f"/api/requests/{rid}/deferral", json=body, headers=world.auth("other_release")
    )
    missing = world.client.post(
        f"/api/requests/{MISSING}/deferral", json=body, headers=world.auth("other_release")
    )
    assert theirs.status_code == missing.status_code and theirs.json() == missing.json()
    assert all(n.status == "deferred" for n in world.svc.get(rid).notices)


def test_another_holders_deferral_is_a_404(world: World) -> None:
    rid = world.waiting(prejudice=True)
    world.svc.review(rid, "dpo-islington", True)
    r = world.client.post(
        f"/api/requests/{rid}/deferral",
        json={"action": "lift"},
        headers=world.auth("other_release"),
    )
    assert r.status_code == 404


def test_a_requester_lists_none_of_another_requesters_requests(world: World) -> None:
    rid = world.waiting()
    for query in ("", "?state=decided", "?state=review", "?limit=1000"):
        r = world.client.get("/api/requests" + query, headers=world.auth("other_requester"))
        assert r.status_code == 200 and rid not in r.text


# ----- odd ids in paths --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spelling", "status"),
    [
        ("upper", 404),  # another id: ids are case-sensitive, and the answer says nothing
        ("fullwidth", 422),  # a look-alike letter is not an id
        ("newline", 422),
        ("long", 422),
        ("dotdot", 404),  # %2F decodes to a slash: no route, whatever the id
    ],
)
def test_odd_spellings_of_an_id_never_reach_the_request(
    world: World, spelling: str, status: int
) -> None:
    rid = world.waiting()
    path = {
        "upper": rid.upper(),
        "fullwidth": "\uff52" + rid[1:],
        "newline": rid + "%0A",
        "long": rid * 4,
        "dotdot": "..%2F" + rid,
    }[spelling]
    r = world.client.get(f"/api/requests/{path}", headers=world.auth("requester"))
    assert r.status_code == status, r.text
    body = assert_error_shape(r)
    assert rid not in r.text and "MPS-2026" not in r.text
    if status == 422:
        assert body["field"] == "request_id"


def test_a_percent_encoded_id_is_the_same_id(world: World) -> None:
    rid = world.waiting()
    r = world.client.get(
        f"/api/requests/%{ord(rid[0]):02X}{rid[1:]}", headers=world.auth("requester")
    )
    assert r.status_code == 200 and r.json()["id"] == rid


def test_a_trailing_slash_never_redirects_to_the_host_header(world: World) -> None:
    rid = world.waiting()
    r = world.client.get(
        f"/api/requests/{rid}/",
        headers={**world.auth("requester"), "host": "evil.example"},
        follow_redirects=False,
    )
    assert "evil.example" not in r.headers.get("location", "")


# ----- tokens ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "where",
    ["query access_token", "query token", "cookie", "basic", "lowercase scheme twice", "huge"],
)
def test_a_token_anywhere_but_the_authorization_header_is_not_a_token(
    world: World, where: str
) -> None:
    rid = world.waiting()
    secret = world.tokens.requester
    url, headers = f"/api/requests/{rid}", {}
    if where == "query access_token":
        url += f"?access_token={secret}"
    elif where == "query token":
        url += f"?token={secret}"
    elif where == "cookie":
        world.client.cookies.set("Authorization", f"Bearer {secret}")
        world.client.cookies.set("token", secret)
    elif where == "basic":
        headers = {"Authorization": f"Basic {secret}"}
    elif where == "lowercase scheme twice":
        headers = {"Authorization": f"bearer bearer {secret}"}
    else:
        headers = {"Authorization": "Bearer cw_" + "A" * 100_000}
    r = world.client.get(url, headers=headers)
    assert r.status_code == 401, r.text
    assert secret not in r.text and "MPS-2026" not in r.text
    assert_error_shape(r)


def test_a_revoked_token_sees_nothing(world: World) -> None:
    rid = world.waiting()
    issued = issue_token(world.svc, "met-police", "requester")
    headers = {"Authorization": f"Bearer {issued.secret}"}
    assert world.client.get(f"/api/requests/{rid}", headers=headers).status_code == 200
    r = world.client.delete(f"/api/admin/tokens/{issued.info.id}", headers=world.auth("admin"))
    # an admin of the holder may not revoke the requester's token (another organisation)
    assert r.status_code == 404
    from carewall.api.auth import revoke_token

    revoke_token(world.svc.store, issued.info.id)
    assert world.client.get(f"/api/requests/{rid}", headers=headers).status_code == 401


# ----- odd JSON ----------------------------------------------------------------------------


ODD_SMALL_BODIES: list[tuple[str, bytes]] = [
    ("deep nesting", b'{"release": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"),
    ("huge integer", b'{"release": 1' + b"0" * 5_000 + b"}"),
    ("bad utf-8", b'{"note": "\xff\xfe", "release": true}'),
]


@pytest.mark.parametrize(("name", "body"), ODD_SMALL_BODIES, ids=[b[0] for b in ODD_SMALL_BODIES])
def test_an_unparseable_small_body_is_refused_without_a_500(
    world: World, name: str, body: bytes
) -> None:
    rid = world.waiting()
    r = world.json_post(f"/api/requests/{rid}/review", body, "release")
    assert 400 <= r.status_code < 500, r.text
    assert_error_shape(r)
    assert world.svc.summary(rid).outcome == "review"


@pytest.mark.parametrize(("name", "body"), ODD_SMALL_BODIES, ids=[b[0] for b in ODD_SMALL_BODIES])
def test_an_unparseable_small_body_names_the_body_and_the_fix(
    world: World, name: str, body: bytes
) -> None:
    rid = world.waiting()
    r = world.json_post(f"/api/requests/{rid}/review", body, "release")
    got = assert_error_shape(r)
    assert got.get("field") and got.get("fix"), got


def test_a_duplicate_key_in_a_decision_is_refused(world: World) -> None:
    rid = world.waiting()
    r = world.json_post(
        f"/api/requests/{rid}/review", b'{"release": false, "release": true}', "release"
    )
    assert r.status_code == 422, r.text
    assert world.svc.summary(rid).outcome == "review"


def test_a_duplicate_key_in_the_request_document_is_refused(world: World) -> None:
    doc = json.dumps(reviewable())[:-1] + ', "holder": "whittington-health"}'
    r = world.json_post("/api/requests", doc.encode(), "requester")
    assert r.status_code == 422 and assert_error_shape(r)["field"]
    assert world.svc.list_requests() == []


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("bom", b"\xef\xbb\xbf" + json.dumps(reviewable()).encode()),
        ("utf-16", json.dumps(reviewable()).encode("utf-16")),
        ("nan", json.dumps(reviewable(necessity=0)).replace("0", "NaN", 1).encode()),
        ("infinity in a string's place", json.dumps(reviewable())[:-1].encode() + b', "x": 1e999}'),
        ("array", json.dumps([reviewable()]).encode()),
        ("empty", b""),
    ],
)
def test_an_odd_request_document_is_refused_naming_something(
    world: World, name: str, body: bytes
) -> None:
    r = world.json_post("/api/requests", body, "requester")
    assert r.status_code == 422, r.text
    got = assert_error_shape(r)
    assert got.get("field") and got.get("fix")
    assert world.svc.list_requests() == []


def test_numbers_where_text_goes_are_refused_naming_the_field(world: World) -> None:
    for field, value in [("reference", float("nan")), ("necessity", 1e308), ("prejudice", 1)]:
        body = json.dumps(reviewable(**{field: value}), allow_nan=True).encode()
        r = world.json_post("/api/requests", body, "requester")
        assert r.status_code == 422 and r.json()["field"] == field, r.text
    assert world.svc.list_requests() == []


def test_an_empty_subject_body_does_not_blame_the_request_id(world: World) -> None:
    r = world.json_post("/api/subject/view", b"")
    assert r.status_code == 422
    assert r.json()["field"] != "request", r.json()


def test_an_unknown_key_is_not_echoed_at_any_length(world: World) -> None:
    rid = world.waiting()
    key = SECRET + "k" * 100_000
    r = world.client.post(
        f"/api/requests/{rid}/review", json={"release": True, key: 1}, headers=world.auth("release")
    )
    assert r.status_code == 422
    assert len(r.text) < 2_000


def test_error_bodies_and_logs_echo_no_values(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="carewall")
    rid = world.waiting()
    cases: list[tuple[str, str, dict[str, Any]]] = [
        ("requester", "/api/requests", reviewable(holder=SECRET)),
        ("requester", "/api/requests", reviewable(purpose=SECRET)),
        ("requester", "/api/requests", reviewable(received_at=SECRET)),
        ("requester", "/api/requests", reviewable(reference=SECRET + "\n")),
        ("requester", "/api/requests", reviewable(necessity=SECRET + "\x00")),
        ("requester", "/api/requests", reviewable(requester=SECRET)),
        ("release", f"/api/requests/{rid}/review", {"release": True, "note": SECRET + "\x00"}),
        ("release", f"/api/requests/{rid}/review", {"release": True, "defer_until": SECRET}),
        ("release", f"/api/requests/{rid}/review", {"release": SECRET}),
        ("release", f"/api/requests/{rid}/deferral", {"action": SECRET}),
        ("requester", f"/api/requests/{rid}/appeal", {"grounds": SECRET}),
    ]
    for token, path, body in cases:
        r = world.client.post(path, json=body, headers=world.auth(token))
        assert 400 <= r.status_code < 500, r.text
        assert SECRET not in r.text, (path, r.text)
    r = world.client.post("/api/subject/view", json={"request": rid, "code": SECRET})
    assert r.status_code == 401 and SECRET not in r.text
    r = world.client.get(f"/api/deferrals?due={SECRET}", headers=world.auth("release"))
    assert r.status_code == 422 and SECRET not in r.text
    r = world.client.post(
        "/api/requests",
        json=reviewable(),
        headers={**world.auth("requester"), "Idempotency-Key": SECRET + "!"},
    )
    assert r.status_code == 422 and SECRET not in r.text
    assert SECRET not in caplog.text


# ----- query parameters --------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "limit=abc",
        "limit=0",
        "limit=1e3",
        f"limit={10**30}",
        "cursor=AAAA",
        "cursor=%00",
        "state=%00",
    ],
)
def test_odd_query_parameters_are_422_naming_them(world: World, query: str) -> None:
    r = world.client.get(f"/api/requests?{query}", headers=world.auth("requester"))
    assert r.status_code == 422, r.text
    assert assert_error_shape(r)["field"] == query.split("=")[0]


def test_an_unknown_state_is_refused_naming_the_values(world: World) -> None:
    world.svc.submit(refused())
    r = world.client.get("/api/requests?state=refsued", headers=world.auth("requester"))
    assert r.status_code == 422 and r.json()["field"] == "state"


def test_a_repeated_query_parameter_never_widens_scope(world: World) -> None:
    rid = world.waiting()
    r = world.client.get(
        "/api/requests?state=review&state=decided&limit=1&limit=1000",
        headers=world.auth("other_requester"),
    )
    assert r.status_code == 200 and rid not in r.text


# ----- the subject's access code -----------------------------------------------------------


def test_a_wrong_code_and_a_missing_request_get_one_answer(world: World) -> None:
    rid, code = world.released()
    other, _ = world.released()
    answers = [
        world.client.post("/api/subject/view", json={"request": rid, "code": "wrong"}),
        world.client.post("/api/subject/view", json={"request": MISSING, "code": "wrong"}),
        world.client.post("/api/subject/view", json={"request": MISSING, "code": code}),
        # a right code for another request is as wrong as any other
        world.client.post("/api/subject/view", json={"request": other, "code": code}),
    ]
    assert {a.status_code for a in answers} == {401}
    assert len({a.text for a in answers}) == 1
    assert rid not in answers[0].text


def test_a_right_code_while_the_client_is_blocked_is_not_even_checked(world: World) -> None:
    rid, code = world.released()
    guesser = world.peer("203.0.113.9")
    statuses = [
        guesser.post("/api/subject/view", json={"request": rid, "code": f"guess-{i}"}).status_code
        for i in range(6)
    ]
    assert statuses == [401] * 5 + [429]
    r = guesser.post("/api/subject/view", json={"request": rid, "code": code})
    assert r.status_code == 429 and r.headers["Retry-After"].isdigit()
    assert "ISL-CRN" not in r.text


def test_a_stranger_cannot_lock_the_subject_out(world: World) -> None:
    rid, code = world.released()
    assert rid in world.client.get("/log/entries?start=0&end=" + str(world.svc.ledger.size())).text
    stranger = world.peer("203.0.113.9")
    for i in range(6):
        stranger.post("/api/subject/view", json={"request": rid, "code": f"guess-{i}"})
    subject = world.peer("198.51.100.7")
    r = subject.post("/api/subject/view", json={"request": rid, "code": code})
    assert r.status_code == 200, r.text


def _codes(svc: Service, rid: str) -> list[str]:
    found = [
        re.search(r"Your access code:\s+(\S+)", m["body"]) for m in svc.outbox() if rid in m["body"]
    ]
    return [f.group(1) for f in found if f is not None]


def _two_subjects() -> list[dict[str, Any]]:
    return [
        {"ref": "TEST-A-1", "is_child": False, "is_victim_or_witness": False},
        {"ref": "TEST-B-2", "is_child": False, "is_victim_or_witness": False},
    ]


def test_a_subject_sees_nothing_of_another_subjects_appeal_in_the_view(world: World) -> None:
    rid = world.waiting(subjects=_two_subjects())
    world.svc.review(rid, "dpo-islington", True)
    first, second = _codes(world.svc, rid)
    grounds = "I was abroad that week " + SECRET
    r = world.client.post(
        "/api/subject/appeal", json={"request": rid, "code": first, "grounds": grounds}
    )
    assert r.status_code == 200, r.text
    view = world.client.post("/api/subject/view", json={"request": rid, "code": second})
    assert view.status_code == 200
    assert view.json()["appeal"] is None and SECRET not in view.text
    assert "TEST-A-1" not in view.text


def test_a_second_subject_may_appeal_and_learns_nothing_of_the_first(world: World) -> None:
    rid = world.waiting(subjects=_two_subjects())
    world.svc.review(rid, "dpo-islington", True)
    first, second = _codes(world.svc, rid)
    world.client.post(
        "/api/subject/appeal", json={"request": rid, "code": first, "grounds": "not me"}
    )
    r = world.client.post(
        "/api/subject/appeal", json={"request": rid, "code": second, "grounds": "nor me"}
    )
    assert r.status_code == 200, r.text


def test_a_subjects_view_never_shows_other_subjects_or_the_requesters_private_fields(
    world: World,
) -> None:
    rid = world.waiting(subjects=_two_subjects())
    world.svc.review(rid, "dpo-islington", True, "reviewer note " + SECRET)
    first, _ = _codes(world.svc, rid)
    r = world.client.post("/api/subject/view", json={"request": rid, "code": first})
    assert r.status_code == 200
    for private in ("TEST-A-1", "TEST-B-2", "MPS-2026", "DC J. Smith", "Suspect in", SECRET):
        assert private not in r.text, private


# ----- hostile text on staff pages -----------------------------------------------------------


def _csrf_of(page: Response) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found is not None, page.text[:300]
    return found.group(1)


def _sign_in(client: TestClient, token: str) -> str:
    client.cookies.clear()
    page = client.get("/sign-in", headers=HTML)
    r = client.post(
        "/sign-in",
        data={"csrf_token": _csrf_of(page), "token": token},
        headers=HTML,
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return _csrf_of(client.get("/sign-out", headers=HTML))


@pytest.fixture
def web(world: World) -> World:
    world.client.base_url = "https://testserver"  # so the Secure session cookie is sent back
    return world


def test_a_subjects_script_in_their_grounds_is_inert_on_the_reviewers_page(web: World) -> None:
    rid, code = web.released()
    script = '<script>alert("x")</script><img src=x onerror=alert(1)>"\'&'
    r = web.client.post(
        "/api/subject/appeal", json={"request": rid, "code": code, "grounds": script}
    )
    assert r.status_code == 200
    appeal = issue_token(web.svc, HOLDER, "appeal_reviewer", "appeals-islington").secret
    _sign_in(web.client, appeal)
    page = web.client.get(f"/review/requests/{rid}", headers=HTML)
    assert page.status_code == 200
    assert "<script>alert" not in page.text and "<img src=x" not in page.text
    assert "&lt;script&gt;alert" in page.text
    # the DPO's page never shows grounds at all
    _sign_in(web.client, web.tokens.admin)
    page = web.client.get(f"/dpo/requests/{rid}", headers=HTML)
    assert page.status_code == 200 and "alert" not in page.text


POST_FORMS = [
    ("/review/requests/{id}", "release", {"decision": "refuse"}),
    ("/review/requests/{id}/appeal", "appeal", {"decision": "uphold"}),
    ("/review/requests/{id}/deferral", "release", {"action": "lift"}),
    ("/sign-out", "release", {}),
]


@pytest.mark.parametrize(("path", "who", "data"), POST_FORMS, ids=[p[0] for p in POST_FORMS])
@pytest.mark.parametrize("csrf", ["missing", "another session's", "the anonymous cookie's"])
def test_every_staff_form_refuses_a_forged_post(
    web: World, path: str, who: str, data: dict[str, str], csrf: str
) -> None:
    rid = web.waiting(prejudice=True)
    token = getattr(web.tokens, who)
    if who == "appeal":
        token = issue_token(web.svc, HOLDER, "appeal_reviewer", "appeals-islington").secret
    other = _sign_in(web.client, web.tokens.admin)
    anonymous = web.client.cookies.get("carewall_csrf")
    _sign_in(web.client, token)
    form = dict(data)
    if csrf == "another session's":
        form["csrf_token"] = other
    elif csrf == "the anonymous cookie's":
        assert anonymous is not None
        form["csrf_token"] = anonymous
    before = web.svc.ledger.size()
    r = web.client.post(path.format(id=rid), data=form, headers=HTML, follow_redirects=False)
    assert r.status_code in (403, 404), r.text[:300]
    assert web.svc.ledger.size() == before
    assert web.client.get("/review", headers=HTML).status_code == 200  # still signed in


def test_the_subjects_forms_refuse_a_forged_post(web: World) -> None:
    rid, code = web.released()
    for path in ("/my-data", "/my-data/appeal"):
        web.client.cookies.clear()
        data = {"request_id": rid, "code": code, "grounds": "forged"}
        r = web.client.post(path, data=data, headers=HTML)
        assert r.status_code == 403
        assert "ISL-CRN" not in r.text and code not in r.text
    assert web.svc.get(rid).appeal is None


def test_another_holders_reviewer_page_is_a_404_like_a_missing_one(web: World) -> None:
    rid = web.waiting()
    csrf = _sign_in(web.client, web.tokens.other_release)
    pages = [f"/review/requests/{rid}", f"/review/requests/{MISSING}"]
    got = [web.client.get(p, headers=HTML) for p in pages]
    assert [g.status_code for g in got] == [404, 404]
    posts = [
        web.client.post(
            p,
            data={"csrf_token": csrf, "decision": "release"},
            headers=HTML,
            follow_redirects=False,
        )
        for p in pages
    ]
    assert [p.status_code for p in posts] == [404, 404]
    assert web.svc.summary(rid).outcome == "review"
    assert "MPS-2026" not in got[0].text + posts[0].text


def test_no_json_route_answers_a_browser_with_private_data_in_an_error_page(web: World) -> None:
    r = web.client.get(f"/api/requests/{SECRET}!", headers={**HTML, **web.auth("requester")})
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/json")
    assert SECRET not in r.text


# ----- sizes ---------------------------------------------------------------------------------


def test_an_oversized_small_body_is_413_and_records_nothing(world: World) -> None:
    rid = world.waiting()
    client = TestClient(create_app(world.svc, max_body=4096))
    r = client.post(
        f"/api/requests/{rid}/review",
        json={"release": True, "note": "x" * 10_000},
        headers=world.auth("release"),
    )
    assert r.status_code == 413 and assert_error_shape(r)["error"] == "too_large"
    assert world.svc.summary(rid).outcome == "review"


def test_an_oversized_idempotency_key_or_prefer_header_is_named(world: World) -> None:
    r = world.client.post(
        "/api/requests",
        json=reviewable(),
        headers={**world.auth("requester"), "Idempotency-Key": "k" * 10_000},
    )
    assert r.status_code == 422 and "Idempotency" in r.json()["field"]
    rid = world.waiting()
    r = world.client.post(
        f"/api/requests/{rid}/review",
        json={"release": False},
        headers={**world.auth("release"), "Prefer": "x" * 10_000},
    )
    assert r.status_code == 422 and r.json()["field"] == "prefer"
    assert world.svc.summary(rid).outcome == "review"
    assert len(world.svc.list_requests()) == 1


def test_example_documents_are_what_the_tests_think(world: World) -> None:
    # guards the fixtures above: a refused request is refused, a reviewable one waits
    assert world.svc.submit(refused()).outcome == "refused"
    assert example()["requester"] == "met-police"
