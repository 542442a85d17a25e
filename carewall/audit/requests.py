"""What the replay remembers about each request and about the entries still owed.

A request moves as the service's lifecycle allows (``received → decided → reviewed →
appealed → upheld | overturned``, or ``withdrawn``); each step is a ledger entry. Entries
the service writes in one transaction (a request and its decision; a review, its releases
and their deferral) are contiguous in the log, so the replay keeps one :class:`Chain` of
entries still owed and fails any entry that breaks it. A release's notices (or a lifted
deferral's) are written after it, one per subject, by a background job: the replay counts
the notices each request still ``owes`` and checks each one against that count and its
lateness (:mod:`carewall.audit.aftercare`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from carewall.policy import Decision

__all__ = ["FACT_FIELDS", "TIME_RE", "Chain", "Decided", "Facts3", "RequestState"]

# An entry's ``time`` as the schema allows it (UTC, whole seconds): such strings sort as
# the times they name.
TIME_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")

# The request-wide facts a release MUST repeat exactly as its request states them.
FACT_FIELDS = (
    "holder",
    "holder_function",
    "requester",
    "requester_function",
    "purpose",
    "legal_basis",
    "other_bases",
    "offence",
    "court_order",
    "onward_recipients",
)

Facts3 = tuple[bool, bool, bool]  # (is_child, is_victim_or_witness, consent)
# A decision made again, its JSON, the categories it permits, and what it permits each
# group's facts (computed once per answer, shared read-only by the requests decided alike).
Decided = tuple["Decision", dict[str, Any], list[str], dict[Facts3, list[str]]]
_GROUP_FIELDS = ("claimed", "held", "released_by_facts")  # {Facts3: count}, saved as lists


def _groups_from(obj: Any) -> dict[Facts3, int]:
    return {(bool(a), bool(b), bool(c)): int(n) for a, b, c, n in obj}


@dataclass
class RequestState:
    """One request as the log has told it so far."""

    index: int  # its request entry
    facts: dict[str, Any]  # FACT_FIELDS as logged
    categories: list[str]
    subjects: int
    claimed: dict[Facts3, int]  # the requester's groups
    stage: str = "received"  # received, decided, reviewed, appealed, upheld, overturned, withdrawn
    outcome: str = ""  # refused, review, released
    permitted: list[str] | None = None  # what the replayed decision permits (None: not replayed)
    # ... and for each claimed group's facts, what it permits that group (None: not
    # replayed, or a state file written before the auditor kept it)
    permitted_by_facts: dict[Facts3, list[str]] | None = None
    decision_index: int | None = None
    review_index: int | None = None
    reviewer: str | None = None  # who reviewed it (released or refused)
    review_categories: list[str] = field(default_factory=list)
    held: dict[Facts3, int] = field(default_factory=dict)  # the holder's record at review
    appeal_by: str | None = None
    appeal_index: int | None = None
    appeal_prior: str | None = None  # the outcome appealed against
    # While appealed: when it was lodged (the replay's clock then; "" when read from a
    # state file written before the auditor judged appeals' time), and when its lateness
    # was last reported at the end of a log ("" if never; judged again APPEAL_DAYS later)
    appeal_since: str = ""
    appeal_reported: str = ""
    # Subjects' appeals lodged behind the one being decided, oldest first, each
    # [its entry, when it was lodged]: each subject of a release may appeal it once, and
    # their appeals are decided in the order they were lodged.
    appeals_waiting: list[list[Any]] = field(default_factory=list)
    subject_appeals: int = 0  # subjects' appeals lodged, never more than the subjects released
    release_reviewer: str | None = None
    released: int = 0  # subjects released, over every release entry
    released_by_facts: dict[Facts3, int] = field(default_factory=dict)
    release_categories: list[str] = field(default_factory=list)
    release_indices: list[int] = field(default_factory=list)
    deferral: str | None = None  # deferred, lifted
    deferred: int = 0  # notices held back
    deferral_index: int | None = None
    # While deferred: the review date its latest deferred or renewed entry set (None: not
    # deferred, or read from a state file written before the auditor kept it), and when
    # its lapse was last reported ("" if never; judged again DEFERRAL_GRACE_DAYS later).
    review_date: str | None = None
    review_reported: str = ""
    # The root of its subjects' tree, to which each notice's path leads ("" when read from
    # a state file written before the auditor kept it: its notices are not tied then)
    subjects_root: str = ""
    notices: set[str] = field(default_factory=set)
    owed: int = 0  # notices due (released, not deferred, or lifted) and not yet logged
    owed_since: str = ""  # the time of the entry that made the oldest of them due
    owed_index: int = -1  # that entry
    last: int = -1  # the latest entry about it

    def where(self) -> str:
        """The request, and its latest step, as a finding names them."""
        if self.last <= self.index:
            return f"the request at entry {self.index}"
        return f"the request at entry {self.index} (its latest step at entry {self.last})"

    def to_json(self) -> dict[str, Any]:
        # Once per request when a state is saved: a copy of the fields, the groups as
        # [is_child, is_victim_or_witness, consent, count] lists, the notices sorted.
        out = self.__dict__.copy()
        for key in _GROUP_FIELDS:
            groups = out[key]
            out[key] = [[*facts, n] for facts, n in groups.items()] if groups else []
        notices = self.notices
        out["notices"] = sorted(notices) if notices else []
        by_facts = self.permitted_by_facts
        if by_facts is not None:
            out["permitted_by_facts"] = [[*facts, cats] for facts, cats in by_facts.items()]
        return out

    @classmethod
    def from_json(cls, obj: Any) -> RequestState:
        data = dict(obj)
        for key in _GROUP_FIELDS:
            data[key] = _groups_from(data[key])
        data["notices"] = set(data["notices"])
        by_facts = data.get("permitted_by_facts")  # absent from older state files
        data["permitted_by_facts"] = (
            None
            if by_facts is None
            else {(bool(a), bool(b), bool(c)): [str(x) for x in cats] for a, b, c, cats in by_facts}
        )
        data.setdefault("subjects_root", "")  # absent from older state files
        # Absent from state files written when a request took one appeal: none waited then.
        waiting = data.setdefault("appeals_waiting", [])
        data.setdefault("subject_appeals", 1 if data.get("appeal_by") == "subject" else 0)
        if not isinstance(data["subject_appeals"], int) or not isinstance(waiting, list):
            raise ValueError("malformed subjects' appeals")
        for item in waiting:
            if (
                not isinstance(item, list)
                or len(item) != 2
                or not isinstance(item[0], int)
                or not isinstance(item[1], str)
                or (item[1] and not TIME_RE.fullmatch(item[1]))
            ):
                raise ValueError("malformed appeals_waiting")
        for key in ("appeal_since", "appeal_reported"):
            value = data.setdefault(key, "")
            if not isinstance(value, str) or (value and not TIME_RE.fullmatch(value)):
                raise ValueError(f"malformed {key}")
        if not isinstance(data["subjects_root"], str):
            raise ValueError("malformed subjects_root")
        # Absent from state files written before the auditor judged deferrals' lapses.
        review_date = data.setdefault("review_date", None)
        reported = data.setdefault("review_reported", "")
        if review_date is not None:
            if not isinstance(review_date, str):
                raise ValueError("malformed review_date")
            date.fromisoformat(review_date)  # ValueError: the file is refused
        if not isinstance(reported, str) or (reported and not TIME_RE.fullmatch(reported)):
            raise ValueError("malformed review_reported")
        known = set(cls.__dataclass_fields__)
        if set(data) != known:
            raise ValueError("unknown or missing request fields")
        return cls(**data)


ChainKind = Literal["decision", "review", "release"]


@dataclass
class Chain:
    """Entries still owed by the transaction that wrote the entry at ``opened``."""

    kind: ChainKind
    request: str
    opened: int
    via: str = ""  # release chains: "review" or "appeal"
    reviewer: str = ""  # who released
    role: str = ""  # the role they act in
    releases: list[int] = field(default_factory=list)
    seen: set[tuple[Facts3, tuple[str, ...]]] = field(default_factory=set)
    remaining: int = 0  # subjects released so far by the chain's release entries
    corrected: int = 0  # release chains: subjects the review's holder's record corrected
    # release chains: subjects released so far with each category, in all and by facts
    by_category: dict[str, int] = field(default_factory=dict)
    by_facts_category: dict[tuple[Facts3, str], int] = field(default_factory=dict)
    file: str | None = None  # an extract's file, as its first release names it

    def expecting(self) -> str:
        """What the chain is waiting for, in words."""
        if self.kind == "decision":
            return f"the decision on the request at entry {self.opened}"
        if self.kind == "review":
            return f"the review with the holder's record after the appeal at entry {self.opened}"
        if self.kind == "release":
            if not self.releases:
                return f"a release after the entry {self.opened} that allows it"
            return f"another release or a deferral after the release at entry {self.releases[-1]}"
        return f"the entries written with entry {self.opened}"
