"""Ledger benchmark: carewall's SQLite ledger beside pymerkle's ``SqliteTree``, same entries.

One run measures, on fresh databases in a temporary directory:

- batched appends per second (building the tree, batches of ``--batch`` entries);
- durable single appends per second (each its own commit, ``synchronous=FULL``);
- inclusion and consistency proof latency, p50/p99, at 10^4, 10^6 and 10^7 entries;
- full ``verify`` throughput (carewall's fsck re-derives every hash from the entries);

and, beside their ceilings (issue 12), in interleaved rounds with medians:

- batched appends and ``carewall ledger append`` (canonical JSONL on stdin, timed from
  process start to exit) beside bare multi-row INSERTs of the same rows plus their hashlib
  hashing in one transaction (same schema, pragmas and durable commit);
- ``verify_ledger`` beside one core's hashlib leaf + node hashing of the same entries.

pymerkle runs up to ``--pymerkle-max`` entries (default 10^6): it stores only leaf hashes and
rebuilds subtree roots from them on demand (with an in-memory LRU cache), so a cold proof at
10^7 re-hashes millions of nodes and its build doubles the disk and time of the run.

Targets: >= 100,000 entries/s batched; inclusion proof p50 <= 200 µs at 10^7;
verification >= 500,000 entries/s.

    .venv/bin/python benchmarks/ledger.py [--max-size 10000000] [--append-n N] [--reps R]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any

from pymerkle import SqliteTree
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from support import report

from carewall.ledger import Ledger, verify_ledger
from carewall.ledger.canonical import canonical
from carewall.ledger.merkle import hash_leaf, verify_consistency, verify_inclusion
from carewall.storage import migrate, open_store

SIZES = (10_000, 1_000_000, 10_000_000)
DEFAULT_MAX = 1_000_000  # a few minutes on 2 cores; --max-size 10000000 for the 10^7 rows
# A wide table even when the output is piped to a file.
console = Console() if sys.stdout.isatty() else Console(width=150)


def _template() -> tuple[bytes, bytes]:
    """A realistic release entry (canonical JSON); its request id is the varying part."""
    entry = {
        "v": 1,
        "kind": "release",
        "time": "2026-11-21T10:00:00Z",
        "request": "req-@@@@@@@@@@",
        "holder": "whittington-health",
        "holder_function": "health",
        "requester": "met-police",
        "requester_function": "police",
        "purpose": "prevention_detection_of_crime",
        "legal_basis": "dpa2018_sch2_p1_para2_crime",
        "other_bases": [],
        "offence": "theft_act_1968_s1",
        "court_order": True,
        "onward_recipients": [],
        "categories": ["address", "name"],
        "subjects": 1,
        "victims_or_witnesses": 0,
        "recipient": "met-police",
        "recipient_function": "police",
        "reviewer": "dpo-whittington",
        "policy": "sha256:" + "ab" * 32,
    }
    head, tail = canonical(entry).split(b"@@@@@@@@@@")
    return head, tail


_HEAD, _TAIL = _template()


def entries(start: int, end: int) -> list[bytes]:
    return [_HEAD + b"%010d" % i + _TAIL for i in range(start, end)]


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    k = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[k]


def timed(fn: Callable[[], Any], n: int, warmup: int = 10) -> list[float]:
    """Per-call latencies in microseconds (after a few unmeasured warm-up calls)."""
    for _ in range(warmup):
        fn()
    out: list[float] = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        fn()
        out.append((time.perf_counter_ns() - t0) / 1000)
    return out


# ----- beside the ceiling (issue 12): the same work with nothing but SQLite and hashlib --


@dataclass
class CeilingRow:
    metric: str
    size: str
    carewall: float
    ceiling: float
    ceiling_is: str
    target: float  # the least ratio carewall / ceiling that meets issue 12's target
    absolute: str = ""  # an absolute target, if the issue set one too

    def ratio(self) -> float:
        return self.carewall / self.ceiling


def _tree_rows(
    datas: list[bytes], start: int = 0
) -> tuple[list[tuple[int, bytes, bytes]], list[tuple[int, int, bytes]]]:
    """Entry rows and every perfect-subtree node row over ``datas`` (``start`` aligned)."""
    sha = hashlib.sha256
    leaves = [sha(b"\x00" + d).digest() for d in datas]
    nodes: list[tuple[int, int, bytes]] = []
    level, first, hashes = 0, start, leaves
    while len(hashes) > 1:
        it = iter(hashes)
        hashes = [sha(b"\x01" + a + b).digest() for a, b in zip(it, it, strict=False)]
        level += 1
        first >>= 1
        nodes.extend((level, first + i, h) for i, h in enumerate(hashes))
    return list(zip(range(start, start + len(datas)), datas, leaves, strict=True)), nodes


def _bare_insert(conn: Any, table: str, rows: list[tuple[Any, ...]], k: int = 1000) -> None:
    one = "(" + ", ".join("?" * len(rows[0])) + ")"
    for i in range(0, len(rows), k):
        part = rows[i : i + k]
        sql = f"INSERT INTO {table} VALUES " + ", ".join([one] * len(part))
        conn.exec_driver_sql(sql, tuple(chain.from_iterable(part)))


def ceiling_append(url: str, datas: list[bytes]) -> float:
    """Seconds to hash ``datas`` (leaves, nodes) and INSERT the rows in one transaction.

    The same schema, pragmas and durable commit as the ledger; multi-row VALUES, the
    fastest bare form on SQLite. The tree is built in one pass over all entries at once,
    which is less work than any appender can do (a power-of-two subtree at a time).
    """
    store = open_store(url)
    migrate.upgrade(store)
    t0 = time.perf_counter()
    with store.write() as conn:
        entry_rows, node_rows = _tree_rows(datas)
        _bare_insert(conn, "ledger_entries", entry_rows)
        _bare_insert(conn, "ledger_nodes", node_rows)
    seconds = time.perf_counter() - t0
    store.dispose()
    return seconds


def cli_append(url: str, source: Path, key: Path) -> float:
    """Seconds from process start to exit of ``carewall ledger append`` of ``source``."""
    cmd = [sys.executable, "-c", "from carewall.cli import main; main()", "ledger", "append"]
    cmd += ["--db", url, "--key", str(key), "--origin", "bench.carewall/cli", "-"]
    with source.open("rb") as stdin:
        t0 = time.perf_counter()
        done = subprocess.run(cmd, stdin=stdin, capture_output=True, check=False)
        seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit("ledger append failed: " + done.stderr.decode()[-2000:])
    return seconds


def hash_ceiling(store: Any, size: int) -> float:
    """Seconds one core takes to hash what verify re-derives: every leaf and node.

    Entries are read chunk by chunk (not timed), as verify reads them, so a big log need
    not fit in memory; only ``hashlib`` and the loops around it are timed.
    """
    chunk = 1 << 16
    seconds = 0.0
    tops: list[bytes] = []
    sha = hashlib.sha256
    with store.read() as conn:
        for a in range(0, size, chunk):
            got = conn.exec_driver_sql(
                "SELECT data FROM ledger_entries WHERE idx >= ? AND idx < ? ORDER BY idx",
                (a, a + chunk),
            ).all()
            datas = [r[0] for r in got]
            t0 = time.perf_counter()
            hashes = [sha(b"\x00" + d).digest() for d in datas]
            while len(hashes) > 1:
                it = iter(hashes)
                hashes = [sha(b"\x01" + x + y).digest() for x, y in zip(it, it, strict=False)]
            seconds += time.perf_counter() - t0
            tops.extend(hashes)
    t0 = time.perf_counter()
    while len(tops) > 1:
        it = iter(tops)
        tops = [sha(b"\x01" + x + y).digest() for x, y in zip(it, it, strict=False)]
    return seconds + time.perf_counter() - t0


def median(values: list[float]) -> float:
    return statistics.median(values)


@dataclass
class Row:
    metric: str
    size: str
    carewall: float | None
    pymerkle: float | None
    unit: str
    higher_is_better: bool
    target: str = ""
    note: str = ""

    def ratio(self) -> str:
        if not self.carewall or not self.pymerkle:
            return "—"
        r = (
            self.carewall / self.pymerkle
            if self.higher_is_better
            else self.pymerkle / self.carewall
        )
        return f"{r:,.1f}× {'faster' if r >= 1 else 'slower'}"


@dataclass
class Bench:
    dir: Path
    max_size: int
    pymerkle_max: int
    batch: int
    samples: int
    append_n: int = 200_000
    reps: int = 3
    rows: list[Row] = field(default_factory=list)
    ceiling_rows: list[CeilingRow] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def progress(self) -> Progress:
        return Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )

    def grow(self, target: int, ledger: Ledger, tree: SqliteTree | None) -> tuple[float, float]:
        """Extend both logs to ``target`` entries; seconds spent by each."""
        start = ledger.size()
        cw = pm = 0.0
        with self.progress() as bar:
            task = bar.add_task(f"building to {target:,}", total=target, completed=start)
            for a in range(start, target, self.batch):
                chunk = entries(a, min(target, a + self.batch))
                t0 = time.perf_counter()
                ledger.append_raw(chunk)
                cw += time.perf_counter() - t0
                if tree is not None:
                    t0 = time.perf_counter()
                    tree.append_entries(chunk)
                    pm += time.perf_counter() - t0
                bar.update(task, completed=a + len(chunk))
        return cw, pm

    def single_appends(self, n: int = 500) -> None:
        store = open_store(f"sqlite:///{self.dir / 'single.db'}")
        ledger = Ledger.create(store, "bench.carewall/single", self.dir / "single.key")
        tree = SqliteTree(str(self.dir / "single-pymerkle.db"))
        data = entries(0, n)
        t0 = time.perf_counter()
        for d in data:
            ledger.append_raw([d])
        cw = n / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        for d in data:
            tree.append_entry(d)
        pm = n / (time.perf_counter() - t0)
        tree.close()
        store.dispose()
        self.rows.append(Row("durable single appends", f"{n:,} commits", cw, pm, "entries/s", True))

    def proofs(self, size: int, ledger: Ledger, tree: SqliteTree | None) -> None:
        rng = random.Random(size)
        root = ledger.root(size)
        # Spot-check correctness before timing.
        i = rng.randrange(size)
        verify_inclusion(
            i, size, hash_leaf(entries(i, i + 1)[0]), ledger.inclusion_proof(i, size), root
        )
        m = rng.randrange(1, size)
        verify_consistency(m, size, ledger.root(m), root, ledger.consistency_proof(m, size))

        idx = [rng.randrange(size) for _ in range(self.samples + 10)]
        olds = [rng.randrange(1, size) for _ in range(self.samples + 10)]
        it = iter(idx)
        cw_inc = timed(lambda: ledger.inclusion_proof(next(it), size), self.samples)
        it2 = iter(olds)
        cw_con = timed(lambda: ledger.consistency_proof(next(it2), size), self.samples)
        pm_inc = pm_con = None
        if tree is not None:
            it3 = iter(idx)
            pm_inc = timed(lambda: tree.prove_inclusion(next(it3) + 1, size), self.samples)
            it4 = iter(olds)
            pm_con = timed(lambda: tree.prove_consistency(next(it4), size), self.samples)
        label = f"{size:,}"
        target = "≤ 200 µs" if size >= 10_000_000 else ""
        for name, cw, pm in (
            ("inclusion proof", cw_inc, pm_inc),
            ("consistency proof", cw_con, pm_con),
        ):
            for q, qn in ((0.5, "p50"), (0.99, "p99")):
                self.rows.append(
                    Row(
                        f"{name} {qn}",
                        label,
                        percentile(cw, q),
                        percentile(pm, q) if pm else None,
                        "µs",
                        False,
                        target if (name == "inclusion proof" and qn == "p50") else "",
                    )
                )

    def appends_beside_ceiling(self) -> None:
        """Batched and CLI appends of the same entries beside the bare-INSERT ceiling.

        Each repetition runs all three on fresh databases one after another (interleaved,
        so a busy moment on a shared machine hits each alike); medians are reported.
        """
        n = self.append_n
        datas = entries(0, n)
        source = self.dir / "append.jsonl"
        source.write_bytes(b"".join(d + b"\n" for d in datas))
        ceiling, batched, cli = [], [], []
        for r in range(self.reps):
            work = self.dir / f"append-{r}"
            work.mkdir()
            ceiling.append(n / ceiling_append(f"sqlite:///{work / 'ceiling.db'}", datas))
            store = open_store(f"sqlite:///{work / 'batched.db'}")
            ledger = Ledger.create(store, "bench.carewall/batched", work / "batched.key")
            t0 = time.perf_counter()
            for a in range(0, n, self.batch):
                ledger.append_raw(datas[a : a + self.batch])
            batched.append(n / (time.perf_counter() - t0))
            store.dispose()
            cli.append(n / cli_append(f"sqlite:///{work / 'cli.db'}", source, work / "cli.key"))
            shutil.rmtree(work, ignore_errors=True)
            console.log(
                f"appends, round {r + 1}: ceiling {ceiling[-1]:,.0f}/s, batched "
                f"{batched[-1]:,.0f}/s, CLI {cli[-1]:,.0f}/s"
            )
        source.unlink()
        ceil = "bare INSERTs of the same rows + hashlib, one transaction"
        self.ceiling_rows.append(
            CeilingRow(
                f"batched appends (Ledger.append_raw, {self.batch:,}/commit)",
                f"{n:,}",
                median(batched),
                median(ceiling),
                ceil,
                0.0,
                "≥ 150,000/s",
            )
        )
        self.ceiling_rows.append(
            CeilingRow(
                "`carewall ledger append`, canonical JSONL on stdin, from process start",
                f"{n:,}",
                median(cli),
                median(ceiling),
                ceil,
                0.0,
                "≥ 50,000/s",
            )
        )

    def verify_beside_ceiling(self, store: Any, size: int) -> None:
        """``verify_ledger`` beside one core's hashlib leaf + node hashing, interleaved."""
        ceiling, verify = [], []
        for _ in range(self.reps):
            ceiling.append(size / hash_ceiling(store, size))
            report = verify_ledger(store)
            if not report.ok:
                raise SystemExit(f"verify found faults: {report.first}")
            verify.append(report.entries_per_second)
        self.ceiling_rows.append(
            CeilingRow(
                "`ledger verify` (re-derive every hash, check every node)",
                f"{size:,}",
                median(verify),
                median(ceiling),
                "one core's hashlib leaf + node hashing of the same entries",
                0.7,
            )
        )

    def run(self) -> None:
        self.appends_beside_ceiling()
        self.single_appends()
        store = open_store(f"sqlite:///{self.dir / 'carewall.db'}")
        ledger = Ledger.create(store, "bench.carewall/log", self.dir / "log.key")
        tree: SqliteTree | None = SqliteTree(str(self.dir / "pymerkle.db"))
        cw_total = pm_total = cw_matched = 0.0
        pm_built = 0
        sizes = [s for s in SIZES if s < self.max_size] + [self.max_size]
        for size in sizes:
            if tree is not None and size > self.pymerkle_max:
                self.skipped.append(
                    f"pymerkle at {size:,}: skipped (over --pymerkle-max {self.pymerkle_max:,}); "
                    "it keeps only leaf hashes and rebuilds subtree roots on demand, so cold "
                    "proofs re-hash millions of nodes and its build doubles the run's disk and time"
                )
                tree.close()
                tree = None
            before = ledger.size()
            cw, pm = self.grow(size, ledger, tree)
            cw_total += cw
            pm_total += pm
            if tree is not None:
                pm_built = size
                cw_matched = cw_total
            console.log(f"built {size:,} entries (+{size - before:,}) in {cw:.1f} s (carewall)")
            self.proofs(size, ledger, tree)
        built = sizes[-1]
        label = f"batched appends ({self.batch:,}/commit)"
        if pm_built and pm_built != built:
            # The ratio only means something over the same range, so show both rows.
            self.rows.insert(
                0,
                Row(
                    label, f"0 → {built:,}", built / cw_total, None, "entries/s", True, "≥ 100,000"
                ),
            )
            self.rows.insert(
                0,
                Row(
                    label,
                    f"0 → {pm_built:,}",
                    pm_built / cw_matched,
                    pm_built / pm_total,
                    "entries/s",
                    True,
                ),
            )
        else:
            pm_rate = pm_built / pm_total if pm_total else None
            self.rows.insert(
                0,
                Row(
                    label,
                    f"0 → {built:,}",
                    built / cw_total,
                    pm_rate,
                    "entries/s",
                    True,
                    "≥ 100,000",
                ),
            )
        with self.progress() as bar:
            task = bar.add_task("verify (fsck)", total=built)
            report = verify_ledger(store, lambda done, total: bar.update(task, completed=done))
        if not report.ok:
            raise SystemExit(f"verify found faults: {report.first}")
        self.rows.append(
            Row(
                "full verify (re-derive every hash)",
                f"{built:,}",
                report.entries_per_second,
                None,
                "entries/s",
                True,
                "≥ 500,000",
                "pymerkle has no equivalent",
            )
        )
        self.verify_beside_ceiling(store, built)
        if tree is not None:
            tree.close()
        store.dispose()


