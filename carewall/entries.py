"""Public ledger entries (contract §6): the shapes the service writes and auditors read.

Every entry is an RFC 8785 canonical JSON object with ``"v": 1`` and a ``"kind"``. Entries
hold ids, functions, purposes, bases, categories, counts, outcomes, rule ids, the policy
hash and a time, and never personal data: no names, free text, references or subject
identifiers. A subject appears only as a per-request commitment
``HMAC-SHA256(holder key, request id ‖ subject ref)``, hex-encoded.

``request`` is carewall's own opaque request id (never the requester's reference).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Literal, NotRequired, TypedDict

__all__ = [
    "KINDS",
    "AppealEntry",
    "DecisionEntry",
    "DeletionEntry",
    "NoticeEntry",
    "PolicyEntry",
    "ReleaseEntry",
    "RequestEntry",
    "ReviewEntry",
    "subject_commitment",
]

KINDS = ("policy", "request", "decision", "review", "release", "appeal", "notice", "deletion")


def subject_commitment(holder_key: bytes, request_id: str, subject_ref: str) -> str:
    """HMAC-SHA256(holder key, request id ‖ subject ref) as hex; a NUL separates the two."""
    msg = request_id.encode() + b"\x00" + subject_ref.encode()
    return hmac.new(holder_key, msg, hashlib.sha256).hexdigest()


class _Base(TypedDict):
    v: Literal[1]
    time: str  # RFC 3339 UTC, seconds precision, e.g. "2026-11-21T10:00:00Z"


class PolicyEntry(_Base):
    kind: Literal["policy"]
    policy: str  # "sha256:<hex>" of the active policy set's canonical text
    pledge: str  # "sha256:<hex>" of pledge.cedar
    rules: list[str]  # every @id in the active set
    change: Literal["init", "update"]


class _Facts(_Base):
    """What the pledge needs to judge a disclosure, shared by request and release entries."""

    request: str
    holder: str
    holder_function: str
    requester: str
    requester_function: str
    purpose: str
    legal_basis: str
    other_bases: list[str]
    offence: str | None  # the cited offence id (a statute id, never free text) or null
    court_order: bool
    onward_recipients: list[str]  # function ids
    categories: list[str]
    subjects: int  # count
    victims_or_witnesses: int  # how many subjects are victims or witnesses of crime


class RequestEntry(_Facts):
    kind: Literal["request"]
    commitments: list[str]  # one subject_commitment per subject, in request order


class DecisionEntry(_Base):
    kind: Literal["decision"]
    request: str
    outcome: Literal["refused", "review"]
    categories: dict[str, dict[str, object]]  # category -> {"outcome": …, "rules": [...]}
    rules: list[str]
    policy: str


class ReviewEntry(_Base):
    kind: Literal["review"]
    request: str
    outcome: Literal["released", "refused"]
    reviewer: str  # reviewer id from the register (a role account id, never a name)
    categories: list[str]  # categories approved for release (empty when refused)


class ReleaseEntry(_Facts):
    """Data actually sent: ``categories`` is what went, ``subjects`` how many people."""

    kind: Literal["release"]
    recipient: str  # organisation id that received the data (normally the requester)
    recipient_function: str
    reviewer: str
    policy: str


class AppealEntry(_Base):
    kind: Literal["appeal"]
    request: str
    by: Literal["requester", "subject"]
    stage: Literal["lodged", "upheld", "overturned"]
    reviewer: NotRequired[str]


class NoticeEntry(_Base):
    kind: Literal["notice"]
    request: str
    subject: str  # the subject's commitment
    status: Literal["sent", "deferred"]
    review_date: NotRequired[str]  # ISO date, when deferred


class DeletionEntry(_Base):
    kind: Literal["deletion"]
    holder: str
    categories: list[str]
    records: int
    certificate: str  # "sha256:<hex>" of the deletion certificate
