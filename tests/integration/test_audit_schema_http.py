"""``/log/schema``: the exact shape of every entry kind, served beside the log (contract §6).

Through FastAPI's TestClient, as test_log_http.py; the served document is checked against
the JSON Schema 2020-12 meta-schema and against entries a carewall instance writes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import jsonschema_rs
import pytest
from audit_support import full_log
from fastapi import FastAPI
from fastapi.testclient import TestClient

from carewall.api.errors import install_error_handlers
from carewall.api.log import make_log_router
from carewall.entry_schema import entry_schema
from carewall.ledger import Ledger
from carewall.storage import open_store
from carewall.storage.migrate import upgrade


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    tmp: Path = tmp_path_factory.mktemp("schema")
    store = open_store(f"sqlite:///{tmp / 'log.db'}")
    upgrade(store)
    Ledger.create(store, "carewall.test/schema", tmp / "log.key")
    reader = Ledger.open(store)
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(make_log_router(lambda: reader))
    with TestClient(app) as c:
        yield c
    store.dispose()


def test_the_schema_is_served_as_json_schema(client: TestClient) -> None:
    r = client.get("/log/schema")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/schema+json"
    assert r.headers["access-control-allow-origin"] == "*"
    assert r.headers["cache-control"].startswith("public")
    served = r.json()
    assert served == entry_schema()
    assert jsonschema_rs.meta.is_valid(served)


def test_the_served_schema_takes_what_carewall_writes_and_nothing_else(
    client: TestClient,
) -> None:
    validator = jsonschema_rs.validator_for(client.get("/log/schema").json())
    entries = full_log().entries
    assert {e["kind"] for e in entries} == set(entry_schema()["$defs"])
    for e in entries:
        assert validator.is_valid(e), e["kind"]
    release = next(e for e in entries if e["kind"] == "release")
    assert not validator.is_valid({**release, "kind": "witness"})
    assert not validator.is_valid({**release, "requester_function": "Police"})
    assert not validator.is_valid({**release, "reviewer": "dpo-st-marys\n"})
    assert not validator.is_valid({k: v for k, v in release.items() if k != "consent"})
    assert not validator.is_valid({**release, "officer": "DC J. Smith"})
