"""How long a holder has for what it owes the people whose data it holds.

Pure constants, read by the service (to show a reviewer what is due, and by when) and by
the outside auditor (to fail what is late), so both judge by the same numbers.
"""

from __future__ import annotations

from datetime import datetime, timedelta

__all__ = ["APPEAL_DAYS", "MAX_DESTRUCTION_DAYS", "appeal_decide_by"]

# An appeal is decided within this many days of being lodged. The contract sets no time;
# this is UK GDPR Art. 12(3)'s outer limit for answering a data subject (one month, which
# the controller may extend by two more where the request is complex), taken whole so that
# an honest holder who used the extension is never failed: three calendar months are at
# most 92 days.
APPEAL_DAYS = 92

# A withdrawn agreement's data is destroyed within this many days of the withdrawal, at
# most (the holder's DPO chooses, 30 by default).
MAX_DESTRUCTION_DAYS = 365


def appeal_decide_by(lodged_at: str) -> datetime:
    """When an appeal lodged at ``lodged_at`` (RFC 3339) must be decided by: APPEAL_DAYS
    later, as the auditor counts; ValueError if it is no time."""
    return datetime.fromisoformat(lodged_at) + timedelta(days=APPEAL_DAYS)
