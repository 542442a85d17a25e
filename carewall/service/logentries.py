"""Build the public ledger entries (contract §6) from a request's private document.

The only place the service turns private data into public entries, so the only place that
has to be right about leaving personal data out: every value copied here is an id from a
closed vocabulary or the register, a count, a boolean, a rule id, a hash or a time. The
requester's reference, names, free text and subject refs are never read here except the
refs, which go in only through :func:`carewall.entries.subject_commitment`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from carewall.entries import (
    AppealEntry,
    DecisionEntry,
    NoticeEntry,
    ReleaseEntry,
    RequestEntry,
    ReviewEntry,
    subject_commitment,
)
from carewall.errors import InputError

__all__ = [
    "appeal_entry",
    "decision_entry",
    "notice_entry",
    "release_entry",
    "request_entry",
    "review_entry",
    "rfc3339",
]

_ID = re.compile(r"^[a-z0-9][a-z0-9_.\-]{0,99}$")


def rfc3339(t: datetime) -> str:
    """RFC 3339 UTC at seconds precision, e.g. ``2026-11-21T10:00:00Z``."""
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _id(value: Any, field: str) -> str:
    # Belt and braces: ids are validated at intake, but a value that does not look like an
    # id must never reach the public log, where it could be someone's name.
    if not isinstance(value, str) or not _ID.match(value):
        raise InputError("not an identifier", field=field, fix="use a lowercase id")
    return value


def _ids(values: Sequence[Any], field: str) -> list[str]:
    return [_id(v, field) for v in values]


def _facts(doc: Mapping[str, Any], request_id: str, functions: Mapping[str, str]) -> dict[str, Any]:
    holder = _id(doc["holder"], "holder")
    requester = _id(doc["requester"], "requester")
    offence = doc.get("offence")
    subjects = doc["subjects"]
    return {
        "request": request_id,
        "holder": holder,
        "holder_function": _id(functions[holder], "holder"),
        "requester": requester,
        "requester_function": _id(functions[requester], "requester"),
        "purpose": _id(doc["purpose"], "purpose"),
        "legal_basis": _id(doc["legal_basis"], "legal_basis"),
        "other_bases": _ids(doc.get("other_bases") or [], "other_bases"),
        "offence": None if offence in (None, "") else _id(offence, "offence"),
        "court_order": bool(doc.get("court_order")),
        "onward_recipients": _ids(doc.get("onward_recipients") or [], "onward_recipients"),
        "categories": _ids(doc["categories"], "categories"),
        "subjects": len(subjects),
        "victims_or_witnesses": sum(1 for s in subjects if s.get("is_victim_or_witness")),
    }


def request_entry(
    doc: Mapping[str, Any],
    request_id: str,
    functions: Mapping[str, str],
    commitments: Sequence[str],
    time: str,
) -> RequestEntry:
    entry: dict[str, Any] = {"v": 1, "kind": "request", "time": time}
    entry.update(_facts(doc, request_id, functions))
    entry["commitments"] = list(commitments)
    return entry  # type: ignore[return-value]


def commitments_for(key: bytes, request_id: str, refs: Sequence[str]) -> list[str]:
    return [subject_commitment(key, request_id, ref) for ref in refs]


def decision_entry(request_id: str, decision: Mapping[str, Any], time: str) -> DecisionEntry:
    """The §4 decision without its prose reasons (rules name the reasons publicly)."""
    cats: dict[str, dict[str, object]] = {}
    for cat, d in decision.get("categories", {}).items():
        cats[_id(cat, "categories")] = {
            "outcome": _id(d.get("outcome", "refused"), "outcome"),
            "rules": list(d.get("rules", [])),
        }
    outcome: Literal["refused", "review"] = (
        "review" if decision.get("outcome") == "review" else "refused"
    )
    return {
        "v": 1,
        "kind": "decision",
        "time": time,
        "request": request_id,
        "outcome": outcome,
        "categories": cats,
        "rules": list(decision.get("rules", [])),
        "policy": str(decision.get("policy", "")),
    }


def review_entry(
    request_id: str,
    outcome: Literal["released", "refused"],
    reviewer: str,
    categories: Sequence[str],
    time: str,
) -> ReviewEntry:
    return {
        "v": 1,
        "kind": "review",
        "time": time,
        "request": request_id,
        "outcome": outcome,
        "reviewer": _id(reviewer, "reviewer"),
        "categories": sorted(categories),
    }


def release_entry(
    doc: Mapping[str, Any],
    request_id: str,
    functions: Mapping[str, str],
    *,
    categories: Sequence[str],
    subjects: Sequence[int],
    reviewer: str,
    policy: str,
    time: str,
) -> ReleaseEntry:
    """One release of ``categories`` about the subjects at ``subjects`` to the requester."""
    facts = _facts(doc, request_id, functions)
    group = [doc["subjects"][i] for i in subjects]
    facts["categories"] = _ids(sorted(categories), "categories")
    facts["subjects"] = len(group)
    facts["victims_or_witnesses"] = sum(1 for s in group if s.get("is_victim_or_witness"))
    entry: dict[str, Any] = {"v": 1, "kind": "release", "time": time}
    entry.update(facts)
    entry["recipient"] = facts["requester"]
    entry["recipient_function"] = facts["requester_function"]
    entry["reviewer"] = _id(reviewer, "reviewer")
    entry["policy"] = policy
    return entry  # type: ignore[return-value]


def appeal_entry(
    request_id: str,
    by: Literal["requester", "subject"],
    stage: Literal["lodged", "upheld", "overturned"],
    time: str,
    reviewer: str | None = None,
) -> AppealEntry:
    entry: AppealEntry = {
        "v": 1,
        "kind": "appeal",
        "time": time,
        "request": request_id,
        "by": by,
        "stage": stage,
    }
    if reviewer is not None:
        entry["reviewer"] = _id(reviewer, "reviewer")
    return entry


def notice_entry(
    request_id: str,
    commitment: str,
    status: Literal["sent", "deferred"],
    time: str,
    review_date: str | None = None,
) -> NoticeEntry:
    entry: NoticeEntry = {
        "v": 1,
        "kind": "notice",
        "time": time,
        "request": request_id,
        "subject": commitment,
        "status": status,
    }
    if review_date is not None:
        entry["review_date"] = review_date
    return entry
