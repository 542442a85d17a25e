"""Clean: find personal data of the never-disclosed categories where a public body keeps it,
delete it, and prove the deletion (scan rules as data, a DuckDB-backed scanner, purge and
signed deletion certificates). Nothing here prints; the CLI shows the results.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from carewall.lazy import lazy_attributes

if TYPE_CHECKING:
    from carewall.clean.certificate import (
        HEADER,
        certificate_sha256,
        check_entry_matches,
        open_certificate,
        sign_certificate,
    )
    from carewall.clean.purge import Applied, PurgePlan, Recorder, apply, plan
    from carewall.clean.rules import NEVER_DISCLOSED, Rule, RuleSet, default_rules, load_rules
    from carewall.clean.scanner import ColumnResult, ScanReport, scan
    from carewall.clean.sources import DateRange, Source, open_source

# Each name from the module that holds it, loaded on first use (PEP 562): the outside
# auditor reads certificates (carewall.clean.certificate, pure) and must not load the
# scanner's DuckDB or the purge on the way.
_WHERE = {
    **dict.fromkeys(
        ("HEADER", "certificate_sha256", "check_entry_matches", "open_certificate",
         "sign_certificate"),
        "certificate",
    ),
    **dict.fromkeys(("Applied", "PurgePlan", "Recorder", "apply", "plan"), "purge"),
    **dict.fromkeys(
        ("NEVER_DISCLOSED", "Rule", "RuleSet", "default_rules", "load_rules"), "rules"
    ),
    **dict.fromkeys(("ColumnResult", "ScanReport", "scan"), "scanner"),
    **dict.fromkeys(("DateRange", "Source", "open_source"), "sources"),
}  # fmt: skip


__getattr__ = lazy_attributes(__name__, _WHERE)


__all__ = [
    "HEADER",
    "NEVER_DISCLOSED",
    "Applied",
    "ColumnResult",
    "DateRange",
    "PurgePlan",
    "Recorder",
    "Rule",
    "RuleSet",
    "ScanReport",
    "Source",
    "apply",
    "certificate_sha256",
    "check_entry_matches",
    "default_rules",
    "load_rules",
    "open_certificate",
    "open_source",
    "plan",
    "scan",
    "sign_certificate",
]
