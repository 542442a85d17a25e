"""Public statistics computed from the public log alone, so that anyone can recompute them.

Pure: the standard library and carewall's pure modules only, so the outside auditor
(:mod:`carewall.audit`) computes exactly what the service publishes. The statistics cover
entries ``0 … size-1`` of the log named by ``origin`` (a checkpoint of that size), read in
order. Every figure comes from the entries' public fields (:mod:`carewall.entry_schema`):

- A **request** is a ``request`` entry. Later entries name it by its ``request`` id (were an
  id logged twice, later entries apply to the latest; the auditor flags the log anyway).
- Its **outcome** is the first of these that holds, over the covered entries:
  ``released``: at least one ``release`` entry names it (data once sent stays sent, so no
  later appeal changes this); ``withdrawn``: a ``withdrawal`` entry names it;
  ``refused_by_reviewer``: a ``review`` entry with outcome ``refused`` names it;
  ``refused_automatically``: its latest ``decision`` entry's outcome is ``refused``;
  ``awaiting_review``: its latest ``decision`` entry's outcome is ``review``;
  ``awaiting_decision``: no ``decision`` entry names it (only when ``size`` cuts a
  transaction). Appeals, notices and deferrals do not change an outcome: an overturned
  refusal is followed by a review and releases, which do.
- The **firewall statement**: ``received`` = requests; ``refused`` = requests whose outcome
  is ``refused_automatically`` or ``refused_by_reviewer``; ``released`` = requests whose
  outcome is ``released``; ``releases`` = ``release`` entries; and
  ``releases_to_immigration_enforcement`` = ``release`` entries whose ``recipient_function``
  or ``requester_function`` is ``immigration_enforcement``, or whose ``recipient`` or
  ``requester`` the ``organisation`` entries before it register with that function. The
  pledge makes the last one 0.
- **Tables** count requests by ``requester_function``, ``holder`` (organisation id),
  ``purpose``, ``legal_basis`` (the main basis only) and ``month`` (``YYYY-MM`` of the
  request entry's ``time``, UTC), as the request entry states them, and by ``outcome``.
  Rows: ``outcome`` lists every outcome above in that order, zeros included; ``month`` runs
  from the first month to the last, zeros included; the others list each key with at least
  one request, most requests first, ties by key. Each table adds up to ``received``.
- **Agreements** (standing data-sharing agreements, ``agreement`` entries):
  ``registered``, ``refused``, ``withdrawn`` and ``destroyed`` count entries with that
  ``action``; ``destruction_requested`` counts ``withdrawn`` entries with a ``due`` date
  (something was released under the agreement); ``destruction_overdue`` counts agreements
  whose latest entry is such a ``withdrawn`` entry and whose ``due`` date is before the
  **log's own date**: the UTC day of the latest ``time`` among the covered entries. The
  statistics stay a function of the log alone, so "overdue" moves on only as entries are
  written; a log with no entry after the due date shows none overdue yet.
  ``ended_not_withdrawn`` counts agreements whose latest entry is ``registered``, whose
  ``end`` date is more than ``AGREEMENT_END_GRACE_DAYS`` (:mod:`carewall.deadlines`, 30)
  before the log's own date, and under which something was released: a ``release`` entry
  from its ``holder`` to its ``recipient`` for its ``purpose``, on a day (UTC, of the
  entry's ``time``) from its ``start`` to its ``end``, both included. Nobody has asked
  for that data to be destroyed; the auditor fails each such agreement too. "Under" is
  :class:`~carewall.policy.agreements.ReleaseIndex`'s, as the auditor's checks ask it.

Downloads: :meth:`Statistics.to_json` (``"v": 1``) and :meth:`Statistics.to_csv` (RFC 4180).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any, Final

from carewall.deadlines import agreement_withdraw_by
from carewall.entries import KINDS
from carewall.policy.agreements import ReleaseIndex
from carewall.statistics_document import (
    AGREEMENT_FIGURES,
    DIMENSIONS,
    FIGURES,
    MONTH,
    OUTCOMES,
    VERSION,
    Row,
    Statistics,
    StatisticsError,
)

__all__ = [
    "AGREEMENT_FIGURES",
    "DIMENSIONS",
    "FIGURES",
    "OUTCOMES",
    "VERSION",
    "Row",
    "Statistics",
    "StatisticsError",
    "Tally",
    "compute",
]

IMMIGRATION: Final = "immigration_enforcement"
_FIXED: Final = ("requester_function", "holder", "purpose", "legal_basis", "month")
_OUTCOMES_OF: Final = {
    "decision": ("refused", "review"),
    "review": ("released", "refused"),
    "release": ("",),
    "withdrawal": ("",),
}
_TERMS: Final = ("holder", "recipient", "purpose", "start", "end")

Terms = tuple[str, str, str, str, str]  # an agreement's holder, recipient, purpose, start, end


def _str(e: Mapping[str, Any], field: str) -> str:
    value = e.get(field)
    if not isinstance(value, str):
        raise StatisticsError(f"field {field!r} is missing or not a string")
    return value


class Tally:
    """The statistics so far, one entry at a time; :meth:`result` at any size.

    State is kept per request (its outcome may still change) and as counters (its other
    keys never do), so the auditor carries it between incremental runs (:meth:`to_json`).
    """

    def __init__(self) -> None:
        self.functions: dict[str, str] = {}  # organisation id -> function, as registered
        # per request: [id, decision outcome, refused by a reviewer, released, withdrawn]
        self.requests: list[list[Any]] = []
        self.latest: dict[str, int] = {}  # request id -> its position in ``requests``
        self.counts: dict[str, Counter[str]] = {d: Counter() for d in _FIXED}
        self.releases = 0
        self.to_immigration = 0
        # agreement id -> [its latest action, its destruction due date or ""]
        self.agreements: dict[str, list[str]] = {}
        self.agreement_counts: Counter[str] = Counter()
        # agreement id -> its Terms as its latest entry states them (end "" when none)
        self.agreement_terms: dict[str, Terms] = {}
        # The release entries by parties and day (not people or categories: only whether
        # any went under an agreement is counted); the state keeps the days alone.
        self.release_index = ReleaseIndex()
        # True for a tally saved before the two above were kept (before 2026-12-04): its
        # reader copies them from a replay of the same entries (AgreementReplay.complete,
        # carewall.audit.agreements), or counts wrong
        self.needs_terms = False
        self.latest_time = ""

    def feed(self, e: Mapping[str, Any]) -> None:
        """Count the parsed entry ``e`` (StatisticsError, and nothing counted, if malformed)."""
        kind = e.get("kind")
        if kind not in KINDS:
            raise StatisticsError("field 'kind' is not a kind this reader knows")
        # Fields are read as _str reads them (a str is taken as it is; anything else is
        # _str's to refuse), in the same order, so the same field is named first.
        time = e.get("time")
        if type(time) is not str:
            time = _str(e, "time")
        if time > self.latest_time:
            self.latest_time = time
        if kind == "request":
            get = e.get
            rid, function, holder, purpose, basis = (
                get("request"),
                get("requester_function"),
                get("holder"),
                get("purpose"),
                get("legal_basis"),
            )
            if not (
                type(rid) is str
                and type(function) is str
                and type(holder) is str
                and type(purpose) is str
                and type(basis) is str
            ):
                rid = _str(e, "request")
                function, holder, purpose, basis = (_str(e, d) for d in _FIXED[:4])
            month = time[:7]
            if not MONTH.fullmatch(month):
                raise StatisticsError("field 'time' does not start with a year and month")
            counts = self.counts
            counts["requester_function"][function] += 1
            counts["holder"][holder] += 1
            counts["purpose"][purpose] += 1
            counts["legal_basis"][basis] += 1
            counts["month"][month] += 1
            self.latest[rid] = len(self.requests)
            self.requests.append([rid, "", False, False, False])
        elif kind in _OUTCOMES_OF:
            self._step(kind, e)
        elif kind == "agreement":
            self._agreement(e)
        elif kind == "organisation":
            self.functions[_str(e, "id")] = _str(e, "function")

    def _agreement(self, e: Mapping[str, Any]) -> None:
        action, due = _str(e, "action"), e.get("due")
        if action not in ("registered", "refused", "withdrawn", "destroyed"):
            raise StatisticsError("field 'action' is not an agreement action")
        if due is not None and not isinstance(due, str):
            raise StatisticsError("field 'due' is not a date or null")
        holder, recipient, purpose, start = (_str(e, f) for f in _TERMS[:4])
        end = e.get("end")
        if end is not None and not isinstance(end, str):
            raise StatisticsError("field 'end' is not a date or null")
        agreement = _str(e, "agreement")
        self.agreement_counts[action] += 1
        if action == "withdrawn" and due:
            self.agreement_counts["destruction_requested"] += 1
        self.agreements[agreement] = [action, due or ""]
        self.agreement_terms[agreement] = (holder, recipient, purpose, start, end or "")

    def _overdue(self) -> int:
        today = self.latest_time[:10]
        return sum(
            1 for a, due in self.agreements.values() if a == "withdrawn" and due and due < today
        )

    def _ended(self) -> int:
        """Agreements still registered past their end and its grace, with releases under them."""
        today, count = self.latest_time[:10], 0
        for agreement, (action, _) in self.agreements.items():
            terms = self.agreement_terms.get(agreement)
            if action != "registered" or terms is None or not terms[4]:
                continue
            try:
                late = agreement_withdraw_by(terms[4]) < today
            except ValueError:  # not a real date (the auditor's finding)
                continue
            if late and self.release_index.any_under(dict(zip(_TERMS, terms, strict=True))):
                count += 1
        return count

    def _step(self, kind: str, e: Mapping[str, Any]) -> None:
        rid = e.get("request")
        if type(rid) is not str:
            rid = _str(e, "request")
        if kind == "decision" or kind == "review":
            outcome = e.get("outcome")
            if type(outcome) is not str:
                outcome = _str(e, "outcome")
        else:
            outcome = ""
        if outcome not in _OUTCOMES_OF[kind]:
            raise StatisticsError("field 'outcome' is not an outcome of its kind")
        if kind == "release":
            get = e.get
            recipient, requester, holder, purpose = (
                get("recipient"), get("requester"), get("holder"), get("purpose")
            )  # fmt: skip
            stated = (get("recipient_function"), get("requester_function"))
            if not (
                type(recipient) is str
                and type(requester) is str
                and type(stated[0]) is str
                and type(stated[1]) is str
                and type(holder) is str
                and type(purpose) is str
            ):  # read again as _str reads them, in order, so the first bad field is named
                recipient, requester = _str(e, "recipient"), _str(e, "requester")
                stated = (_str(e, "recipient_function"), _str(e, "requester_function"))
                holder, purpose = _str(e, "holder"), _str(e, "purpose")
            self.releases += 1
            # "under an agreement" is the index's to answer (time: read by feed)
            self.release_index.add((holder, recipient, purpose), e["time"][:10])
            functions = self.functions
            if (
                IMMIGRATION in stated
                or functions.get(recipient) == IMMIGRATION
                or functions.get(requester) == IMMIGRATION
            ):
                self.to_immigration += 1
        at = self.latest.get(rid)
        if at is None:
            return  # about a request not in the log before it: the auditor's finding
        req = self.requests[at]
        if kind == "decision":
            req[1] = outcome
        elif kind == "review":
            req[2] = req[2] or outcome == "refused"
        elif kind == "release":
            req[3] = True
        else:
            req[4] = True

    @staticmethod
    def _outcome(req: list[Any]) -> str:
        _, decision, reviewer_refused, released, withdrawn = req
        if released:
            return "released"
        if withdrawn:
            return "withdrawn"
        if reviewer_refused:
            return "refused_by_reviewer"
        if decision == "refused":
            return "refused_automatically"
        return "awaiting_review" if decision == "review" else "awaiting_decision"

    def result(self, origin: str, size: int) -> Statistics:
        """The statistics of everything fed so far, as entries ``0 … size-1`` of ``origin``."""
        outcomes = Counter(self._outcome(r) for r in self.requests)
        tables: dict[str, tuple[Row, ...]] = {}
        for d in DIMENSIONS:
            if d == "outcome":
                tables[d] = tuple((o, outcomes[o]) for o in OUTCOMES)
            elif d == "month":
                tables[d] = _months(self.counts[d])
            else:
                tables[d] = tuple(sorted(self.counts[d].items(), key=lambda r: (-r[1], r[0])))
        return Statistics(
            origin=origin,
            size=size,
            received=len(self.requests),
            refused=outcomes["refused_automatically"] + outcomes["refused_by_reviewer"],
            released=outcomes["released"],
            releases=self.releases,
            releases_to_immigration_enforcement=self.to_immigration,
            tables=tuple(tables.items()),
            agreements=tuple((f, self._agreement_figure(f)) for f in AGREEMENT_FIGURES),
        )

    def _agreement_figure(self, figure: str) -> int:
        if figure == "destruction_overdue":
            return self._overdue()
        if figure == "ended_not_withdrawn":
            return self._ended()
        return self.agreement_counts[figure]

    def to_json(self) -> dict[str, Any]:
        return {
            "functions": dict(self.functions),
            "requests": [list(r) for r in self.requests],
            "counts": {d: dict(c) for d, c in self.counts.items()},
            "releases": self.releases,
            "to_immigration": self.to_immigration,
            "agreements": {k: list(v) for k, v in self.agreements.items()},
            "agreement_counts": dict(self.agreement_counts),
            "agreement_terms": {k: list(v) for k, v in self.agreement_terms.items()},
            "release_days": [
                [*k, sorted(days)] for k, days in sorted(self.release_index.parties.items())
            ],
            "latest_time": self.latest_time,
        }

    @classmethod
    def from_json(cls, obj: Any) -> Tally:
        """A tally saved by :meth:`to_json` (KeyError, TypeError or ValueError if malformed)."""
        out = cls()
        out.functions = {str(k): str(v) for k, v in dict(obj["functions"]).items()}
        for rid, decision, *flags in obj["requests"]:
            if len(flags) != 3:
                raise ValueError("a request's state has 5 fields")
            out.latest[str(rid)] = len(out.requests)
            out.requests.append([str(rid), str(decision), *map(bool, flags)])
        counts = dict(obj["counts"])
        out.counts = {
            d: Counter({str(k): int(n) for k, n in dict(counts[d]).items()}) for d in _FIXED
        }
        out.releases, out.to_immigration = int(obj["releases"]), int(obj["to_immigration"])
        # absent in a state saved before agreements were counted
        out.agreements = {
            str(k): [str(a), str(d)] for k, (a, d) in dict(obj.get("agreements", {})).items()
        }
        out.agreement_counts = Counter(
            {str(k): int(n) for k, n in dict(obj.get("agreement_counts", {})).items()}
        )
        terms, days = obj.get("agreement_terms"), obj.get("release_days")
        if terms is None or days is None:  # saved before agreements' ends were counted
            out.needs_terms = True
        else:
            for k, (holder, recipient, purpose, start, end) in dict(terms).items():
                out.agreement_terms[str(k)] = (
                    str(holder), str(recipient), str(purpose), str(start), str(end)
                )  # fmt: skip
            for holder, recipient, purpose, on in days:
                key = (str(holder), str(recipient), str(purpose))
                for day in on:  # one release a day: only whether any went is counted
                    out.release_index.add(key, str(day))
        out.latest_time = str(obj.get("latest_time", ""))
        return out


def _months(counts: Mapping[str, int]) -> tuple[Row, ...]:
    if not counts:
        return ()
    (y, m), (y1, m1) = (map(int, k.split("-")) for k in (min(counts), max(counts)))
    rows = []
    while (y, m) <= (y1, m1):
        key = f"{y:04d}-{m:02d}"
        rows.append((key, counts.get(key, 0)))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return tuple(rows)


def compute(entries: Iterable[Mapping[str, Any]], *, origin: str, size: int) -> Statistics:
    """The statistics of ``entries``: the parsed entries ``0 … size-1``, in order.

    StatisticsError, naming the entry's index, if one cannot be read or the count is not
    ``size``.
    """
    tally = Tally()
    count = 0
    for i, entry in enumerate(entries):
        if i >= size:
            raise StatisticsError(f"more than {size} entries were given")
        try:
            tally.feed(entry)
        except StatisticsError as e:
            raise StatisticsError(f"entry {i}: {e}") from e
        count = i + 1
    if count != size:
        raise StatisticsError(f"{count} entries were given for size {size}")
    return tally.result(origin, size)
