"""An audit continued from its state file finds exactly what one run over the whole log finds.

The replay's state (register, policy, every request's progress, counts, findings) goes
through the JSON state file between runs, split at any point of a true or forged log.
"""

from __future__ import annotations

import json
import re

from audit_mutations import Forgery, catalogue
from audit_serving import MemoryLog
from audit_support import full_log
from hypothesis import given, settings
from hypothesis import strategies as st

from carewall.audit import AuditState

BUILT = full_log()
FORGERIES = catalogue(BUILT, every_entry=False)


def cuts(forgery: Forgery | None) -> list[int]:
    """Where a checkpoint may fall: between transactions (it never cuts one, as the service
    signs only after its transaction commits), wherever the forgery moved their entries."""
    groups = list(BUILT.groups)
    if forgery is not None and forgery.op == "remove":
        del groups[forgery.i]
    if forgery is not None and forgery.op == "swap":
        assert isinstance(forgery.arg, int)
        groups[forgery.i], groups[forgery.arg] = groups[forgery.arg], groups[forgery.i]
    spans = {g: (groups.index(g), len(groups) - 1 - groups[::-1].index(g)) for g in groups}
    inside = [k for k in range(1, len(groups)) if not any(a < k <= b for a, b in spans.values())]
    return [*inside, len(groups)]  # the whole log first, then nothing new


def same_findings(lines: list[str]) -> list[str]:
    # A transaction left open is found where the next entry stands, or where a run ends.
    return sorted(
        re.sub(
            r"\(([a-z?]+|end)\): (stands where|the log ends where)",
            "(?): open",
            ln.removesuffix("; entries written together must be contiguous"),
        )
        for ln in lines
    )


def in_two_runs(log: MemoryLog, split: int) -> tuple[list[str], dict[str, int]]:
    whole = log.size
    log.size = split
    _, state = log.audit()
    state = AuditState.from_json(json.loads(json.dumps(state.to_json())))
    log.size = whole
    report, _ = log.audit(state)
    lines = sorted(f.line() for f in report.findings + report.earlier_findings)
    return lines, report.totals.to_json()


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_two_runs_find_what_one_run_finds(data: st.DataObject) -> None:
    forged = data.draw(st.sampled_from([None, *FORGERIES]), label="forgery")
    entries = BUILT.entries if forged is None else forged.apply(BUILT)
    assert entries is not None
    log = MemoryLog(entries)
    split = data.draw(st.sampled_from(cuts(forged)), label="split")
    once, _ = log.audit()
    twice, totals = in_two_runs(log, split)
    assert same_findings(twice) == same_findings([f.line() for f in once.findings])
    assert totals == once.totals.to_json()
