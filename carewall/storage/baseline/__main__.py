"""``python -m carewall.storage.baseline``: rebuild ``sqlite.json`` from the migrations."""

from __future__ import annotations

import json
import sqlite3
import sys
import tempfile
from importlib import resources
from pathlib import Path

from carewall.storage import open_store
from carewall.storage.baseline import SNAPSHOT, ordered
from carewall.storage.migrate import upgrade_with_alembic


def built_by_migrations() -> list[str]:
    """What ``iterdump`` writes for an empty SQLite database after every migration, in the
    order of :func:`carewall.storage.baseline.ordered`."""
    with tempfile.TemporaryDirectory(prefix="carewall-baseline-") as tmp:
        path = Path(tmp) / "baseline.db"
        store = open_store(f"sqlite:///{path}")
        try:
            upgrade_with_alembic(store)
        finally:
            store.dispose()
        conn = sqlite3.connect(path)
        try:
            return ordered(list(conn.iterdump()))
        finally:
            conn.close()


def render(statements: list[str]) -> str:
    return json.dumps(statements, indent=1) + "\n"


def main() -> int:
    target = Path(str(resources.files("carewall.storage.baseline") / SNAPSHOT))
    target.write_text(render(built_by_migrations()), encoding="utf-8")
    print(f"wrote {target}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
