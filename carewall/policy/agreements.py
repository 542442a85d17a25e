"""Standing data-sharing agreements: their terms, and the pledge applied to them (pure).

An agreement (a memorandum of understanding, a data-sharing agreement) is a standing
request: the recipient may ask the holder, for the agreement's purpose and on its legal
basis, for its categories, about everyone it covers, between its dates. So it is decided by
the same Cedar engine and the same pledge as a request (:meth:`carewall.policy.Engine.
decide_facts`): the recipient is the requester, there is no court order (an agreement is
not one), and every combination of subject facts the agreement covers is decided
(children or not, victims or witnesses of crime or not, consenting or not). Any pledge rule
that refuses any category for any covered combination refuses the agreement; its ids are
logged. Dates play no part: a tracing memorandum with an immigration-enforcement body is
refused whether it ended years ago or has not begun.

The service and the outside auditor both call :func:`pledge_breaches` on the terms as the
``agreement`` log entry states them, and :class:`ReleaseIndex` to count what was released
under an agreement (as the public statistics do), so all reach the same answer.
"""

from __future__ import annotations

import itertools
import json
import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from carewall.errors import InputError
from carewall.ids import check_id
from carewall.ledger.note import Verifier
from carewall.policy.decision import EVALUATION_ERROR
from carewall.policy.engine import Engine
from carewall.policy.facts import RequestFacts, SubjectFacts
from carewall.policy.offences import (
    UNLISTED_IMMIGRATION_ACT,
    UNLISTED_IMMIGRATION_ACT_FIX,
    public_offence,
    unlisted_immigration_act,
)
from carewall.policy.pledge_check import PLEDGE_RULE_IDS
from carewall.policy.register import Register
from carewall.text import check_text
from carewall.vocab import vocabulary

__all__ = [
    "TERM_FIELDS",
    "Agreement",
    "Parties",
    "ReleaseIndex",
    "Released",
    "parse_agreement",
    "parse_agreement_text",
    "pledge_breaches",
    "subject_combinations",
]

# The fields of an agreement that the log carries and the pledge is applied to.
TERM_FIELDS = (
    "holder",
    "recipient",
    "purpose",
    "legal_basis",
    "other_bases",
    "offence",
    "onward_recipients",
    "categories",
    "children",
    "victims_or_witnesses",
    "consent_required",
    "start",
    "end",
)
_TOP = {
    "id",
    "title",
    "holder",
    "recipient",
    "purpose",
    "legal_basis",
    "other_bases",
    "offence",
    "onward_recipients",
    "categories",
    "start",
    "end",
    "subjects",
    "text_sha256",
    "recipient_key",
}
_SUBJECTS = {"children", "victims_or_witnesses", "consent_required"}
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
MAX_AGREEMENT_BYTES = 64 * 1024


@dataclass(frozen=True)
class Agreement:
    """An agreement's terms (ids, booleans and dates), plus private words never logged."""

    id: str
    holder: str
    recipient: str
    purpose: str
    legal_basis: str
    other_bases: tuple[str, ...]
    offence: str | None  # the public form: a listed statute id, "unlisted", or None
    onward_recipients: tuple[str, ...]
    categories: tuple[str, ...]
    children: bool  # covers children
    victims_or_witnesses: bool  # covers victims or witnesses of crime
    consent_required: bool  # covers only people who consented
    start: str  # YYYY-MM-DD
    end: str | None
    text_sha256: str | None = None  # sha256:<hex> of the agreement's full text, if kept
    title: str | None = None  # private: the holder's register only
    recipient_key: str | None = None  # the recipient's published verifier key, pinned

    def terms(self) -> dict[str, Any]:
        """The public terms, as the ``agreement`` entry holds them."""
        return {
            "holder": self.holder,
            "recipient": self.recipient,
            "purpose": self.purpose,
            "legal_basis": self.legal_basis,
            "other_bases": list(self.other_bases),
            "offence": self.offence,
            "onward_recipients": list(self.onward_recipients),
            "categories": list(self.categories),
            "children": self.children,
            "victims_or_witnesses": self.victims_or_witnesses,
            "consent_required": self.consent_required,
            "start": self.start,
            "end": self.end,
        }


def _vocab(value: object, kind: str, field: str) -> str:
    check_id(value, "vocab", field=field)
    if value not in vocabulary()[kind]:
        raise InputError(
            f"is not a {kind} in the vocabulary",
            field=field,
            fix=f"use one of: {', '.join(vocabulary()[kind])}",
        )
    assert isinstance(value, str)
    return value


def _vocab_set(value: object, kind: str, field: str, *, minimum: int = 0) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise InputError("must be a list", field=field, fix=f"e.g. {field} = []")
    items = [_vocab(v, kind, f"{field}[{i}]") for i, v in enumerate(value)]
    if len(set(items)) != len(items):
        raise InputError("lists an id twice", field=field, fix="list each id once")
    if len(items) < minimum:
        raise InputError(f"needs at least {minimum}", field=field, fix="name what is shared")
    return tuple(sorted(items))


