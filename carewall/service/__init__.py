"""The disclosure service: requests, human review, appeals and notices over the ledger."""

from carewall.service.facade import DEFAULT_DEFERRAL_DAYS, Service
from carewall.service.lifecycle import TRANSITIONS, Action, Outcome, Stage
from carewall.service.notices import Channel, Notice, OutboxChannel, SmtpChannel, channel_from_env
from carewall.service.records import (
    AppealRecord,
    EventRecord,
    NoticeRecord,
    ReleaseGroup,
    ReleaseRecord,
    RequestRecord,
    RequestSummary,
    SubjectRecord,
    SubjectView,
    Submitted,
)

__all__ = [
    "DEFAULT_DEFERRAL_DAYS",
    "TRANSITIONS",
    "Action",
    "AppealRecord",
    "Channel",
    "EventRecord",
    "Notice",
    "NoticeRecord",
    "OutboxChannel",
    "Outcome",
    "ReleaseGroup",
    "ReleaseRecord",
    "RequestRecord",
    "RequestSummary",
    "Service",
    "SmtpChannel",
    "Stage",
    "SubjectRecord",
    "SubjectView",
    "Submitted",
    "channel_from_env",
]
