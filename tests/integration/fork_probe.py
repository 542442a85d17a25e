"""Run in a fresh interpreter by the fork tests: a forked child is only made by a process
with no other thread, and a test worker may hold threads other tests left running, so what
forks is tried here, alone, and the result printed as JSON.

    python fork_probe.py append FILE SIZE   the child's batches against checking here
    python fork_probe.py dies FILE          a child that dies after its first batch
    python fork_probe.py verify DB_URL      forked verify workers against one process
"""

from __future__ import annotations

import io
import json
import os
import sys
from collections.abc import Iterator
from typing import IO, Any

from carewall.cli import append_input
from carewall.cli.append_input import Batch, checked_batches, read_batches
from carewall.errors import CarewallError


def _all(batches: Iterator[Batch]) -> list[Any]:
    try:
        return [[after, [d.decode("latin-1") for d in datas]] for after, datas in batches]
    except CarewallError as e:
        return [e.message, e.field, type(e).__name__]


def append(path: str, size: int) -> dict[str, Any]:
    with open(path, "rb") as f:
        here = _all(read_batches(io.BytesIO(f.read()), size))
    forked: list[int] = []
    real = append_input._from_child

    def spy(fd: int, n: int) -> Iterator[Batch]:
        forked.append(fd)
        return real(fd, n)

    append_input._from_child = spy  # type: ignore[assignment]
    with open(path, "rb") as f:
        there = _all(checked_batches(f, size))
    return {"forked": bool(forked), "same": there == here, "batches": len(here)}


def dies(path: str) -> dict[str, Any]:
    parent = os.getpid()

    def one_batch_then_die(source: IO[bytes], size: int) -> Iterator[Batch]:
        yield 2, [b"first"]
        if os.getpid() != parent:
            os._exit(3)
        raise AssertionError("read here, not by a child")

    append_input.read_batches = one_batch_then_die
    with open(path, "rb") as f:
        batches = checked_batches(f, 1)
        first = next(batches)
        try:
            next(batches)
        except CarewallError as e:
            return {"first": [first[0], [d.decode() for d in first[1]]], "error": e.message}
    return {"first": None, "error": None}


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
    what = sys.argv[1]
    if what == "append":
        out = append(sys.argv[2], int(sys.argv[3]))
    elif what == "dies":
        out = dies(sys.argv[2])
    else:
        out = verify(sys.argv[2])
    print(json.dumps(out))
