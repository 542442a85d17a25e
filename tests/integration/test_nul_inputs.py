"""The NUL trial: every free-text field refuses what PostgreSQL cannot store, on both backends.

PostgreSQL's ``text`` holds no NUL character and no UTF-8 database holds a lone surrogate;
SQLite would store both. So each free-text field that reaches the database is tried, on
SQLite and on PostgreSQL, with a NUL and with a lone surrogate: each is refused with a 422
naming the field, nothing is recorded (no request, no ledger entry, no state change), and
the same input without the bad character is then accepted. Both backends therefore accept
exactly the same documents.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from api_support import Tokens, access_code, refused, reviewable
from click.testing import CliRunner
from fastapi.testclient import TestClient

from carewall.cli import main
from carewall.errors import InputError
from carewall.service import Service

BAD = {"nul": "\x00", "surrogate": "\ud800"}
COURT_ORDER = {"reference": "T20267781", "court": "Snaresbrook Crown Court", "date": "2025-11-02"}

# Every free-text field of the request document (contract §3), by the name errors give it.
DOC_FIELDS = [
    "reference",
    "officer.name",
    "officer.role",
    "officer.contact",
    "authorised_by.name",
    "authorised_by.role",
    "necessity",
    "court_order.reference",
    "court_order.court",
    "subjects[0].ref",
    "subjects[0].contact",
]


def _document(field: str, text: str) -> dict[str, Any]:
    """The reviewable example with a court order, ``field`` set to ``text``."""
    doc = reviewable(court_order=dict(COURT_ORDER))
    doc["subjects"] = [dict(doc["subjects"][0], contact="Flat 2, 10 High Street")]
    parts = field.replace("[0]", ".0").split(".")
    where: Any = doc
    for part in parts[:-1]:
        where = where[int(part)] if part.isdigit() else where[part]
    where[parts[-1]] = text
    return doc


def _body(doc: dict[str, Any]) -> bytes:
    # json.dumps writes a lone surrogate as the escape \ud800, as a client's JSON would
    return json.dumps(doc).encode("ascii")


def _ledger_size(svc: Service) -> int:
    return svc.ledger.size()


def _refused(response: httpx.Response, field: str) -> None:
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field, response.text
    for echoed in ("A\\u0000B", "A\\ud800B", "A\x00B"):  # the value is never echoed
        assert echoed not in response.text


@pytest.mark.parametrize("field", DOC_FIELDS)
def test_a_request_document_field(served: tuple[TestClient, Service, Tokens], field: str) -> None:
    client, svc, tokens = served
    headers = {**tokens.auth("requester"), "Content-Type": "application/json"}
    size = _ledger_size(svc)
    for bad in BAD.values():
        response = client.post(
            "/api/requests", content=_body(_document(field, f"A{bad}B")), headers=headers
        )
        _refused(response, field)
        assert svc.list_requests() == []
        assert _ledger_size(svc) == size
    clean = client.post("/api/requests", content=_body(_document(field, "AB")), headers=headers)
    assert clean.status_code == 201, clean.text
    assert [r.id for r in svc.list_requests()] == [clean.json()["id"]]


# ----- the fields written after a request: notes, grounds, names, policy text ------------


@dataclass
class World:
    client: TestClient
    svc: Service
    tokens: Tokens
    request_id: str = ""


def _json(
    w: World, method: str, path: str, body: dict[str, Any], token: str | None = None
) -> httpx.Response:
    """``body`` as JSON with ASCII escapes (a lone surrogate as \\ud800), as clients send it."""
    headers = {"Content-Type": "application/json", **(w.tokens.auth(token) if token else {})}
    return w.client.request(method, path, content=json.dumps(body).encode("ascii"), headers=headers)


def _reviewable(w: World) -> None:
    w.request_id = w.svc.submit(reviewable()).id


def _refused_request(w: World) -> None:
    w.request_id = w.svc.submit(refused()).id


def _released(w: World) -> None:
    _reviewable(w)
    w.svc.review(w.request_id, "dpo-islington", True)
    w.svc.deliver_pending()


def _nothing(w: World) -> None:
    pass


def _review_note(w: World, text: str) -> httpx.Response:
    body = {"release": False, "note": text}
    path = f"/api/requests/{w.request_id}/review"
    return _json(w, "POST", path, body, "release")


def _requester_grounds(w: World, text: str) -> httpx.Response:
    path = f"/api/requests/{w.request_id}/appeal"
    return _json(w, "POST", path, {"grounds": text}, "requester")


def _subject_grounds(w: World, text: str) -> httpx.Response:
    code = access_code(w.svc, w.request_id)
    body = {"request": w.request_id, "code": code, "grounds": text}
    return _json(w, "POST", "/api/subject/appeal", body)


def _reviewer_name(w: World, text: str) -> httpx.Response:
    body = {"id": "new-reviewer", "name": text, "roles": ["release_reviewer"]}
    return _json(w, "POST", "/api/admin/reviewers", body, "admin")


def _policy_text(w: World, text: str) -> httpx.Response:
    body = {"text": f"// local rules: {text}\n"}
    return _json(w, "PUT", "/api/admin/policy", body, "admin")


def _state(w: World) -> object:
    """What a refused input must leave unchanged: every request's state, its note and
    appeal, the register's reviewers, the local policy and the ledger."""
    records = [w.svc.get(r.id) for r in w.svc.list_requests()]
    return (
        [(r.id, r.stage, r.outcome, r.review_note, r.appeal) for r in records],
        sorted(w.svc.register().reviewers),
        w.svc.local_policy(),
        _ledger_size(w.svc),
    )


