"""The read-only /log routes, through FastAPI's TestClient, checked with the pure verifiers."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from carewall.api.errors import install_error_handlers
from carewall.api.log import MAX_ENTRIES, make_log_router
from carewall.ledger import Ledger
from carewall.ledger.canonical import canonical
from carewall.ledger.checkpoint import open_checkpoint
from carewall.ledger.merkle import hash_leaf, root_of, verify_consistency, verify_inclusion
from carewall.ledger.note import Verifier
from carewall.ledger.tiles import decode_entry_bundle
from carewall.storage import open_store
from carewall.storage.migrate import upgrade

ORIGIN = "carewall.test/http-log"
SIZE = 300  # one full level-0 tile, one partial, and a partial level-1 tile


def notice(i: int) -> dict[str, Any]:
    return {
        "v": 1,
        "kind": "notice",
        "time": "2026-11-21T10:00:00Z",
        "request": f"req-{i:06d}",
        "subject": f"{i:064x}",
        "status": "sent",
    }


ENTRIES = [notice(i) for i in range(SIZE)]
LEAVES = [hash_leaf(canonical(e)) for e in ENTRIES]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, str]]:
    tmp: Path = tmp_path_factory.mktemp("log")
    store = open_store(f"sqlite:///{tmp / 'log.db'}")
    upgrade(store)
    writer = Ledger.create(store, ORIGIN, tmp / "log.key")
    writer.append(ENTRIES)
    writer.publish()
    reader = Ledger.open(store)
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(make_log_router(lambda: reader))

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internal detail")

    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, writer.verifier_key
    store.dispose()


def b64(values: list[str]) -> list[bytes]:
    return [base64.b64decode(v) for v in values]


def test_checkpoint_is_signed_plain_text_and_not_cached(served: tuple[TestClient, str]) -> None:
    client, vkey = served
    r = client.get("/log/checkpoint")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert "no-cache" in r.headers["cache-control"]
    cp = open_checkpoint(r.text, [Verifier.from_vkey(vkey)])
    assert (cp.origin, cp.size, cp.root) == (ORIGIN, SIZE, root_of(LEAVES))


def test_key_is_the_verifier_key(served: tuple[TestClient, str]) -> None:
    client, vkey = served
    r = client.get("/log/key")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert r.text.strip() == vkey
    assert vkey.startswith(ORIGIN + "+")


def test_full_tile_is_immutable_and_holds_leaf_hashes(served: tuple[TestClient, str]) -> None:
    client, _ = served
    r = client.get("/log/tile/0/000")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert r.content == b"".join(LEAVES[:256])


def test_partial_tiles_hold_the_right_edge(served: tuple[TestClient, str]) -> None:
    client, _ = served
    r = client.get("/log/tile/0/001.p/44")
    assert r.status_code == 200
    assert r.content == b"".join(LEAVES[256:300])
    assert "immutable" not in r.headers["cache-control"]
    r = client.get("/log/tile/1/000.p/1")
    assert r.status_code == 200
    assert r.content == root_of(LEAVES[:256])


def test_entry_bundles_decode_to_the_canonical_entries(served: tuple[TestClient, str]) -> None:
    client, _ = served
    full = client.get("/log/tile/entries/000")
    assert full.status_code == 200
    assert full.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert decode_entry_bundle(full.content) == [canonical(e) for e in ENTRIES[:256]]
    part = client.get("/log/tile/entries/001.p/44")
    assert part.status_code == 200
    assert part.headers["content-type"] == "application/octet-stream"
    assert decode_entry_bundle(part.content) == [canonical(e) for e in ENTRIES[256:]]


@pytest.mark.parametrize(
    "path",
    [
        "tile/0/002",
        "tile/0/001",
        "tile/0/001.p/45",
        "tile/1/000",
        "tile/2/000.p/1",
        "tile/entries/001",
        "tile/entries/001.p/45",
        "tile/entries/x001/000",
    ],
)
def test_tiles_beyond_the_tree_are_404(served: tuple[TestClient, str], path: str) -> None:
    client, _ = served
    r = client.get(f"/log/{path}")
    assert r.status_code == 404
    assert r.json()["error"] == "not_found"


@pytest.mark.parametrize(
    "path",
    [
        "tile/0/1",
        "tile/0/0000",
        "tile/abc/000",
        "tile/0/000.p/0",
        "tile/0/000.p/256",
        "tile/0/000.p/",
        "tile/-1/000",
        "tile/0/x000/000",
        "tile/entries/00a",
        "tile/0",
    ],
)
def test_malformed_tile_paths_are_400(served: tuple[TestClient, str], path: str) -> None:
    client, _ = served
    r = client.get(f"/log/{path}")
    assert r.status_code == 400
    assert r.json()["field"] == "path"


@pytest.mark.parametrize(
    ("index", "size"), [(0, 1), (0, 300), (255, 256), (256, 300), (299, 300), (5, 7)]
)
def test_inclusion_proofs_verify(served: tuple[TestClient, str], index: int, size: int) -> None:
    client, _ = served
    r = client.get(f"/log/proof/inclusion?index={index}&size={size}")
    assert r.status_code == 200
    body = r.json()
    assert (body["index"], body["size"]) == (index, size)
    root = base64.b64decode(body["root"])
    assert root == root_of(LEAVES[:size])
    verify_inclusion(index, size, LEAVES[index], b64(body["proof"]), root)


@pytest.mark.parametrize(("m", "n"), [(1, 300), (7, 8), (256, 300), (100, 257), (300, 300)])
def test_consistency_proofs_verify(served: tuple[TestClient, str], m: int, n: int) -> None:
    client, _ = served
    r = client.get(f"/log/proof/consistency?from={m}&size={n}")
    assert r.status_code == 200
    body = r.json()
    assert (body["from"], body["size"]) == (m, n)
    old, new = base64.b64decode(body["root_from"]), base64.b64decode(body["root"])
    assert (old, new) == (root_of(LEAVES[:m]), root_of(LEAVES[:n]))
    verify_consistency(m, n, old, new, b64(body["proof"]))


def test_entries_are_json_objects(served: tuple[TestClient, str]) -> None:
    client, _ = served
    r = client.get("/log/entries?start=250&end=300")
    assert r.status_code == 200
    assert r.json() == {"start": 250, "end": 300, "entries": ENTRIES[250:300]}


@pytest.mark.parametrize(
    ("query", "status", "field"),
    [
        ("proof/inclusion?size=3", 422, "index"),
        ("proof/inclusion?index=1", 422, "size"),
        ("proof/inclusion?index=x&size=3", 422, "index"),
        ("proof/inclusion?index=-1&size=3", 422, "index"),
        ("proof/inclusion?index=3&size=3", 400, "index"),
        ("proof/inclusion?index=0&size=301", 400, "size"),
        ("proof/consistency?size=3", 422, "from"),
        ("proof/consistency?from=0&size=3", 422, "from"),
        ("proof/consistency?from=4&size=3", 400, "from"),
        ("proof/consistency?from=1&size=1000", 400, "size"),
        ("proof/consistency?from=1&size=1.5", 422, "size"),
        ("entries?start=0", 422, "end"),
        ("entries?start=-5&end=3", 422, "start"),
        ("entries?start=5&end=3", 400, "end"),
        ("entries?start=0&end=301", 400, "end"),
        (f"entries?start=0&end={MAX_ENTRIES + 1}", 400, "end"),
    ],
)
def test_bad_parameters_name_the_field(
    served: tuple[TestClient, str], query: str, status: int, field: str
) -> None:
    client, _ = served
    r = client.get(f"/log/{query}")
    assert r.status_code == status
    body = r.json()
    assert body["field"] == field
    assert body["message"]
    assert "Traceback" not in r.text


def test_unexpected_errors_show_no_internals(served: tuple[TestClient, str]) -> None:
    client, _ = served
    r = client.get("/boom")
    assert r.status_code == 500
    assert r.json() == {
        "error": "internal",
        "message": "internal error",
        "fix": "try again; if it persists, tell the operator",
    }
    assert "secret" not in r.text


def test_unknown_routes_use_the_error_shape(served: tuple[TestClient, str]) -> None:
    client, _ = served
    r = client.get("/log/nothing-here")
    assert r.status_code == 404
    assert json.loads(r.text)["error"] == "not_found"
