"""Staff sign-in, sessions and CSRF, attacked through HTTP (the pages' own forms).

Each way round the sign-in that a hostile visitor, another site or a careless admin might
try is a named test: no CSRF token, a requester's token, a forged or replayed cookie, a
revoked token, an expired session, another session's CSRF token, signing out by a link.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from http.cookies import SimpleCookie

import httpx
import pytest
import sqlalchemy as sa
from api_support import Tokens
from fastapi.testclient import TestClient

from carewall.api.auth import revoke_token
from carewall.service import Service

HTML = {"accept": "text/html"}


@pytest.fixture
def web(
    served: tuple[TestClient, Service, Tokens],
) -> Iterator[tuple[TestClient, Service, Tokens]]:
    client, service, tokens = served
    client.base_url = httpx.URL("https://testserver")  # the Secure cookies are sent back
    yield client, service, tokens


def _csrf(page: httpx.Response) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, "the form carries no CSRF token"
    return found.group(1)


def _sign_in(client: TestClient, token: str) -> httpx.Response:
    page = client.get("/sign-in", headers=HTML)
    return client.post(
        "/sign-in",
        data={"csrf_token": _csrf(page), "token": token},
        headers=HTML,
        follow_redirects=False,
    )


def _sessions(service: Service) -> list[tuple[str, str]]:
    with service.store.read() as conn:
        rows = conn.execute(sa.text("SELECT hash, token FROM web_sessions")).all()
    return [(r[0], r[1]) for r in rows]


def _set_cookies(response: httpx.Response) -> dict[str, SimpleCookie]:
    out: dict[str, SimpleCookie] = {}
    for header in response.headers.get_list("set-cookie"):
        jar: SimpleCookie = SimpleCookie()
        jar.load(header)
        for name in jar:
            out[name] = jar
    return out


def test_a_reviewer_signs_in_and_lands_on_their_queue(
    web: tuple[TestClient, Service, Tokens],
) -> None:
    client, service, tokens = web
    r = _sign_in(client, tokens.release)
    assert r.status_code == 303 and r.headers["location"] == "/review"
    cookie = _set_cookies(r)["carewall_session"]["carewall_session"]
    assert cookie["secure"] and cookie["httponly"] and cookie["samesite"].lower() == "lax"
    # Only the secret's hash is stored: a copy of the database cannot be replayed.
    assert [h for h, _ in _sessions(service)] == [hashlib.sha256(cookie.value.encode()).hexdigest()]
    assert cookie.value not in str(_sessions(service))


def test_a_dpo_signs_in_and_lands_on_the_register(web: tuple[TestClient, Service, Tokens]) -> None:
    client, _service, tokens = web
    r = _sign_in(client, tokens.admin)
    assert r.status_code == 303 and r.headers["location"] == "/dpo/requests"


def test_sign_in_without_the_csrf_token_is_refused(web: tuple[TestClient, Service, Tokens]) -> None:
    client, service, tokens = web
    r = client.post("/sign-in", data={"token": tokens.release}, headers=HTML)
    assert r.status_code == 403
    assert "There is a problem" in r.text and "did not come from this site" in r.text
    assert _sessions(service) == []


def test_another_visitors_csrf_token_does_not_work(web: tuple[TestClient, Service, Tokens]) -> None:
    client, service, tokens = web
    theirs = _csrf(client.get("/sign-in", headers=HTML))
    client.cookies.clear()
    client.get("/sign-in", headers=HTML)  # this visitor's own cookie
    r = client.post("/sign-in", data={"csrf_token": theirs, "token": tokens.release}, headers=HTML)
    assert r.status_code == 403 and _sessions(service) == []


def test_the_anonymous_csrf_cookie_is_strict_and_hidden_from_scripts(
    web: tuple[TestClient, Service, Tokens],
) -> None:
    client, _service, _tokens = web
    r = client.get("/sign-in", headers=HTML)
    cookie = _set_cookies(r)["carewall_csrf"]["carewall_csrf"]
    assert cookie["samesite"].lower() == "strict" and cookie["httponly"] and cookie["secure"]


def test_a_requester_token_cannot_sign_in(web: tuple[TestClient, Service, Tokens]) -> None:
    client, service, tokens = web
    r = _sign_in(client, tokens.requester)
    assert r.status_code == 403 and "requester tokens cannot sign in" in r.text.lower()
    assert _sessions(service) == []


@pytest.mark.parametrize(
    "token",
    [
        "",
        "   ",
        "cw_not-a-real-token",
        "Bearer cw_x",
        "cw_" + "a" * 5000,
        "ｃｗ_fullwidth",
        "cw_\u0000",
    ],
)
def test_unknown_or_malformed_tokens_are_refused_without_echo(
    web: tuple[TestClient, Service, Tokens], token: str
) -> None:
    client, service, _tokens = web
    r = _sign_in(client, token)
    assert r.status_code in (401, 403)
    assert 'href="#token"' in r.text  # the error summary links to the field
    if token.strip():
        assert token.strip() not in r.text  # a pasted secret is never shown back
    assert _sessions(service) == []


def test_a_token_with_spaces_around_it_still_signs_in(
    web: tuple[TestClient, Service, Tokens],
) -> None:
    client, _service, tokens = web
    assert _sign_in(client, f"  {tokens.release}\n").status_code == 303


def test_revoking_the_token_ends_its_sessions_at_once(
    web: tuple[TestClient, Service, Tokens],
) -> None:
    client, service, tokens = web
    _sign_in(client, tokens.admin)
    assert client.get("/dpo/requests", headers=HTML).status_code == 200
    (token_id,) = {t for _, t in _sessions(service)}
    revoke_token(service.store, token_id)
    r = client.get("/dpo/requests", headers=HTML)
    assert r.status_code == 401 and "sign in" in r.text.lower()


def test_an_expired_session_is_signed_out(web: tuple[TestClient, Service, Tokens]) -> None:
    client, service, tokens = web
    _sign_in(client, tokens.admin)
    with service.store.write() as conn:
        conn.execute(sa.text("UPDATE web_sessions SET expires_at = '2000-01-01T00:00:00Z'"))
    assert client.get("/dpo/requests", headers=HTML).status_code == 401


def test_a_forged_session_cookie_signs_nobody_in(web: tuple[TestClient, Service, Tokens]) -> None:
    client, service, tokens = web
    _sign_in(client, tokens.admin)
    (stored_hash, _token) = _sessions(service)[0]
    client.cookies.clear()
    for forged in (stored_hash, "x" * 43, "", "a" * 500):
        client.cookies.set("carewall_session", forged, domain="testserver")
        assert client.get("/dpo/requests", headers=HTML).status_code == 401


def test_signing_in_again_never_reuses_a_planted_session(
    web: tuple[TestClient, Service, Tokens],
) -> None:
    client, _service, tokens = web
    client.cookies.set("carewall_session", "planted-by-an-attacker", domain="testserver")
    r = _sign_in(client, tokens.release)
    issued = _set_cookies(r)["carewall_session"]["carewall_session"].value
    assert issued != "planted-by-an-attacker" and len(issued) >= 40


def test_sign_out_needs_the_form_and_ends_the_session(
    web: tuple[TestClient, Service, Tokens],
) -> None:
    client, service, tokens = web
    _sign_in(client, tokens.admin)
    secret = client.cookies.get("carewall_session")
    assert secret
    # A link or another site's form cannot sign someone out.
    assert client.post("/sign-out", data={}, headers=HTML).status_code == 403
    assert len(_sessions(service)) == 1
    form = client.get("/sign-out", headers=HTML)
    r = client.post("/sign-out", data={"csrf_token": _csrf(form)}, follow_redirects=False)
    assert r.status_code == 303 and _sessions(service) == []
    # Replaying the old cookie after sign-out gets nowhere.
    client.cookies.set("carewall_session", secret, domain="testserver")
    assert client.get("/dpo/requests", headers=HTML).status_code == 401


def test_a_session_csrf_token_is_not_the_anonymous_one(
    web: tuple[TestClient, Service, Tokens],
) -> None:
    client, _service, tokens = web
    anonymous = _csrf(client.get("/sign-in", headers=HTML))
    _sign_in(client, tokens.admin)
    signed_in = _csrf(client.get("/sign-out", headers=HTML))
    assert anonymous != signed_in
    r = client.post("/sign-out", data={"csrf_token": anonymous}, headers=HTML)
    assert r.status_code == 403  # the pre-sign-in token no longer counts


def test_pages_send_a_strict_content_security_policy(
    web: tuple[TestClient, Service, Tokens],
) -> None:
    client, _service, _tokens = web
    r = client.get("/sign-in", headers=HTML)
    csp = r.headers["content-security-policy"]
    assert "script-src 'self' 'nonce-" in csp and "'unsafe-inline'" not in csp
    assert "frame-ancestors 'none'" in csp and "form-action 'self'" in csp
    assert r.headers["cache-control"] == "no-store"
    nonce = re.search(r"'nonce-([^']+)'", csp)
    assert nonce and f'nonce="{nonce.group(1)}"' in r.text


def test_a_malformed_form_post_is_a_page_not_a_500(web: tuple[TestClient, Service, Tokens]) -> None:
    client, _service, _tokens = web
    for body, ctype in (
        (b"\xff\xfe\x00garbage", "application/x-www-form-urlencoded"),
        (b"--x\r\nbroken", "multipart/form-data; boundary=x"),
        (b'{"token": "cw_x"}', "application/json"),
    ):
        r = client.post("/sign-in", content=body, headers={**HTML, "content-type": ctype})
        assert r.status_code == 403 and "<html" in r.text
