"""Publish the log as static files: C2SP tlog-tiles, entry bundles and the checkpoint.

Spec: https://c2sp.org/tlog-tiles. ``DIR`` then holds exactly what ``/log/`` serves
(``checkpoint``, ``tile/<L>/<N>[.p/<W>]``, ``tile/entries/<N>[.p/<W>]``, ``key``), so any
web server, object store or CDN can serve the log to any number of readers.

- Incremental: a tile already in ``DIR`` is never written again. A full tile never
  changes, and a partial tile of width W is the same bytes whenever it is made (the tree
  only grows), so every tile file is immutable and may be cached forever.
- Atomic: each file is written to a temporary name, fsynced and renamed into place; the
  checkpoint is written last, so a reader never sees a checkpoint whose tiles are missing.
- Entry bundles are also written gzip-compressed beside themselves (``….gz``, deterministic
  bytes), for servers that hand them to clients that accept gzip (nginx ``gzip_static on``);
  see docs/witnesses.md for a server configuration.
"""

from __future__ import annotations

import gzip
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from carewall.errors import InputError
from carewall.ledger.checkpoint import parse_checkpoint
from carewall.ledger.log import Ledger
from carewall.ledger.note import parse_note
from carewall.ledger.tiles import entry_bundles_for_size, parse_tile_path, tiles_for_size

__all__ = ["StaticReport", "publish_static"]


@dataclass(frozen=True)
class StaticReport:
    size: int
    written: int  # tile and bundle files written now (not counting .gz copies)
    kept: int  # already present, left alone


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def publish_static(ledger: Ledger, out: Path, note: str | None = None) -> StaticReport:
    """Write the tiles for the checkpoint ``note`` (default: the newest) and then the note.

    ``note`` may carry witness cosignatures; its size, not the database's, bounds the tiles.
    """
    if out.exists() and not out.is_dir():
        raise InputError("is not a directory", field="DIR", fix="give a directory path")
    note = note if note is not None else ledger.checkpoint()
    size = parse_checkpoint(parse_note(note).text).size
    written = kept = 0
    for path in tiles_for_size(size) + entry_bundles_for_size(size):
        dest = out / path
        if dest.exists():
            kept += 1
            continue
        level, n, width = parse_tile_path(path)
        if level == "entries":
            data = ledger.entry_bundle(n, width)
            _write(dest.with_name(dest.name + ".gz"), gzip.compress(data, mtime=0))
        else:
            data = ledger.tile(level, n, width)
        _write(dest, data)
        written += 1
    _write(out / "key", (ledger.verifier_key + "\n").encode())
    _write(out / "checkpoint", note.encode())
    return StaticReport(size, written, kept)