def _day(value: object, field: str) -> str:
    text = value.isoformat() if isinstance(value, date) else value
    if not isinstance(text, str) or not text.isascii() or not _DATE.fullmatch(text):
        raise InputError("must be a date, YYYY-MM-DD", field=field, fix="e.g. 2016-10-07")
    try:
        date.fromisoformat(text)
    except ValueError as e:
        raise InputError("is not a real date", field=field, fix="e.g. 2016-10-07") from e
    return text


def _flag(value: object, field: str) -> bool:
    if not isinstance(value, bool):
        raise InputError("must be true or false", field=field)
    return value


def _vkey(value: object) -> str:
    """A verifier key as published (name+hex8+base64; base64 may itself hold '+')."""
    try:
        if not isinstance(value, str) or not value.isascii():
            raise ValueError("not ASCII text")
        Verifier.from_vkey(value.strip())
    except Exception as e:  # any way a key fails to parse is the same error to the user
        raise InputError(
            "is not a verifier key", field="recipient_key", fix="name+hex8+base64, as published"
        ) from e
    return value.strip()


def parse_agreement(obj: object) -> Agreement:
    """An agreement from a parsed document; InputError naming the field otherwise."""
    if not isinstance(obj, Mapping):
        raise InputError("must be an object (a TOML table or JSON object)", field="agreement")
    unknown = sorted(str(k) for k in obj if k not in _TOP)
    if unknown:
        raise InputError(
            "is not a field of an agreement",
            field=unknown[0],
            fix=f"use: {', '.join(sorted(_TOP))}",
        )
    for name in ("id", "holder", "recipient", "purpose", "legal_basis", "categories", "start"):
        if name not in obj:
            raise InputError("is required", field=name)
    subjects = obj.get("subjects", {})
    if not isinstance(subjects, Mapping):
        raise InputError("must be a table", field="subjects")
    extra = sorted(str(k) for k in subjects if k not in _SUBJECTS)
    if extra:
        raise InputError(
            "is not a field of subjects", field=f"subjects.{extra[0]}",
            fix=f"use: {', '.join(sorted(_SUBJECTS))}",
        )  # fmt: skip
    holder = check_id(obj["holder"], "organisation", field="holder")
    recipient = check_id(obj["recipient"], "organisation", field="recipient")
    if holder == recipient:
        raise InputError("is the holder itself", field="recipient", fix="name the receiving body")
    offence = obj.get("offence")
    if offence is not None:
        offence = check_id(offence, "offence", field="offence")
        if unlisted_immigration_act(offence):
            raise InputError(
                UNLISTED_IMMIGRATION_ACT, field="offence", fix=UNLISTED_IMMIGRATION_ACT_FIX
            )
        offence = public_offence(offence)
    start = _day(obj["start"], "start")
    end = _day(obj["end"], "end") if obj.get("end") is not None else None
    if end is not None and end < start:
        raise InputError("is before start", field="end", fix="an agreement ends after it starts")
    text_sha = obj.get("text_sha256")
    if text_sha is not None:
        text_sha = check_id(text_sha, "sha256", field="text_sha256")
    title = obj.get("title")
    if title is not None:
        check_text(title, field="title", kind="line", max_length=300)
    key = obj.get("recipient_key")
    if key is not None:
        key = _vkey(key)
    return Agreement(
        id=check_id(obj["id"], "organisation", field="id"),
        holder=holder,
        recipient=recipient,
        purpose=_vocab(obj["purpose"], "purpose", "purpose"),
        legal_basis=_vocab(obj["legal_basis"], "legal_basis", "legal_basis"),
        other_bases=_vocab_set(obj.get("other_bases", []), "legal_basis", "other_bases"),
        offence=offence,
        onward_recipients=_vocab_set(
            obj.get("onward_recipients", []), "function", "onward_recipients"
        ),
        categories=_vocab_set(obj["categories"], "category", "categories", minimum=1),
        children=_flag(subjects.get("children", True), "subjects.children"),
        victims_or_witnesses=_flag(
            subjects.get("victims_or_witnesses", True), "subjects.victims_or_witnesses"
        ),
        consent_required=_flag(
            subjects.get("consent_required", False), "subjects.consent_required"
        ),
        start=start,
        end=end,
        text_sha256=text_sha,
        title=title,
        recipient_key=key,
    )


def parse_agreement_text(data: bytes, name: str) -> Agreement:
    """An agreement file: JSON when ``name`` ends in ``.json``, TOML otherwise."""
    if len(data) > MAX_AGREEMENT_BYTES:
        raise InputError("is over 64 KiB", field="FILE", fix="an agreement file is a few lines")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError("is not UTF-8", field="FILE") from e
    try:
        obj = json.loads(text) if name.endswith(".json") else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as e:
        what = "JSON" if name.endswith(".json") else "TOML"
        raise InputError(f"is not valid {what}", field="FILE", fix=f"fix the {what}") from e
    return parse_agreement(obj)


