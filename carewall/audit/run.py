"""One audit run: verify what the log serves against its signed checkpoint, then replay it.

The entries are read bundle by bundle (the next ones fetched while one is checked:
:func:`carewall.audit.fetch.prefetched`); each is hashed into the compact range and replayed
(:class:`carewall.audit.replay.Replay`) as it arrives. Only when the range rebuilds the
signed root is anything reported or saved, so a finding always names an entry the log
really committed to. With ``statistics=True`` (the CLI's default) the statistics the server
publishes for that checkpoint are then compared with the replay's own
(:mod:`carewall.audit.statistics`; fetched in a thread while the entries are read, and
compared only then). The new state is handed back to be saved only by the caller.
"""

from __future__ import annotations

import functools
import os
import ssl
from collections.abc import Callable, Sequence

import httpx

from carewall import collector
from carewall.audit.aftercare import appeals_open, notices_owed
from carewall.audit.certificates import check_certificates
from carewall.audit.fetch import (
    FetchError,
    check_growth,
    entry_bundles,
    first_bad_leaf,
    log_base,
    open_log_checkpoint,
    prefetched,
    verifier_for,
)
from carewall.audit.pipeline import Reader, extend, leaf_hashes
from carewall.audit.replay import Replay
from carewall.audit.report import AuditReport
from carewall.audit.shape import ShapeError
from carewall.audit.state import AuditState
from carewall.audit.statistics import Prefetch, check_statistics, statistics_url
from carewall.audit.witnesses import check_quorum
from carewall.errors import CarewallError, InputError, VerificationError
from carewall.ledger.merkle import CompactRange
from carewall.ledger.note import Verifier
from carewall.witness.cosignature import WitnessKey

__all__ = ["Progress", "audit_log"]

Progress = Callable[[int, int], None]
_HINT_LIMIT = 32 << 20  # bytes of leaf hashes kept for the hint (about a million entries)
# Below this many new entries one process is quicker than forking a reader (a fork and its
# first bundle cost about what one process replays of a few thousand entries).
_TWO_PROCESSES_FROM = 4096


def audit_log(
    url: str,
    vkey: str,
    state: AuditState | None = None,
    *,
    client: httpx.Client | None = None,
    progress: Progress | None = None,
    replay: bool = True,
    statistics: bool = False,
    witnesses: Sequence[WitnessKey] = (),
    quorum: int = 0,
    parallel: bool | None = None,
    connect: Callable[[], httpx.Client] | None = None,
) -> tuple[AuditReport, AuditState]:
    """Audit the log at ``url`` with verifier key ``vkey``, continuing from ``state``.

    Raises VerificationError when the log misbehaves (bad signature, fork, an entry not
    committed to), FetchError when it cannot be fetched, InputError for a bad key or state.
    Everything wrong with the entries themselves is a finding in the report (``ok`` is
    false) and is carried in the new state, so it is never forgotten. ``replay=False``
    (for measurements) checks signatures, consistency and inclusion only.
    ``statistics=True`` also requires ``/statistics.json`` beside the log to match the
    statistics computed from the replayed log (a replaying run only).
    ``quorum`` > 0 requires that many of ``witnesses`` (distinct keys) to have cosigned
    the checkpoint verified (:mod:`carewall.audit.witnesses`), checked before anything else.

    ``parallel``: a replay runs in two processes (:mod:`carewall.audit.pipeline`) where
    ``os.fork`` exists: always if true, never if false, and by default when it has at least
    :data:`_TWO_PROCESSES_FROM` new entries. The reader process makes its own client with
    ``connect`` (by default one like this function's own; a caller that hands in ``client``
    passes ``connect`` too for two processes: a client's connections must not be shared
    with a forked process). The report and state are the same either way.
    """
    verifier = verifier_for(vkey)
    stats_url = statistics_url(url) if statistics and replay else None
    own = client is None
    base = log_base(url) + "/"
    http = client or httpx.Client(base_url=base, timeout=30.0, verify=_tls())
    if connect is None and own:
        connect = functools.partial(httpx.Client, base_url=base, timeout=30.0, verify=_tls())
    if parallel is False or not hasattr(os, "fork"):
        connect = None
    least = 0 if parallel else _TWO_PROCESSES_FROM
    try:
        with collector.paused():
            return _audit(
                http,
                verifier,
                state,
                progress,
                replay,
                stats_url,
                (witnesses, quorum),
                (connect, least),
            )
    finally:
        if own:
            http.close()


@functools.cache
def _tls() -> ssl.SSLContext:
    """httpx's default TLS settings (verified, the CA bundle), made once per process.

    Loading the CA bundle takes about 30 ms, which every client made its own way would pay
    again; one context serves every client (an SSLContext may be shared between threads).
    """
    return httpx.create_ssl_context()


def _start(state: AuditState | None, replay: bool) -> tuple[CompactRange, Replay | None]:
    if state is None:
        return CompactRange(), Replay() if replay else None
    try:
        crange = CompactRange(state.size, state.frontier)
    except CarewallError as e:
        raise InputError("the audit state file is malformed", field="--state") from e
    if crange.root() != state.root:
        raise InputError(
            "the audit state file does not match its own root",
            field="--state",
            fix="the file was altered; start again with a new --state path",
        )
    if not replay:
        return crange, None
    if state.replay is None and state.size > 0:
        raise InputError(
            "the audit state file holds no replay",
            field="--state",
            fix="start again with a new --state path; the first run replays the whole log",
        )
    try:
        return crange, Replay() if state.replay is None else Replay.from_json(state.replay)
    except (KeyError, TypeError, ValueError) as e:
        raise InputError("the audit state file's replay is malformed", field="--state") from e


