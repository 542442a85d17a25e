"""Every single forgery of a coherent log is found, and named by the entry it touched.

The log (``full_log``) holds every entry kind and every lifecycle path. The catalogue
(``audit_mutations``) drops, retypes, re-cases or re-values each field of each entry, adds
an unknown field, swaps entries, and leaves entries out, skipping only changes that write
another equally valid log (shape-only changes are swept on one entry of each kind here; the
property test in test_audit_forgeries.py draws them from every entry, against a real
server). Each forged log is audited through :func:`audit_log` over an in-process transport.
"""

from __future__ import annotations

import re

import pytest
from audit_mutations import catalogue
from audit_serving import audit_in_memory
from audit_support import full_log

BUILT = full_log()
CATALOGUE = catalogue(BUILT, every_entry=False)


def test_the_true_log_passes() -> None:
    report = audit_in_memory(BUILT.entries)
    assert report.ok, [f.line() for f in report.findings]
    assert report.totals.decisions_matched == report.totals.requests == 8


def test_the_catalogue_covers_every_kind_and_operation() -> None:
    kinds = {BUILT.entries[f.i]["kind"] for f in CATALOGUE}
    assert len(kinds) == 13
    assert {f.op for f in CATALOGUE} == {
        "drop",
        "retype",
        "recase",
        "unknown",
        "revalue",
        "swap",
        "remove",
    }
    assert len(CATALOGUE) > 1000


@pytest.mark.parametrize("chunk", range(8))
def test_every_forgery_fails_and_names_its_entry(chunk: int) -> None:
    missed: list[str] = []
    for forgery in CATALOGUE[chunk::8]:
        forged = forgery.apply(BUILT)
        assert forged is not None
        report = audit_in_memory(forged)
        lines = [f.line() for f in report.findings]
        blamed = forgery.blamed(BUILT, forged)
        named = any(re.search(rf"\bentry {k}\b", ln) for ln in lines for k in blamed)
        if report.ok or not named:
            missed.append(f"{forgery}: {lines[:2]}")
    assert not missed, "\n".join(missed[:20])
