"""Many submits recorded together: each decided at once, all written in one transaction.

For a caller that has many requests in hand at once (a backlog imported, the demo's year):
:meth:`SubmitBatch.submit` parses and decides a request and hands back its id and outcome
straight away; :meth:`SubmitBatch.flush` (and the end of the ``with`` block) records every
request not yet recorded, with its decision, in one transaction, in the order they were
submitted. Each keeps its own time, as if it had been submitted alone; only the commits are
shared.

All or nothing per flush: when the transaction fails, none of its requests is recorded and
the error is raised (:attr:`SubmitBatch.recorded` says how many were before it). If the
policy or the register changed since they were decided (another process changed them),
none is recorded: a ConflictError says to submit them again. A request that cannot share a
transaction (its holder's first, whose key the transaction creates, or one of more than 32
subjects) is recorded on its own at once, after everything submitted before it, so the log
keeps the order of submission.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from carewall.errors import ConflictError
from carewall.service import submitting

if TYPE_CHECKING:
    from carewall.service.facade import Service

__all__ = ["Pending", "SubmitBatch", "submit_together"]

_MOST = 64  # requests per transaction (as concurrent submits share): it flushes as it goes


@dataclass(frozen=True)
class Pending:
    """A submitted request: its id and the policy's outcome, known before it is recorded."""

    id: str
    outcome: Literal["refused", "review"]


class SubmitBatch:
    """Requests decided one by one and recorded together (see the module's docstring).

    For one thread: concurrent submits in a server share transactions by themselves
    (:mod:`carewall.service.group_commit`)."""

    def __init__(self, svc: Service) -> None:
        self._svc = svc
        self._ready: list[submitting.Ready] = []
        self.recorded = 0  # how many this batch has recorded so far
        self.closed = False  # set when its block ends: nothing more can be submitted

    def submit(self, doc: bytes | str | Mapping[str, Any]) -> Pending:
        """Decide ``doc`` now (InputError as :meth:`Service.submit`); record it at the next
        :meth:`flush`, or now if it cannot share a transaction."""
        if self.closed:
            raise ConflictError(
                "this batch's block has ended; nothing more can be submitted through it",
                fix="open another with Service.submit_together()",
            )
        parsed = submitting.parse(self._svc, doc)
        ready = submitting.prepare(self._svc, parsed)
        if ready is None:
            self.flush()
            alone = submitting.submit(self._svc, doc, None, parsed)
            self.recorded += 1
            return Pending(alone.id, alone.outcome)
        self._ready.append(ready)
        if len(self._ready) >= _MOST:
            self.flush()
        return Pending(ready.request_id, ready.decided.outcome)

    def flush(self) -> None:
        """Record every request submitted and not yet recorded, in one transaction."""
        items, self._ready = self._ready, []
        if not items:
            return
        try:
            submitting.write_batch(self._svc, items)
        except submitting.Stale as e:
            raise ConflictError(
                f"the policy or the register changed while {len(items)} request(s) waited "
                "to be recorded; none of them was recorded",
                fix="submit them again: they are decided under the new policy and register",
            ) from e
        self.recorded += len(items)

    def discard(self) -> int:
        """Drop what is not yet recorded (nothing of it reaches the log); how many."""
        n, self._ready = len(self._ready), []
        return n


@contextmanager
def submit_together(svc: Service) -> Iterator[SubmitBatch]:
    """A :class:`SubmitBatch` flushed when the block ends; if the block raises, what it
    had not yet recorded is dropped, never recorded."""
    batch = SubmitBatch(svc)
    try:
        yield batch
    except BaseException:
        batch.discard()
        raise
    else:
        batch.flush()
    finally:
        batch.closed = True
