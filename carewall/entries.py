"""Public ledger entries (contract §6): the shapes the service writes and auditors read.

Every entry is an RFC 8785 canonical JSON object with ``"v": 1`` and a ``"kind"``. Entries
hold ids, functions, purposes, bases, categories, counts, outcomes, rule ids, the policy
hash and a time, and never personal data: no names, free text, references or subject
identifiers. A subject appears only as a per-request commitment
``HMAC-SHA256(holder key, request id ‖ subject ref)``, hex-encoded.

``request`` is carewall's own opaque request id (never the requester's reference). The
exact shape of each kind, as a JSON Schema, is :func:`carewall.entry_schema.entry_schema`
(served at ``/log/schema``); these TypedDicts are the same shapes for the type checker.
"""

from __future__ import annotations

import hmac
from typing import Literal, NotRequired, TypedDict

__all__ = [
    "KINDS",
    "AgreementEntry",
    "AppealEntry",
    "DecisionEntry",
    "DeferralEntry",
    "DeletionEntry",
    "NoticeEntry",
    "OrganisationEntry",
    "PolicyEntry",
    "ReleaseEntry",
    "RequestEntry",
    "ReviewEntry",
    "ReviewerEntry",
    "SubjectGroup",
    "WithdrawalEntry",
    "subject_commitment",
]

KINDS = (
    "policy",
    "organisation",
    "reviewer",
    "request",
    "decision",
    "review",
    "release",
    "appeal",
    "notice",
    "deferral",
    "withdrawal",
    "deletion",
    "agreement",
)


def subject_commitment(holder_key: bytes, request_id: str, subject_ref: str) -> str:
    """HMAC-SHA256(holder key, request id ‖ subject ref) as hex; a NUL separates the two."""
    msg = request_id.encode() + b"\x00" + subject_ref.encode()
    return hmac.digest(holder_key, msg, "sha256").hex()  # the one-shot C path of hmac.new


class _Base(TypedDict):
    v: Literal[1]
    time: str  # RFC 3339 UTC, seconds precision, e.g. "2026-11-21T10:00:00Z"


class PolicyEntry(_Base):
    kind: Literal["policy"]
    policy: str  # "sha256:<hex>" of the active policy set's canonical text
    pledge: str  # "sha256:<hex>" of pledge.cedar
    rules: list[str]  # every @id in the active set
    change: Literal["init", "update"]
    text: str  # the full local policy (Cedar), so anyone can read and re-run it


class OrganisationEntry(_Base):
    kind: Literal["organisation"]
    id: str
    name: str  # the body's public name (never a person's)
    function: str  # never changes: a body that changes function is registered anew
    change: Literal["add", "retire"]


class ReviewerEntry(_Base):
    kind: Literal["reviewer"]
    id: str  # a role account id; the person's name is never logged
    organisation: str
    roles: list[str]
    change: Literal["add", "update", "retire"]


class SubjectGroup(TypedDict):
    """Subjects who share the facts the pledge reads, and how many there are."""

    is_child: bool
    is_victim_or_witness: bool
    consent: bool
    subjects: int


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
    offence: str | None  # a listed statute id, "unlisted", or null
    court_order: bool
    onward_recipients: list[str]  # function ids
    categories: list[str]
    subjects: int  # count
    victims_or_witnesses: int  # how many subjects are victims or witnesses of crime


class RequestEntry(_Facts):
    kind: Literal["request"]
    groups: list[SubjectGroup]  # as claimed by the requester
    subjects_root: str  # RFC 9162 root over the subjects' commitments (hex), request order


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
    groups: list[SubjectGroup]  # the holder's record of the subjects (empty when refused)
    corrected: int  # how many subjects' facts the reviewer corrected


class ReleaseEntry(_Facts):
    """Data actually sent: ``categories`` is what went, ``subjects`` how many people."""

    kind: Literal["release"]
    is_child: bool  # the holder's record for this group of subjects
    is_victim_or_witness: bool
    consent: bool
    recipient: str  # organisation id that received the data (normally the requester)
    recipient_function: str
    reviewer: str
    policy: str
    file: str | None  # an extract's released file, "sha256:<hex>"; null for a request


class AppealEntry(_Base):
    kind: Literal["appeal"]
    request: str
    by: Literal["requester", "subject"]
    stage: Literal["lodged", "upheld", "overturned"]
    reviewer: str | None  # the appeal reviewer, once decided


class NoticeEntry(_Base):
    kind: Literal["notice"]
    request: str
    subject: str  # the subject's commitment
    # where it stands in the request's subjects tree: its position (request order) and
    # inclusion path (hex, leaf to root) to the ``subjects_root`` of the request's entry
    subject_position: int
    subject_path: list[str]
    status: Literal["sent"]


class DeferralEntry(_Base):
    kind: Literal["deferral"]
    request: str
    action: Literal["deferred", "renewed", "lifted"]
    reviewer: str
    subjects: int  # how many people's notices
    review_date: str | None  # ISO date; null when lifted


class WithdrawalEntry(_Base):
    kind: Literal["withdrawal"]
    request: str
    by: str  # the requesting organisation's id


class DeletionEntry(_Base):
    kind: Literal["deletion"]
    holder: str
    categories: list[str]
    records: int
    certificate: str  # "sha256:<hex>" of the deletion certificate


class AgreementEntry(_Base):
    """A standing data-sharing agreement registered, refused, withdrawn or destroyed.

    Its terms are repeated on every action, so each entry can be judged alone; the title,
    the parties' names and the text are never logged (``text`` is the text's SHA-256).
    """

    kind: Literal["agreement"]
    agreement: str  # the agreement's id (organisation-id shaped)
    action: Literal["registered", "refused", "withdrawn", "destroyed"]
    holder: str
    holder_function: str
    recipient: str
    recipient_function: str
    purpose: str
    legal_basis: str
    other_bases: list[str]
    offence: str | None  # a listed statute id, "unlisted", or null
    onward_recipients: list[str]  # function ids
    categories: list[str]
    children: bool  # the agreement covers children
    victims_or_witnesses: bool  # … victims or witnesses of crime
    consent_required: bool  # … only people who consented
    start: str  # YYYY-MM-DD
    end: str | None
    rules: list[str]  # the pledge rules that refuse it (empty unless refused)
    policy: str  # "sha256:<hex>" of the policy set it was decided under
    text: str | None  # "sha256:<hex>" of the agreement's full text, if the holder keeps one
    releases: int | None  # withdrawn/destroyed: release entries under it
    subjects: int | None  # … people in them
    released: list[str]  # … categories in them
    due: str | None  # withdrawn/destroyed with releases: destruction due by (YYYY-MM-DD)
    certificate: str | None  # destroyed: "sha256:<hex>" of the recipient's certificate
    # registered: the recipient's published verifier key, when one is pinned (absent else)
    recipient_key: NotRequired[str]
