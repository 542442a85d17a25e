"""Replay a carewall log entry by entry and fail closed (contract §6, §7).

:class:`Replay` keeps the register and the policy as the log states them, every request's
progress, and the entries still owed by the transaction being read (:class:`Chain`). Each
entry is first checked for its exact shape (:mod:`carewall.audit.shape`), then handed to
the checks for its kind (:mod:`.decisions`, :mod:`.releases`, :mod:`.aftercare`), and
counted for the public statistics (:class:`carewall.statistics.Tally`). Anything missing,
malformed, unknown or out of order is a :class:`Finding` naming the entry's index.

Entries' times never go backwards: each is checked against the latest time of the entries
before it, which is also the replay's clock for what is overdue (an operator signs any
time it likes; a backdated entry must not make a deadline look met). The service reads its
clock before it takes the ledger's lock for some writes (a submission, a deletion, a
register change; every write on PostgreSQL, whose lock is taken at the append), so an
honest entry may stand a little behind one written by a writer that overtook it: up to
:data:`TIME_SKEW_SECONDS` is allowed (docs/contract-notes.md, Ledger).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from carewall.audit import aftercare, decisions, releases
from carewall.audit.agreements import AgreementReplay, on_agreement
from carewall.audit.policies import PolicyReplay
from carewall.audit.register import RegisterReplay
from carewall.audit.report import Finding, Totals
from carewall.audit.requests import TIME_RE, Chain, Decided, RequestState
from carewall.audit.shape import ShapeError, check_shape
from carewall.statistics import StatisticsError, Tally

__all__ = ["TIME_SKEW_SECONDS", "Replay"]

# How far an honest entry's time may stand behind the latest time before it (see above).
TIME_SKEW_SECONDS = 300

Handler = Callable[["Replay", int, Mapping[str, Any], bool], None]


class Replay:
    """The replay's state, and the one place findings are recorded."""

    def __init__(self) -> None:
        self.register = RegisterReplay()
        self.policy = PolicyReplay()
        self.requests: dict[str, RequestState] = {}
        self.totals = Totals()
        self.findings: list[Finding] = []
        # Within one run only: checkpoints never split a transaction, so nothing is owed
        # across runs (an open chain at the end of a run is a finding).
        self.chain: Chain | None = None
        self.replayed: dict[str, dict[str, Any]] = {}  # decisions made again, awaiting entry
        # Decisions made again by their facts, with their JSON and what they permit (see
        # decisions.decide)
        self.decisions: dict[tuple[Any, ...], Decided] = {}
        # The public statistics, counted as the entries are read (None: a state file
        # written before the auditor counted them).
        self.tally: Tally | None = Tally()
        self.agreements = AgreementReplay()
        self.latest_time = ""  # the latest time of any entry read (the clock for what is due)

    # ----- recording -----------------------------------------------------------------

    def find(self, index: int, kind: str, message: str, rules: tuple[str, ...] = ()) -> None:
        self.findings.append(Finding(index, kind, message, rules))

    def request(self, index: int, entry: Mapping[str, Any]) -> RequestState | None:
        """The request an entry is about, or None (and a finding) when it is not logged."""
        state = self.requests.get(entry["request"])
        if state is None:
            self.find(
                index,
                entry["kind"],
                f"is about request {entry['request']!r}, which is not in the log before it",
            )
        return state

    # ----- the loop ------------------------------------------------------------------

    def feed(self, index: int, data: bytes) -> None:
        """Check the entry ``data`` at ``index`` and apply it."""
        try:
            entry = check_shape(data)
        except ShapeError as e:
            self.reject(index, e)
            return
        self.apply(index, entry)

    def reject(self, index: int, e: ShapeError) -> None:
        """The entry at ``index`` is not a well-formed entry (:func:`check_shape` said why)."""
        self.totals.entries += 1
        self.find(index, e.kind, e.message)
        if self.chain is not None:
            self.find(index, e.kind, f"stands where {self.chain.expecting()} was expected")
            self.chain = None
        if index == 0:
            self.find(0, e.kind, "the log's first entry must be the initial policy")

    def apply(self, index: int, entry: Mapping[str, Any]) -> None:
        """Apply the entry at ``index``, which :func:`check_shape` has accepted."""
        self.totals.entries += 1
        kind = entry["kind"]
        if index == 0 and kind != "policy":
            self.find(0, kind, "the log's first entry must be the initial policy")
        chain = self.chain
        fits = chain is not None and self._fits(entry)
        # Not continuing a chain: if it was a review's releases, they ended and their
        # notices are owed (see _releases_end); any other chain was cut short.
        if chain is not None and not fits and not self._releases_end():
            self.find(
                index,
                kind,
                f"stands where {chain.expecting()} was expected; entries written "
                "together must be contiguous",
            )
            self.chain = None
        _HANDLERS[kind](self, index, entry, fits)
        if kind in _OBSERVED:
            self.agreements.observe(index, entry)
        if self.agreements.repeated is not None:
            aftercare.check_repeated(self, index)
        state = self.requests.get(entry.get("request", ""))
        if state is not None:
            state.last = index
        self._check_time(index, kind, entry["time"])
        tally = self.tally
        if tally is not None:
            try:
                tally.feed(entry)
            except StatisticsError as e:
                self.uncounted(index, kind, str(e))

    def uncounted(self, index: int, kind: str, why: str) -> None:
        """The entry at ``index`` cannot be counted in the statistics (``why``)."""
        self.find(index, kind, f"cannot be counted in the statistics: {why}")

    def _check_time(self, index: int, kind: str, time: str) -> None:
        """Move the clock to ``time``; an entry dated before the latest time of the
        entries ahead of it (by more than TIME_SKEW_SECONDS) is a finding."""
        latest = self.latest_time
        if time >= latest:  # the schema's form sorts as the times it names
            self.latest_time = time
            return
        behind = (_parse_time(latest) - _parse_time(time)).total_seconds()
        if behind > TIME_SKEW_SECONDS:
            self.find(
                index,
                kind,
                f"is dated {time}, {_duration(behind)} before {latest}, the latest time of the "
                f"entries before it; entries' times never go back (by more than "
                f"{TIME_SKEW_SECONDS // 60} minutes)",
            )

    def _fits(self, entry: Mapping[str, Any]) -> bool:
        chain = self.chain
        if chain is None or entry.get("request") != chain.request:
            return False
        kind: str = entry["kind"]
        if chain.kind == "decision":
            return kind == "decision"
        if chain.kind == "review":
            return kind == "review"
        if kind == "release":
            return True
        deferred = kind == "deferral" and entry["action"] == "deferred"
        return bool(chain.releases) and deferred

    def _releases_end(self) -> bool:
        """At an entry that does not continue the chain: if the chain is a review's
        releases (at least one), they are complete and their notices are now owed."""
        chain = self.chain
        if chain is None or chain.kind != "release" or not chain.releases:
            return False
        released = releases.close_releases(self, chain)
        aftercare.owe(self, chain.request, released, chain.releases[-1], self.latest_time)
        self.chain = None
        return True

    def finish(self, size: int) -> None:
        """The end of the signed log: no transaction may be cut short, no notice overdue."""
        self._releases_end()
        if self.chain is not None:
            self.find(size, "end", f"the log ends where {self.chain.expecting()} was expected")
            self.chain = None
        aftercare.check_repeated(self, size)
        aftercare.check_overdue(self, size)
        self.replayed.clear()

    # ----- state file ----------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        out = {
            "register": self.register.to_json(),
            "policy": self.policy.to_json(),
            "requests": {k: s.to_json() for k, s in self.requests.items()},
            "totals": self.totals.to_json(),
            "agreements": self.agreements.to_json(),
            "latest_time": self.latest_time,
        }
        if self.tally is not None:
            out["statistics"] = self.tally.to_json()
        return out

    @classmethod
    def from_json(cls, obj: Any) -> Replay:
        out = cls()
        out.register = RegisterReplay.from_json(obj["register"])
        out.policy = PolicyReplay.from_json(obj["policy"])
        out.requests = {str(k): RequestState.from_json(v) for k, v in obj["requests"].items()}
        out.totals = Totals.from_json(obj["totals"])
        out.tally = Tally.from_json(obj["statistics"]) if "statistics" in obj else None
        out.agreements = AgreementReplay.from_json(obj.get("agreements"))
        if out.tally is not None and out.tally.needs_terms:  # saved before ended agreements
            out.agreements.complete(out.tally)  # were counted: copied from the replay's own
        latest = obj["latest_time"]
        if not isinstance(latest, str) or (latest and not TIME_RE.fullmatch(latest)):
            raise ValueError("malformed latest_time")
        _parse_time(latest or "0001-01-01T00:00:00Z")  # ValueError: not a real time
        out.latest_time = latest
        return out