# case: (set the scene, send the text, the field named, the status of a clean input, a
# clean input: tabs and line breaks are fine in notes and grounds, a name is one line)
LATER_FIELDS: dict[
    str, tuple[Callable[[World], None], Callable[[World, str], httpx.Response], str, int, str]
] = {
    "review note": (_reviewable, _review_note, "note", 200, "A\tB\nC"),
    "requester's appeal grounds": (_refused_request, _requester_grounds, "grounds", 200, "A\nB"),
    "subject's appeal grounds": (_released, _subject_grounds, "grounds", 200, "A\r\nB"),
    "reviewer name": (_nothing, _reviewer_name, "name", 201, "A. B"),
    "policy text": (_nothing, _policy_text, "text", 200, "A\tB"),
}


@pytest.mark.parametrize("case", list(LATER_FIELDS))
def test_a_later_field(served: tuple[TestClient, Service, Tokens], case: str) -> None:
    client, svc, tokens = served
    world = World(client, svc, tokens)
    prepare, send, field, ok, clean_text = LATER_FIELDS[case]
    prepare(world)
    before = _state(world)
    for bad in BAD.values():
        _refused(send(world, f"A{bad}B"), field)
        assert _state(world) == before
    clean = send(world, clean_text)
    assert clean.status_code == ok, clean.text
    assert _state(world) != before


# ----- the same refusals without HTTP: the Python API and the CLI -------------------------


def test_the_service_refuses_them_too(db_url: str, tmp_path: Any) -> None:
    from api_support import init_service

    svc = init_service(db_url, tmp_path)
    try:
        size = _ledger_size(svc)
        for field in DOC_FIELDS:
            for bad in BAD.values():
                with pytest.raises(InputError) as e:
                    svc.submit(_document(field, f"A{bad}B"))
                assert e.value.field == field
        rid = svc.submit(reviewable()).id
        size = _ledger_size(svc)
        for bad in BAD.values():
            with pytest.raises(InputError) as e:
                svc.review(rid, "dpo-islington", False, f"note{bad}")
            assert e.value.field == "note"
            with pytest.raises(InputError) as e:
                svc.set_local_policy(f"// {bad}\n")
            assert e.value.field == "text"
            with pytest.raises(InputError) as e:
                svc.add_reviewer("x-reviewer", f"A{bad}", "islington-council", ["release_reviewer"])
            assert e.value.field.endswith("name")
        assert svc.get(rid).stage == "decided"
        assert _ledger_size(svc) == size
        svc.review(rid, "dpo-islington", True, "a note\non two lines")
        svc.deliver_pending()
        code = access_code(svc, rid)
        for bad in BAD.values():
            with pytest.raises(InputError) as e:
                svc.subject_appeal(rid, code, f"grounds{bad}")
            assert e.value.field == "grounds"
        assert svc.get(rid).appeal is None
    finally:
        svc.close()


def test_the_cli_names_the_field(db_url: str, tmp_path: Any) -> None:
    from api_support import init_service

    init_service(db_url, tmp_path).close()
    key = str(tmp_path / "log.key")
    runner = CliRunner()
    doc = tmp_path / "bad.json"
    doc.write_bytes(_body(_document("subjects[0].ref", "A\x00B")))
    result = runner.invoke(main, ["submit", "--db", db_url, "--key", key, str(doc)])
    assert result.exit_code == 2, result.output
    assert "subjects[0].ref" in result.stderr and "NUL" in result.stderr
    assert "Traceback" not in result.output
    doc.write_bytes(_body(_document("subjects[0].ref", "AB")))
    ok = runner.invoke(main, ["submit", "--db", db_url, "--key", key, str(doc)])
    assert ok.exit_code == 0, ok.output
    rid = json.loads(ok.stdout)["id"]
    # an undecodable command-line byte reaches Python as a lone surrogate
    review = ["review", rid, "--reviewer", "dpo-islington", "--refuse"]
    note = runner.invoke(main, [*review, "--note", "bad \udcff byte", "--db", db_url, "--key", key])
    assert note.exit_code == 2, note.output
    assert "note" in note.stderr and "surrogate" in note.stderr


def test_a_filter_the_database_cannot_take_is_bad_input_not_a_crash(
    db_url: str, tmp_path: Any
) -> None:
    """A value that is never stored but reaches the driver (a search filter) is still
    refused as input (exit 2), never a traceback or a storage error."""
    from api_support import init_service

    init_service(db_url, tmp_path).close()
    args = ["requests", "--db", db_url, "--reference", "A\udcffB"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert "cannot be stored" in result.stderr and "Traceback" not in result.output
