"""How long a holder has for what it owes the people whose data it holds.

Pure constants, read by the service (to show a reviewer what is due, and by when) and by
the outside auditor (to fail what is late), so both judge by the same numbers.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

__all__ = [
    "AGREEMENT_END_GRACE_DAYS",
    "APPEAL_DAYS",
    "MAX_DESTRUCTION_DAYS",
    "agreement_withdraw_by",
    "appeal_decide_by",
]

# An appeal is decided within this many days of being lodged. The contract sets no time;
# this is UK GDPR Art. 12(3)'s outer limit for answering a data subject (one month, which
# the controller may extend by two more where the request is complex), taken whole so that
# an honest holder who used the extension is never failed: three calendar months are at
# most 92 days.
APPEAL_DAYS = 92

# A withdrawn agreement's data is destroyed within this many days of the withdrawal, at
# most (the holder's DPO chooses, 30 by default).
MAX_DESTRUCTION_DAYS = 365

# An agreement that has reached its end date with data released under it is withdrawn
# (which asks the recipient to destroy that data) within this many days after the end. The
# contract sets no time. The end is a date the holder set in advance and withdrawing is one
# command, so it takes no longer than the holder gives the recipient, by default, for the
# harder task of destroying the data (the service's `due_days`, 30); past that, data shared
# for an agreement that no longer stands is kept without its purpose (UK GDPR Art. 5(1)(b)
# and (e)). The grace lets a DPO withdraw in the month's ordinary round, not on the day.
AGREEMENT_END_GRACE_DAYS = 30


def appeal_decide_by(lodged_at: str) -> datetime:
    """When an appeal lodged at ``lodged_at`` (RFC 3339) must be decided by: APPEAL_DAYS
    later, as the auditor counts; ValueError if it is no time."""
    return datetime.fromisoformat(lodged_at) + timedelta(days=APPEAL_DAYS)


def agreement_withdraw_by(end: str) -> str:
    """The day (``YYYY-MM-DD``) by which an agreement ending on ``end`` is withdrawn, if
    data went under it: AGREEMENT_END_GRACE_DAYS later. Withdrawn on a later day, or not
    withdrawn by the end of a later day, it is late. ValueError if ``end`` is no date."""
    day = date.fromisoformat(end)
    try:
        return (day + timedelta(days=AGREEMENT_END_GRACE_DAYS)).isoformat()
    except OverflowError:  # an end in the last days of year 9999: never late
        return date.max.isoformat()
