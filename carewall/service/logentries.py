"""Build the public ledger entries (contract §6) from a request's private document.

The only place the service turns private data into public entries, so the only place that
has to be right about leaving personal data out: every value copied here is an id from a
closed vocabulary or the register, a count, a boolean, a rule id, a hash or a time. The
requester's reference, names, free text and subject refs are never read here except the
refs, which go in only as their commitments (:func:`carewall.entries.subject_commitment`,
computed for a request's refs by :func:`commitments_for`).
"""

from __future__ import annotations

import functools
import hmac
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from carewall.entries import (
    AppealEntry,
    DecisionEntry,
    DeferralEntry,
    NoticeEntry,
    OrganisationEntry,
    PolicyEntry,
    ReleaseEntry,
    RequestEntry,
    ReviewEntry,
    ReviewerEntry,
    SubjectGroup,
    WithdrawalEntry,
)
from carewall.ids import IdKind, check_id
from carewall.policy.facts import SubjectFacts
from carewall.policy.offences import public_offence

__all__ = [
    "appeal_entry",
    "decision_entry",
    "deferral_entry",
    "group_counts",
    "notice_entry",
    "organisation_entry",
    "policy_entry",
    "release_entry",
    "request_entry",
    "review_entry",
    "reviewer_entry",
    "rfc3339",
    "withdrawal_entry",
]


def rfc3339(t: datetime) -> str:
    """RFC 3339 UTC at seconds precision, e.g. ``2026-11-21T10:00:00Z``."""
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _id(value: Any, field: str, kind: IdKind = "vocab") -> str:
    # Belt and braces: ids are validated at intake, but a value that does not look like an
    # id must never reach the public log, where it could be someone's name.
    return check_id(value, kind, field=field)


def _ids(values: Sequence[Any], field: str, kind: IdKind = "vocab") -> list[str]:
    return [_id(v, field, kind) for v in values]


def group_counts(
    subjects: Sequence[SubjectFacts] | Mapping[SubjectFacts, int],
) -> list[SubjectGroup]:
    """One group per distinct combination of facts, with its count, in a fixed order.

    ``subjects`` is each subject's facts, or already a count per combination."""
    counts = Counter(subjects) if not isinstance(subjects, Mapping) else subjects
    return [
        {
            "is_child": f.is_child,
            "is_victim_or_witness": f.is_victim_or_witness,
            "consent": f.consent,
            "subjects": n,
        }
        for f, n in sorted(counts.items())
    ]


def _facts(
    doc: Mapping[str, Any],
    request_id: str,
    functions: Mapping[str, str],
    *,
    counted: bool = True,
) -> dict[str, Any]:
    """The request-wide facts; ``counted=False`` leaves the subjects uncounted (zero), for
    an entry that states its own counts."""
    holder = _id(doc["holder"], "holder", "organisation")
    requester = _id(doc["requester"], "requester", "organisation")
    subjects = doc["subjects"] if counted else ()
    return {
        "request": _id(request_id, "request", "request"),
        "holder": holder,
        "holder_function": _id(functions[holder], "holder"),
        "requester": requester,
        "requester_function": _id(functions[requester], "requester"),
        "purpose": _id(doc["purpose"], "purpose"),
        "legal_basis": _id(doc["legal_basis"], "legal_basis"),
        "other_bases": _ids(doc.get("other_bases") or [], "other_bases"),
        # only a listed statute id, or the word "unlisted": never the requester's text
        "offence": public_offence(doc.get("offence") or None),
        "court_order": bool(doc.get("court_order")),
        "onward_recipients": _ids(doc.get("onward_recipients") or [], "onward_recipients"),
        "categories": _ids(doc["categories"], "categories"),
        "subjects": len(subjects),
        "victims_or_witnesses": sum(1 for s in subjects if s.get("is_victim_or_witness")),
    }


def policy_entry(
    *,
    policy: str,
    pledge: str,
    rules: Sequence[str],
    change: Literal["init", "update"],
    text: str,
    time: str,
) -> PolicyEntry:
    return {
        "v": 1,
        "kind": "policy",
        "time": time,
        "policy": _id(policy, "policy", "sha256"),
        "pledge": _id(pledge, "pledge", "sha256"),
        "rules": sorted(_ids(rules, "rules", "rule")),
        "change": change,
        "text": text,
    }


def organisation_entry(
    org_id: str, name: str, function: str, change: Literal["add", "retire"], time: str
) -> OrganisationEntry:
    return {
        "v": 1,
        "kind": "organisation",
        "time": time,
        "id": _id(org_id, "id", "organisation"),
        "name": name,
        "function": _id(function, "function"),
        "change": change,
    }


def reviewer_entry(
    rev_id: str,
    organisation: str,
    roles: Sequence[str],
    change: Literal["add", "update", "retire"],
    time: str,
) -> ReviewerEntry:
    return {
        "v": 1,
        "kind": "reviewer",
        "time": time,
        "id": _id(rev_id, "id", "reviewer"),
        "organisation": _id(organisation, "organisation", "organisation"),
        "roles": sorted(_ids(roles, "roles")),
        "change": change,
    }


def request_entry(
    doc: Mapping[str, Any],
    request_id: str,
    functions: Mapping[str, str],
    claimed: Sequence[SubjectFacts],
    subjects_root: str,
    time: str,
) -> RequestEntry:
    entry: dict[str, Any] = {"v": 1, "kind": "request", "time": time}
    entry.update(_facts(doc, request_id, functions))
    entry["groups"] = group_counts(claimed)
    entry["subjects_root"] = _id(subjects_root, "subjects_root", "hash")
    return entry  # type: ignore[return-value]


