"""``carewall audit``: follow a carewall log over HTTP as an outsider, trusting only its key.

The auditor depends on the pure cores only (ledger hashing and notes, the policy engine,
the entry schema), never on the service, storage or API: it is the outsider.

- :mod:`.fetch`: checkpoint, consistency and inclusion over HTTP (C2SP tlog-tiles);
- :mod:`.shape`: every entry canonical, of a known kind, of its kind's exact shape;
- :mod:`.replay` with :mod:`.register`, :mod:`.policies`, :mod:`.decisions`,
  :mod:`.releases` and :mod:`.aftercare`: the log replayed, failing closed (contract §7);
- :mod:`.statistics`: the statistics the server publishes, compared with those computed
  from the replayed log (:mod:`carewall.statistics`);
- :mod:`.report` and :mod:`.state`: what was found, and what is kept between runs.
"""

from __future__ import annotations

from carewall.audit.fetch import FetchError
from carewall.audit.report import AuditReport, Finding, Totals
from carewall.audit.run import audit_log
from carewall.audit.state import (
    STATE_VERSION,
    AuditState,
    default_key_path,
    load_state,
    save_state,
    state_key,
)

__all__ = [
    "STATE_VERSION",
    "AuditReport",
    "AuditState",
    "FetchError",
    "Finding",
    "Totals",
    "audit_log",
    "default_key_path",
    "load_state",
    "save_state",
    "state_key",
]