def _parse_time(time: str) -> datetime:
    return datetime.fromisoformat(time.replace("Z", "+00:00"))


def _duration(seconds: float) -> str:
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} minutes"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.0f} hours"
    return f"{seconds / 86400:.0f} days"


def _on_policy(rp: Replay, index: int, entry: Mapping[str, Any], fits: bool) -> None:
    for problem in rp.policy.apply(entry, index):
        rp.find(index, "policy", problem)


def _on_organisation(rp: Replay, index: int, entry: Mapping[str, Any], fits: bool) -> None:
    for problem in rp.register.organisation(entry, index):
        rp.find(index, "organisation", problem)


def _on_reviewer(rp: Replay, index: int, entry: Mapping[str, Any], fits: bool) -> None:
    for problem in rp.register.reviewer(entry, index):
        rp.find(index, "reviewer", problem)


_OBSERVED = frozenset(("release", "deletion"))  # what AgreementReplay.observe remembers

_HANDLERS: dict[str, Handler] = {
    "policy": _on_policy,
    "organisation": _on_organisation,
    "reviewer": _on_reviewer,
    "request": decisions.on_request,
    "decision": decisions.on_decision,
    "review": releases.on_review,
    "release": releases.on_release,
    "appeal": releases.on_appeal,
    "notice": aftercare.on_notice,
    "deferral": aftercare.on_deferral,
    "withdrawal": aftercare.on_withdrawal,
    "deletion": aftercare.on_deletion,
    "agreement": on_agreement,
}
