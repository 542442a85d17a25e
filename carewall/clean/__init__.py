"""Clean: find personal data of the never-disclosed categories where a public body keeps it,
delete it, and prove the deletion (scan rules as data, a DuckDB-backed scanner, purge and
signed deletion certificates). Nothing here prints; the CLI shows the results.
"""

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
