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
can never read an answer computed under a newer one (or the reverse).
"""

from __future__ import annotations

import itertools
import threading
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
EntryKey = tuple[RequestKey, SubjectFacts, str]


def register_fingerprint(register: Register) -> tuple[tuple[str, str], ...]:
    """What the Cedar entities are built from: each active organisation's id and function."""
    return tuple(sorted((o.id, o.function) for o in register.organisations.values()))


class DecisionCache:
    """Per-category decisions for one or more generations of (policy, register).

    ``max_entries`` bounds memory: when it is reached the cache starts again, empty.
    """

    def __init__(self, max_entries: int = 200_000) -> None:
        self.max_entries = max_entries
        self._entries: dict[EntryKey, CategoryDecision] = {}
        self._generations: dict[tuple[str, tuple[tuple[str, str], ...]], int] = {}
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
                self._entries = {}  # older generations can never be read again
            self._last = (policy_hash, register, gen)
        return gen

    def request_key(self, generation: int, facts: RequestFacts, count: int) -> RequestKey:
        """The key of everything request-wide a decision reads."""
        return (generation, count, *_FACT_VALUES(facts))

    def get(self, key: EntryKey) -> CategoryDecision | None:
        found = self._entries.get(key)
        if found is None:
            self.misses += 1
        else:
            self.hits += 1
        return found

    def put(self, key: EntryKey, decision: CategoryDecision) -> None:
        entries = self._entries
        if len(entries) >= self.max_entries:
            entries = self._entries = {}
        entries[key] = decision

    def clear(self) -> None:
        with self._lock:
            self._entries = {}
            self._generations = {}
            self._last = None
