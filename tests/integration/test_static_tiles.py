"""`carewall ledger publish DIR`: static C2SP tlog-tiles, checked by an outside client
(tlog-scales, from PyPI) exactly as it checks the live /log/ of a running server."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from api_support import HOLDER, uvicorn_server

from carewall.ledger import Ledger
from carewall.service import Service
from carewall.storage.db import open_store

backend = pytest.importorskip("tlog_scales.backend")
reader_mod = pytest.importorskip("tlog_scales.reader")
signing = pytest.importorskip("tlog_scales.signing")
tiles = pytest.importorskip("tlog_scales.tiles")


def entry(i: int) -> dict[str, Any]:
    return {"v": 1, "kind": "notice", "request": f"r{i}", "time": "2026-01-01T00:00:00Z"}


def publish(db: str, out: Path) -> str:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from carewall.cli import main; main()",
            "ledger",
            "publish",
            "--db",
            db,
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def check_with_tlog_scales(location: str, vkey: str, entries: list[bytes]) -> int:
    """What an outside reader does: verify the signature, rebuild the root, read entries."""
    r = reader_mod.TilesReader(backend.make_backend(location))
    cp = r.get_checkpoint()
    cp.verify(signing.Vkey.from_string(vkey))
    assert r.calculate_root_hash() == cp.root_hash
    for i in (0, cp.size // 2, cp.size - 1):
        leaf = r.get_entry(i)
        assert leaf == entries[i]
        r.get_inclusion_proof(i, cp.size).check(tiles.leaf_hash(leaf), cp.root_hash)
    return int(cp.size)


def test_static_tiles_verify_like_the_live_log_and_grow_incrementally(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'log.db'}"
    service = Service.init(db, None, "static.test/log", tmp_path / "log.key", operator=HOLDER)
    lg = service.ledger
    lg.append([entry(i) for i in range(300 - lg.size())])
    lg.publish()
    service.close()
    out = tmp_path / "site"
    assert "tile(s) written" in publish(db, out)
    stored = lg.entries(0, 300)
    assert check_with_tlog_scales(str(out), lg.verifier_key, stored) == 300
    # The same client on the live log of a running server.
    with uvicorn_server(db, tmp_path / "log.key", tmp_path / "serve.log") as base:
        assert check_with_tlog_scales(base + "/log", lg.verifier_key, stored) == 300
    partial = out / "tile" / "0" / "001.p" / "44"
    before = (partial.read_bytes(), partial.stat().st_ino)
    full = out / "tile" / "entries" / "000"
    full_ino = full.stat().st_ino
    # Grow: only new tiles are written; old files (full and partial) are left untouched.
    lg.append([entry(i) for i in range(300, 700)])
    lg.publish()
    publish(db, out)
    assert (partial.read_bytes(), partial.stat().st_ino) == before
    assert full.stat().st_ino == full_ino
    assert check_with_tlog_scales(str(out), lg.verifier_key, lg.entries(0, 700)) == 700
    # Entry bundles have gzip copies with the same bytes; no temporary files are left.
    for p in (out / "tile" / "entries").rglob("*"):
        if p.is_file() and not p.name.endswith(".gz"):
            assert gzip.decompress(p.with_name(p.name + ".gz").read_bytes()) == p.read_bytes()
    assert not [p for p in out.rglob(".tmp-*")]
    assert (out / "checkpoint").read_text() == lg.checkpoint()


def test_publish_into_a_file_is_refused(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'log.db'}"
    store = open_store(db)
    lg = Ledger.create(store, "static.test/log", tmp_path / "log.key")
    lg.append([entry(0)])
    lg.publish()
    store.dispose()
    target = tmp_path / "file"
    target.write_text("x")
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from carewall.cli import main; main()",
            "ledger",
            "publish",
            "--db",
            db,
            str(target),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert os.path.isfile(target)