def _fmt(v: float | None, unit: str) -> str:
    if v is None:
        return "—"
    if unit == "µs":
        return f"{v:,.0f} µs" if v >= 100 else f"{v:,.1f} µs"
    return f"{v:,.0f}/s"


def render(bench: Bench) -> Table:
    table = Table(title="carewall ledger vs pymerkle (SQLite)", title_justify="left")
    for col, just in (
        ("metric", "left"),
        ("size", "left"),
        ("carewall", "right"),
        ("pymerkle", "right"),
        ("ratio", "right"),
        ("target", "left"),
    ):
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    for r in bench.rows:
        ok = ""
        if r.target and r.carewall is not None:
            limit = float(r.target.split()[1].replace(",", ""))
            met = r.carewall >= limit if r.higher_is_better else r.carewall <= limit
            ok = f"{r.target} {'[green]met[/]' if met else '[red]missed[/]'}"
        table.add_row(
            r.metric,
            r.size,
            _fmt(r.carewall, r.unit),
            _fmt(r.pymerkle, r.unit),
            r.ratio(),
            ok or r.note,
        )
    return table


def render_ceilings(bench: Bench) -> Table:
    table = Table(
        title=f"carewall beside its ceiling (SQLite, medians of {bench.reps} interleaved rounds)",
        title_justify="left",
    )
    for col, just in (
        ("figure", "left"),
        ("entries", "right"),
        ("carewall", "right"),
        ("ceiling", "right"),
        ("ratio", "right"),
        ("target", "left"),
        ("ceiling is", "left"),
    ):
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    for r in bench.ceiling_rows:
        if r.absolute:
            limit = float(r.absolute.split()[1].rstrip("/s").replace(",", ""))
            met = r.carewall >= limit
            target = r.absolute
        else:
            met = r.ratio() >= r.target
            target = f"≥ {r.target:.1f}×"
        verdict = "[green]met[/]" if met else "[red]missed[/]"
        report(
            f"{r.metric} ({r.size})",
            f"{r.carewall:,.0f}/s",
            f"{r.ceiling_is} {r.ceiling:,.0f}/s",
            f"{r.ratio():.2f}x",
            target,
            met,
        )
        table.add_row(
            r.metric,
            r.size,
            f"{r.carewall:,.0f}/s",
            f"{r.ceiling:,.0f}/s",
            f"{r.ratio():.2f}×",
            f"{target} {verdict}",
            r.ceiling_is,
        )
    return table


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--max-size", type=int, default=DEFAULT_MAX, help="largest tree (10^6)")
    ap.add_argument("--append-n", type=int, default=200_000, help="entries per append round")
    ap.add_argument("--reps", type=int, default=3, help="interleaved rounds beside ceilings")
    ap.add_argument("--pymerkle-max", type=int, default=1_000_000, help="largest pymerkle tree")
    ap.add_argument("--batch", type=int, default=10_000, help="entries per batched commit")
    ap.add_argument("--samples", type=int, default=1000, help="proofs timed per size")
    ap.add_argument("--dir", type=Path, default=None, help="work directory (default: a temp dir)")
    ap.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    args = ap.parse_args(argv)
    work = args.dir or Path(tempfile.mkdtemp(prefix="carewall-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    bench = Bench(
        work, args.max_size, args.pymerkle_max, args.batch, args.samples, args.append_n, args.reps
    )
    try:
        console.log(f"python {sys.version.split()[0]}, work dir {work}")
        bench.run()
    finally:
        if args.dir is None:
            shutil.rmtree(work, ignore_errors=True)
    console.print(render(bench))
    console.print(render_ceilings(bench))
    for s in bench.skipped:
        console.print(f"[yellow]note[/]: {s}")
    console.print(
        "latencies are per call through the Ledger facade (a pooled read connection each), "
        f"{args.samples} random indices per size after 10 warm-up calls; pymerkle's subtree "
        "cache is warm only for what those calls touched."
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        rows = [r.__dict__ for r in bench.rows] + [r.__dict__ for r in bench.ceiling_rows]
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
