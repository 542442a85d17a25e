"""Run in a fresh interpreter by the fork tests: ``ledger verify`` forks its workers only in
a process with no other thread, and a test worker may hold threads other tests left
running, so what forks is tried here, alone, and the result printed as JSON.

    python fork_probe.py verify DB_URL      forked verify workers against one process
"""

from __future__ import annotations

import json
import sys
from typing import Any


def verify(url: str) -> dict[str, Any]:
    from carewall.ledger import verify as v
    from carewall.storage import open_store

    store = open_store(url)
    try:
        alone = v.verify_ledger(store)
        v._CHUNK_LEVEL = 4  # 16-entry chunks, so a small log splits
        v._FORK_MIN = 1
        workers, ctx = v._workers(store, alone.size)
        forked = v.verify_ledger(store)
        again = v.verify_ledger(store)  # the store still works after a fork
    finally:
        store.dispose()

    def faults(r: Any) -> list[list[Any]]:
        return [[f.index, f.problem] for f in r.faults]

    return {
        "workers": workers,
        "start": None if ctx is None else ctx.get_start_method(),
        "alone": faults(alone),
        "forked": faults(forked),
        "again": faults(again),
        "counts": [[r.size, r.nodes, r.fault_count] for r in (alone, forked)],
    }


if __name__ == "__main__":
    if sys.argv[1] != "verify":
        raise SystemExit("usage: fork_probe.py verify DB_URL")
    print(json.dumps(verify(sys.argv[2])))