def subject_combinations(terms: Mapping[str, Any]) -> list[SubjectFacts]:
    """Every combination of subject facts the agreement covers (it covers everyone it may)."""
    children = (False, True) if terms["children"] else (False,)
    victims = (False, True) if terms["victims_or_witnesses"] else (False,)
    consent = (True,) if terms["consent_required"] else (False, True)
    return [SubjectFacts(c, v, k) for c, v, k in itertools.product(children, victims, consent)]


def pledge_breaches(engine: Engine, register: Register, terms: Mapping[str, Any]) -> list[str]:
    """The pledge rule ids that refuse any covered category for any covered subject.

    ``terms`` are the logged terms (:data:`TERM_FIELDS`). An evaluation error is a breach
    (fail closed), named ``evaluation-error``. The recipient and holder must be active
    organisations of ``register`` (InputError otherwise).
    """
    register.organisation(terms["holder"], field_name="holder")
    register.organisation(terms["recipient"], field_name="recipient")
    facts = RequestFacts(
        requester=terms["recipient"],
        holder=terms["holder"],
        purpose=terms["purpose"],
        legal_basis=terms["legal_basis"],
        other_bases=tuple(terms["other_bases"]),
        offence=terms["offence"],
        court_order=False,
        onward_recipients=tuple(terms["onward_recipients"]),
        categories=tuple(terms["categories"]),
    )
    decision = engine.decide_facts(facts, subject_combinations(terms), register)
    found: set[str] = set()
    for group in decision.groups:
        for verdict in group["categories"].values():
            found.update(r for r in verdict["rules"] if r in PLEDGE_RULE_IDS)
            if EVALUATION_ERROR in verdict["rules"]:
                found.add(EVALUATION_ERROR)
    if decision.errors:
        found.add(EVALUATION_ERROR)
    return [r for r in (*PLEDGE_RULE_IDS, EVALUATION_ERROR) if r in found]


@dataclass(frozen=True)
class Released:
    """What went under an agreement: release entries, people, and categories."""

    releases: int
    subjects: int
    categories: tuple[str, ...]


Parties = tuple[str, str, str]  # a release's holder, recipient and purpose


class ReleaseIndex:
    """Release entries per (holder, recipient, purpose) and day, read from the log in order.

    A release is **under** an agreement when it is from the agreement's holder to its
    recipient, for its purpose, on a day (UTC, of the entry's time) between its start and
    end (both included; no end: open), and logged before the agreement is withdrawn.
    Requests do not cite agreements: the log says who sent what to whom and why, and that is
    what is counted. The one definition: the service, the auditor and the public statistics
    (:class:`carewall.statistics.Tally`) all ask an index.
    """

    def __init__(self) -> None:
        # (holder, recipient, purpose) -> day -> [releases, subjects, set of categories]
        self.parties: dict[Parties, dict[str, list[Any]]] = {}

    def feed(self, e: Mapping[str, Any]) -> None:
        if e.get("kind") != "release":
            return
        parties = (str(e["holder"]), str(e["recipient"]), str(e["purpose"]))
        self.add(parties, str(e["time"])[:10], int(e["subjects"]), e["categories"])

    def add(
        self, parties: Parties, day: str, subjects: int = 0, categories: Iterable[Any] = ()
    ) -> None:
        """A release entry between ``parties`` on ``day``, about ``subjects`` people, of
        ``categories``; the statistics, which ask only :meth:`any_under`, leave those out."""
        days = self.parties.get(parties)
        if days is None:
            days = self.parties[parties] = {}
        row = days.get(day)
        if row is None:
            days[day] = [1, subjects, {str(c) for c in categories}]
        else:
            row[2].update(map(str, categories))
            row[0] += 1
            row[1] += subjects

    def _rows_under(self, terms: Mapping[str, Any]) -> Iterator[list[Any]]:
        start, end = terms["start"], terms["end"] or "9999-12-31"
        days = self.parties.get((terms["holder"], terms["recipient"], terms["purpose"]), {})
        return (row for day, row in days.items() if start <= day <= end)

    def under(self, terms: Mapping[str, Any]) -> Released:
        """What went under the agreement with the (logged) ``terms`` so far."""
        rows = list(self._rows_under(terms))
        categories: set[str] = set().union(*(cats for _, _, cats in rows))
        return Released(sum(r[0] for r in rows), sum(r[1] for r in rows), tuple(sorted(categories)))

    def any_under(self, terms: Mapping[str, Any]) -> bool:
        """Whether anything went under ``terms`` so far (``under(terms).releases > 0``)."""
        return next(self._rows_under(terms), None) is not None

    def copy(self) -> ReleaseIndex:
        return ReleaseIndex.from_json(self.to_json())

    def to_json(self) -> list[list[Any]]:
        return [
            [*k, day, n, people, sorted(cats)]
            for k in sorted(self.parties)
            for day, (n, people, cats) in sorted(self.parties[k].items())
        ]

    @classmethod
    def from_json(cls, rows: Iterable[Any]) -> ReleaseIndex:
        out = cls()
        for holder, recipient, purpose, day, n, people, cats in rows:
            days = out.parties.setdefault((str(holder), str(recipient), str(purpose)), {})
            days[str(day)] = [int(n), int(people), {str(c) for c in cats}]
        return out