@functools.lru_cache(maxsize=64)
def _keyed(key: bytes) -> hmac.HMAC:
    """HMAC-SHA256 set up with a holder's key, to be copied for each message."""
    return hmac.new(key, digestmod="sha256")


def commitments_for(key: bytes, request_id: str, refs: Sequence[str]) -> list[str]:
    """:func:`~carewall.entries.subject_commitment` of each ref (a test holds the two
    equal): the same HMAC of the same bytes, the key set up once per holder rather than once
    per subject, which OpenSSL's one-shot HMAC does on every call (with a look-up of the
    algorithm): most of the time a one-subject request spends on its commitment."""
    keyed = _keyed(bytes(key))
    prefix = request_id.encode() + b"\x00"
    out = []
    for ref in refs:
        h = keyed.copy()
        h.update(prefix + ref.encode())
        out.append(h.hexdigest())
    return out


def decision_entry(request_id: str, decision: Mapping[str, Any], time: str) -> DecisionEntry:
    """The §4 decision without its prose reasons (rules name the reasons publicly)."""
    cats: dict[str, dict[str, object]] = {}
    for cat, d in decision.get("categories", {}).items():
        cats[_id(cat, "categories")] = {
            "outcome": _id(d.get("outcome", "refused"), "outcome"),
            "rules": _ids(d.get("rules", []), "rules", "rule"),
        }
    outcome: Literal["refused", "review"] = (
        "review" if decision.get("outcome") == "review" else "refused"
    )
    return {
        "v": 1,
        "kind": "decision",
        "time": time,
        "request": _id(request_id, "request", "request"),
        "outcome": outcome,
        "categories": cats,
        "rules": _ids(decision.get("rules", []), "rules", "rule"),
        "policy": _id(decision.get("policy", ""), "policy", "sha256"),
    }


def review_entry(
    request_id: str,
    outcome: Literal["released", "refused"],
    reviewer: str,
    categories: Sequence[str],
    time: str,
    *,
    confirmed: Sequence[SubjectFacts] | Mapping[SubjectFacts, int] = (),
    corrected: int = 0,
) -> ReviewEntry:
    return {
        "v": 1,
        "kind": "review",
        "time": time,
        "request": _id(request_id, "request", "request"),
        "outcome": outcome,
        "reviewer": _id(reviewer, "reviewer", "reviewer"),
        "categories": sorted(_ids(categories, "categories")),
        "groups": group_counts(confirmed),
        "corrected": corrected,
    }


def release_entry(
    doc: Mapping[str, Any],
    request_id: str,
    functions: Mapping[str, str],
    *,
    categories: Sequence[str],
    facts: SubjectFacts,
    count: int,
    reviewer: str,
    policy: str,
    time: str,
    file: str | None = None,
) -> ReleaseEntry:
    """One release of ``categories`` about ``count`` subjects whose holder's record is ``facts``.

    ``file``: for an extract, the released file's SHA-256 (``sha256:<hex>``)."""
    entry: dict[str, Any] = {"v": 1, "kind": "release", "time": time}
    entry.update(_facts(doc, request_id, functions, counted=False))
    entry["categories"] = _ids(sorted(categories), "categories")
    entry["subjects"] = count
    entry["victims_or_witnesses"] = count if facts.is_victim_or_witness else 0
    entry["is_child"] = facts.is_child
    entry["is_victim_or_witness"] = facts.is_victim_or_witness
    entry["consent"] = facts.consent
    entry["recipient"] = entry["requester"]
    entry["recipient_function"] = entry["requester_function"]
    entry["reviewer"] = _id(reviewer, "reviewer", "reviewer")
    entry["policy"] = _id(policy, "policy", "sha256")
    entry["file"] = None if file is None else _id(file, "file", "sha256")
    return entry  # type: ignore[return-value]


def appeal_entry(
    request_id: str,
    by: Literal["requester", "subject"],
    stage: Literal["lodged", "upheld", "overturned"],
    time: str,
    reviewer: str | None = None,
) -> AppealEntry:
    return {
        "v": 1,
        "kind": "appeal",
        "time": time,
        "request": _id(request_id, "request", "request"),
        "by": by,
        "stage": stage,
        "reviewer": None if reviewer is None else _id(reviewer, "reviewer", "reviewer"),
    }


def notice_entry(
    request_id: str, commitment: str, position: int, path: Sequence[str], time: str
) -> NoticeEntry:
    """A notice sent to the subject at ``position`` of the request, with the inclusion
    ``path`` that ties its commitment to the request entry's ``subjects_root``."""
    return {
        "v": 1,
        "kind": "notice",
        "time": time,
        "request": _id(request_id, "request", "request"),
        "subject": _id(commitment, "subject", "commitment"),
        "subject_position": int(position),
        "subject_path": _ids(path, "subject_path", "hash"),
        "status": "sent",
    }


def deferral_entry(
    request_id: str,
    action: Literal["deferred", "renewed", "lifted"],
    reviewer: str,
    subjects: int,
    review_date: str | None,
    time: str,
) -> DeferralEntry:
    return {
        "v": 1,
        "kind": "deferral",
        "time": time,
        "request": _id(request_id, "request", "request"),
        "action": action,
        "reviewer": _id(reviewer, "reviewer", "reviewer"),
        "subjects": subjects,
        "review_date": review_date,
    }


def withdrawal_entry(request_id: str, by: str, time: str) -> WithdrawalEntry:
    return {
        "v": 1,
        "kind": "withdrawal",
        "time": time,
        "request": _id(request_id, "request", "request"),
        "by": _id(by, "by", "organisation"),
    }