def _audit(
    client: httpx.Client,
    verifier: Verifier,
    state: AuditState | None,
    progress: Progress | None,
    replay: bool,
    stats_url: str | None,
    quorum: tuple[Sequence[WitnessKey], int] = ((), 0),
    reader: tuple[Callable[[], httpx.Client] | None, int] = (None, 0),
) -> tuple[AuditReport, AuditState]:
    note, cp = open_log_checkpoint(client, verifier)
    if quorum[1] or quorum[0]:
        check_quorum(note, quorum[0], quorum[1])
    crange, rp = _start(state, replay)
    if stats_url is not None and rp is not None and rp.tally is None:
        raise InputError(
            "the audit state file was written before the auditor checked statistics",
            field="--state",
            fix="start again with a new --state path, or pass --no-statistics",
        )
    start = 0 if state is None else state.size
    if state is not None:
        check_growth(client, state.origin, state.size, state.root, cp)

    report = AuditReport(cp.origin, cp.size, cp.root, previous_size=start, replayed=replay)
    report.earlier_findings = list(state.findings) if state else []
    leaves = bytearray()  # kept only to name the first bad entry if the root fails
    total = cp.size - start
    if progress:
        progress(0, total)
    # The published statistics, fetched while the entries are (compared only after them).
    stats = None
    if stats_url is not None and rp is not None and cp.size > 0:
        stats = Prefetch(client, stats_url, cp.size)
    try:
        connect, least = reader
        if rp is not None and connect is not None and total >= max(least, 1):
            span = (start, cp.size)
            crange = _two_processes(connect, crange, rp, span, report, leaves, progress, stats)
        else:
            if stats is not None:
                stats.start()
            _one_process(client, crange, rp, (start, cp.size), report, leaves, progress)

        if crange.root() != cp.root:
            bad = first_bad_leaf(client, start, bytes(leaves))
            where = f" (first differing entry: {bad})" if bad is not None else ""
            raise VerificationError(
                "the entries served do not rebuild the signed root: an entry was altered "
                f"or left out{where}",
                fix="keep the checkpoint and the served entries as evidence",
            )
        if rp is not None:
            rp.finish(cp.size)
            # each destruction the replay accepted, against the certificate it names
            check_certificates(rp, client, str(client.base_url), verifier)
            if stats_url is not None and cp.size > 0:
                report.statistics_match = check_statistics(
                    rp, client, stats_url, cp.origin, cp.size, prefetch=stats
                )
    finally:
        if stats is not None:
            stats.close()  # done with the client, however the audit ended
    if rp is not None:
        report.findings = list(rp.findings)
        report.totals = rp.totals
        report.notices_owed = notices_owed(rp)
        report.appeals_open = appeals_open(rp)
    else:
        report.totals.entries = cp.size
    new_state = AuditState(
        origin=cp.origin,
        size=cp.size,
        root=cp.root,
        frontier=list(crange.frontier()),
        checkpoint=note,
        findings=report.earlier_findings + report.findings,
        replay=rp.to_json() if rp is not None else None,
    )
    return report, new_state


def _one_process(
    client: httpx.Client,
    crange: CompactRange,
    rp: Replay | None,
    span: tuple[int, int],
    report: AuditReport,
    leaves: bytearray,
    progress: Progress | None,
) -> None:
    """Fetch, hash and replay entries ``span[0]`` to ``span[1] - 1`` in this process."""
    total = span[1] - span[0]
    for first, bundle in prefetched(entry_bundles(client, *span)):
        new_leaves = leaf_hashes(bundle)
        if rp is not None:
            for i, data in enumerate(bundle, first):
                rp.feed(i, data)
        extend(crange, new_leaves)
        report.checked += len(bundle)
        if len(leaves) < _HINT_LIMIT:
            leaves += b"".join(new_leaves)
        if progress:
            progress(report.checked, total)


def _two_processes(
    connect: Callable[[], httpx.Client],
    crange: CompactRange,
    rp: Replay,
    span: tuple[int, int],
    report: AuditReport,
    leaves: bytearray,
    progress: Progress | None,
    stats: Prefetch | None = None,
) -> CompactRange:
    """The same with a forked reader (:mod:`carewall.audit.pipeline`): it fetches, hashes,
    checks shapes and counts the statistics while this process replays. Returns the
    reader's compact range (and puts its tally in the replay). ``stats`` is started once
    the first bundle is in: after the fork, and not in the way of the reader's first fetch."""
    total = span[1] - span[0]
    apply, reject, uncounted = rp.apply, rp.reject, rp.uncounted
    tally, rp.tally = rp.tally, None  # counted by the reader, in its copy
    try:
        with Reader(connect, crange, tally, span) as reader:
            for chunk in reader:
                why = chunk.uncounted
                pairs = zip(chunk.entries, chunk.verdicts, strict=True)
                for k, (entry, verdict) in enumerate(pairs):
                    if entry is None:
                        reject(chunk.first + k, ShapeError(*(verdict or ("?", "was not read"))))
                        continue
                    apply(chunk.first + k, entry)
                    if why is not None and why[k] is not None:
                        uncounted(chunk.first + k, entry["kind"], str(why[k]))
                report.checked += len(chunk.entries)
                if len(leaves) < _HINT_LIMIT:
                    leaves += chunk.leaves
                if progress:
                    progress(report.checked, total)
                if stats is not None:
                    stats.start()
                    stats = None
    finally:
        rp.tally = tally
    if reader.crange is None or (tally is not None and reader.tally is None):
        # the reader ended without its range or tally: never trust a partial one
        raise FetchError("the audit's reader process ended early", fix="run the audit again")
    rp.tally = reader.tally
    return reader.crange
