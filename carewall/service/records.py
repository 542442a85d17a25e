"""Typed records the service hands out: the DPO record of a request and its parts.

These are the private records a data protection officer keeps (they hold personal data);
the public ledger only ever sees the entries built in :mod:`carewall.service.logentries`.
Pydantic models so the HTTP API can use them as response models unchanged.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

__all__ = [
    "AppealRecord",
    "EventRecord",
    "HeldFacts",
    "NoticeRecord",
    "ReleaseGroup",
    "ReleaseRecord",
    "Replayed",
    "RequestRecord",
    "RequestSummary",
    "SubjectRecord",
    "SubjectView",
    "Submitted",
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class Submitted(_Frozen):
    """What ``submit`` returns: the new id, the policy's outcome, the decision's log index."""

    id: str
    outcome: Literal["refused", "review"]
    log_index: int


class Replayed(Submitted):
    """The first result of a submission, returned to a retry with the same idempotency key.

    It serialises exactly as :class:`Submitted`; only its type says it is a replay."""


class EventRecord(_Frozen):
    kind: str
    time: str
    actor: str | None
    log_index: int | None


class HeldFacts(_Frozen):
    """The holder's record of a subject, as the reviewer confirmed or corrected it."""

    is_child: bool
    is_victim_or_witness: bool
    consent: bool


class SubjectRecord(_Frozen):
    position: int
    ref: str
    is_child: bool  # as claimed by the requester
    is_victim_or_witness: bool
    consent: bool = False  # the requester's claim, never taken as given
    commitment: str
    has_contact: bool
    held: HeldFacts | None = None  # the holder's record, once confirmed at review


class ReleaseGroup(_Frozen):
    """Subjects (by position in the request) who had the same categories released."""

    subjects: list[int]
    categories: list[str]
    log_index: int


class ReleaseRecord(_Frozen):
    """What was sent, when and to whom."""

    sent_at: str
    recipient: str
    recipient_name: str
    reviewer: str
    policy: str
    categories: list[str]
    groups: list[ReleaseGroup]


class AppealRecord(_Frozen):
    by: Literal["requester", "subject"]
    # Whoever lodged the appeal and the holder's reviewers read the grounds; anyone else
    # gets null (a subject's grounds are never the requester's, nor another subject's).
    grounds: str | None
    prior_outcome: str
    lodged_at: str
    reviewer: str | None
    decided_at: str | None
    result: Literal["upheld", "overturned"] | None


class NoticeRecord(_Frozen):
    id: int
    request_id: str
    subject: int
    status: Literal["sent", "deferred"]
    review_date: str | None
    release_index: int
    log_index: int
    created_at: str
    delivered_at: str | None
    channel: str | None
    # set once by the worker that delivers it; claimed but undelivered means it died mid-way
    claimed_at: str | None = None


class RequestSummary(_Frozen):
    """One row of a list: ids, codes and counts only (no names or references)."""

    id: str
    holder: str
    requester: str
    purpose: str
    legal_basis: str
    stage: str
    outcome: str
    received_at: str
    subjects: int
    categories: list[str]


class RequestRecord(_Frozen):
    """The DPO record of one request: everything law and good practice ask to be kept."""

    id: str
    reference: str
    holder: str
    requester: str
    officer: dict[str, Any] | None
    authorised_by: dict[str, Any] | None  # the countersigning officer
    purpose: str
    legal_basis: str
    other_bases: list[str]
    offence: str | None
    court_order: dict[str, Any] | None
    necessity: str | None
    prejudice: bool  # would telling the subject prejudice the purpose?
    subjects: list[SubjectRecord]
    categories: list[str]
    onward_recipients: list[str]
    received_at: str
    stage: str
    outcome: str
    decided_at: str
    decision: dict[str, Any]  # contract §4, with reasons and rules
    reviewer: str | None
    reviewed_at: str | None
    review_note: str | None
    release: ReleaseRecord | None
    # the appeal in hand: the oldest not yet decided, else the latest (see ``appeals``)
    appeal: AppealRecord | None
    notices: list[NoticeRecord]
    withdrawn_by: str | None
    withdrawn_at: str | None
    events: list[EventRecord]
    # every appeal, in the order lodged (and decided): a requester's against a refusal,
    # and each subject's against a release (each subject may appeal a release once)
    appeals: list[AppealRecord] = []


class SubjectView(_Frozen):
    """What a subject sees with their access code: what went where, and the proof."""

    request_id: str
    subject: int
    holder: str
    holder_name: str
    recipient: str | None
    recipient_name: str | None
    purpose: str
    legal_basis: str
    court_order: bool
    categories: list[str]
    released_at: str | None
    stage: str
    outcome: str
    notice_status: str | None
    release_index: int | None
    tree_size: int | None
    inclusion_proof: list[str]
    checkpoint: str | None  # the signed checkpoint (C2SP note) the proof is against
    commitment: str
    can_appeal: bool
    appeal: AppealRecord | None
    # The subject's place in the request: their commitment's RFC 9162 path to the
    # ``subjects_root`` logged in the request's entry (at ``request_index``), so they can
    # check that the logged request names them (ledger.subjects.verify_subject).
    request_index: int | None = None
    subjects_root: str | None = None
    subject_count: int = 0
    # released when an appeal reviewer overturned the requester's appeal of a refusal
    # (else by the release reviewer who reviewed it)
    released_on_appeal: bool = False
    subject_path: list[str] = []
