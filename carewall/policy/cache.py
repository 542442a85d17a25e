"""A cache of per-category decisions, keyed on everything a decision can depend on.

Under a fixed policy and register, Cedar's answer for one category is a function of the
Cedar request alone: the principal (the requester), the resource (the category) and the
context, which :meth:`carewall.policy.engine.Engine.context` builds from the request-wide
facts, one subject combination and the number of people. Nothing else is read: no clock
(a court order is a boolean fact; retirement is part of the register's content).

So a decision is cached under

- the *generation*: the policy hash and the register's fingerprint (every active
  organisation's id and function, which is exactly what the Cedar entities hold); a new
  policy or a changed register is a new generation, and the old entries are dropped;
- every field of :class:`~carewall.policy.facts.RequestFacts` except ``categories`` (taken
  from the dataclass's fields, so a fact added later is keyed on without a change here),
  the number of people, the subject's facts and the category.

Only clean answers are kept: an evaluation that reported any error is never cached, so a
transient evaluator failure is retried, and a refusal for an error is never replayed.
Entries hold the generation in their key, so a thread deciding under an older register
can never read an answer computed under a newer one (or the reverse). They are held by
(request key, subject facts), each a row of answers by category, so a request's key is
hashed once per subject combination rather than once per category.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Mapping, Sequence
from dataclasses import fields
from operator import attrgetter
from typing import TYPE_CHECKING, Final

from carewall.policy.facts import RequestFacts, SubjectFacts

if TYPE_CHECKING:
    from carewall.policy.decision import CategoryDecision
    from carewall.policy.register import Register

__all__ = ["DecisionCache", "register_fingerprint"]

_FACT_FIELDS: Final = tuple(f.name for f in fields(RequestFacts) if f.name != "categories")
# Those fields' values as one tuple, in order (attrgetter gives a tuple for two or more).
_FACT_VALUES: Final = attrgetter(*_FACT_FIELDS)
if len(_FACT_FIELDS) < 2:  # pragma: no cover - a guard for whoever trims RequestFacts
    raise RuntimeError("request_key expects at least two request-wide facts")

RequestKey = tuple[object, ...]
RowKey = tuple[RequestKey, SubjectFacts]
# A frozenset keeps its hash once computed, so a generation is found again cheaply.
Fingerprint = frozenset[tuple[str, str]]

# The last register fingerprinted, and its fingerprint: a Register is immutable once built
# (compared by identity), so its fingerprint never changes.
_last_fingerprint: tuple[Register, Fingerprint] | None = None


def register_fingerprint(register: Register) -> Fingerprint:
    """What the Cedar entities are built from: each active organisation's id and function."""
    global _last_fingerprint
    last = _last_fingerprint
    if last is not None and last[0] is register:
        return last[1]
    fingerprint = frozenset((o.id, o.function) for o in register.organisations.values())
    _last_fingerprint = (register, fingerprint)
    return fingerprint


class DecisionCache:
    """Per-category decisions for one or more generations of (policy, register).

    ``max_entries`` bounds memory: when a row's answers would take the count of answers
    held past it, the cache starts again, empty (the count is exact for one thread and may
    drift a little under concurrent puts; each fresh start sets it right).
    """

    def __init__(self, max_entries: int = 200_000) -> None:
        self.max_entries = max_entries
        self._rows: dict[RowKey, Mapping[str, CategoryDecision]] = {}
        self._size = 0  # answers held, over all rows
        self._generations: dict[tuple[str, Fingerprint], int] = {}
        self._last: tuple[str, Register, int] | None = None
        self._lock = threading.Lock()
        self._counter = itertools.count(1)
        self.hits = 0
        self.misses = 0

    def generation(self, policy_hash: str, register: Register) -> int:
        """A small number naming (policy, register contents); a new one drops older entries.

        The fingerprint is computed once per register object: a :class:`Register` is
        immutable once built (the engine's entity handle relies on the same).
        """
        last = self._last
        if last is not None and last[1] is register and last[0] == policy_hash:
            return last[2]
        key = (policy_hash, register_fingerprint(register))
        with self._lock:
            gen = self._generations.get(key)
            if gen is None:
                gen = next(self._counter)
                self._generations = {key: gen}
                self._rows = {}  # older generations can never be read again
                self._size = 0
            self._last = (policy_hash, register, gen)
        return gen

    def request_key(self, generation: int, facts: RequestFacts, count: int) -> RequestKey:
        """The key of everything request-wide a decision reads."""
        return (generation, count, _FACT_VALUES(facts))

    def lookup(
        self, request: RequestKey, subject: SubjectFacts, categories: Sequence[str]
    ) -> list[CategoryDecision | None] | None:
        """The answers held for one subject combination of a request, in ``categories``'
        order (None where not held), or None when nothing is held for it."""
        row = self._rows.get((request, subject))
        if row is None:
            self.misses += len(categories)
            return None
        found = [row.get(c) for c in categories]
        missing = sum(1 for d in found if d is None)
        self.misses += missing
        self.hits += len(found) - missing
        return found

    def put(
        self, request: RequestKey, subject: SubjectFacts, answers: Mapping[str, CategoryDecision]
    ) -> None:
        """Keep ``answers`` (by category) for one subject combination of a request.

        ``answers`` is kept as given, not copied: the caller hands it over and never changes
        it afterwards.
        """
        key = (request, subject)
        rows = self._rows
        if self._size + len(answers) > self.max_entries:
            rows = self._rows = {}
            self._size = 0
        held = rows.get(key)
        if held is None:
            rows[key] = answers
            self._size += len(answers)
        else:  # a new row, never a change to one another thread may be reading
            merged = {**held, **answers}
            rows[key] = merged
            self._size += len(merged) - len(held)

    def clear(self) -> None:
        with self._lock:
            self._rows = {}
            self._size = 0
            self._generations = {}
            self._last = None
