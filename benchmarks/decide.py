"""Benchmark: carewall's decision engine against raw cedarpy on the same policy set.

Prints decisions per second and p50/p99 latency of one in-process decision, side by side
with a bare ``cedarpy.is_authorized_batch`` call on the same policies, entities and Cedar
requests (so the ratio is carewall's own overhead; both skip request-time schema validation,
as the engine does, because policies and entities are schema-validated when loaded), and the
time for a 100,000-subject request. Targets: overhead <= 1.3x, p99 <= 1 ms, 100,000 subjects <= 2 s.

Run: .venv/bin/python benchmarks/decide.py [--n 5000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import cedarpy
from rich.console import Console
from rich.table import Table

from carewall.policy import DEFAULT_REGISTER_PATH, Engine, load_register, parse_request
from carewall.policy.facts import facts_of

REQUEST: dict[str, Any] = {
    "reference": "MPS-2026-000123",
    "requester": "met-police",
    "holder": "whittington-health",
    "purpose": "prevention_detection_of_crime",
    "legal_basis": "dpa2018_sch2_p1_para2_crime",
    "offence": "theft_act_1968_s1",
    "subjects": [{"ref": "9434765919", "is_child": False, "is_victim_or_witness": False}],
    "categories": ["name", "address", "health_record", "nationality"],
}


def _times(fn: Callable[[], object], n: int) -> list[float]:
    for _ in range(min(200, n)):  # warm up
        fn()
    out = []
    clock = time.perf_counter
    for _ in range(n):
        t0 = clock()
        fn()
        out.append(clock() - t0)
    return out


def _pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(p * len(s)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=5000, help="decisions to time")
    ap.add_argument("--subjects", type=int, default=100_000)
    args = ap.parse_args()

    register = load_register(DEFAULT_REGISTER_PATH)
    engine = Engine.load()
    request = parse_request(REQUEST, register)
    engine.decide(request, register)  # builds the cached entity handle

    # Raw cedarpy: the very same handles and Cedar requests, with no carewall around them.
    policies = cedarpy.PolicySet.from_str(Engine.pledge_text() + "\n\n" + engine.local_text)
    from carewall.policy.schema import schema_text

    schema = cedarpy.Schema.from_str(schema_text())
    ents = [
        {
            "uid": {"type": "Organisation", "id": o.id},
            "attrs": {"function": {"__entity": {"type": "Function", "id": o.function}}},
            "parents": [],
        }
        for o in register.organisations.values()
    ]
    entities = cedarpy.Entities.from_json_str(json.dumps(ents), schema)
    facts, subjects = facts_of(request)
    _, _, batch = engine.cedar_requests(facts, subjects, register)

    def raw() -> object:
        return cedarpy.is_authorized_batch(batch, policies, entities)

    def ours() -> object:
        return engine.decide(request, register)

    # Interleave the two so that machine noise hits both alike.
    raw_t: list[float] = []
    our_t: list[float] = []
    for _ in range(5):
        raw_t += _times(raw, args.n // 5)
        our_t += _times(ours, args.n // 5)

    subjects = [
        {"ref": f"NHS{i:010d}", "is_child": i % 2 == 0, "is_victim_or_witness": i % 7 == 0}
        for i in range(args.subjects)
    ]
    bulk_doc = json.dumps(dict(REQUEST, subjects=subjects)).encode()
    t0 = time.perf_counter()
    bulk = parse_request(bulk_doc, register)
    t1 = time.perf_counter()
    decision = engine.decide(bulk, register)
    t2 = time.perf_counter()
    assert len(decision.groups) == 4

    table = Table(title=f"carewall decide benchmark ({len(batch)} categories per request)")
    for col in ("measure", "raw cedarpy", "carewall", "ratio / target"):
        table.add_column(col, justify="right")
    rm, om = statistics.mean(raw_t), statistics.mean(our_t)
    table.add_row("decisions / s", f"{1 / rm:,.0f}", f"{1 / om:,.0f}", "")
    table.add_row(
        "mean latency", f"{rm * 1e6:.0f} µs", f"{om * 1e6:.0f} µs", f"{om / rm:.2f}x (≤ 1.3x)"
    )
    for label, p in (("p50 latency", 0.5), ("p99 latency", 0.99)):
        r, o = _pct(raw_t, p), _pct(our_t, p)
        target = "≤ 1 ms" if p == 0.99 else ""
        table.add_row(label, f"{r * 1e6:.0f} µs", f"{o * 1e6:.0f} µs", f"{o / r:.2f}x {target}")
    table.add_row(f"{args.subjects:,} subjects: parse", "", f"{(t1 - t0) * 1e3:.0f} ms", "")
    table.add_row(f"{args.subjects:,} subjects: decide", "", f"{(t2 - t1) * 1e3:.0f} ms", "")
    table.add_row(
        f"{args.subjects:,} subjects: total", "", f"{(t2 - t0) * 1e3:.0f} ms", "≤ 2000 ms"
    )
    Console().print(table)


if __name__ == "__main__":
    main()
