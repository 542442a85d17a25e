"""The published statistics, checked against the log the auditor has just verified.

After the entries up to the signed checkpoint of size N are verified and replayed, the
auditor fetches ``<URL>/statistics.json?size=N`` and compares it, figure by figure, with
the statistics it computed itself over the same entries (:mod:`carewall.statistics`, fed
by the replay). Every difference is a finding naming the figure. Fail closed: every
contract v2 instance publishes its statistics, so a 404, a malformed document or any
status but 200 is a finding too; only a network error, a 5xx or a 429 means "try again"
(:class:`~carewall.audit.fetch.FetchError`). ``carewall audit --no-statistics`` skips this
for the log of other software that serves ``/log/`` alone.

The same figures are published in two more forms that people read, and a server that
told the auditor the truth at ``?size=N`` could lie in them: so ``/statistics.csv?size=N``
must be exactly the CSV of the auditor's own figures, and ``/statistics.json`` without a
size (what the pages and most readers fetch) must match them whenever it covers the same
checkpoint (if the log has grown meanwhile it covers another, and is not compared). A
server can still tell an auditor from a reader in other ways; this closes the cheap lie.

Findings stand at index N (the checkpoint's size), as an open transaction at the end does,
and hold field names, ids and counts only: never text from the server.

The audit fetches these documents while it reads and replays the entries
(:class:`Prefetch`), once the signed checkpoint says which size to ask for; the check still
reads them in its order, only those it would have fetched, and meets a failed fetch as an
error at the document it failed for, after the entries are verified: as if fetched then.
"""

from __future__ import annotations

import csv
import json
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import httpx

from carewall.audit.fetch import get_beside, log_base
from carewall.statistics import Statistics, StatisticsError

if TYPE_CHECKING:
    from carewall.audit.replay import Replay

__all__ = ["MAX_BYTES", "Prefetch", "check_statistics", "differences", "statistics_url"]

MAX_BYTES = 16 << 20  # far above any instance's statistics; a larger body is refused
MAX_LISTED = 20  # differing figures named one by one
KIND = "statistics"


def statistics_url(url: str) -> str:
    """``/statistics.json`` beside the log at ``url`` (the server's base URL or its /log)."""
    return log_base(url).removesuffix("/log") + "/statistics.json"


def _csv_url(url: str) -> str:
    return url.removesuffix(".json") + ".csv"


def differences(computed: Statistics, published: Statistics) -> list[str]:
    """How ``published`` differs from ``computed``, one figure per line (ids and counts)."""
    out = []
    if published.origin != computed.origin:
        out.append("its origin is not the log's")
    if published.size != computed.size:
        out.append(f"it covers size {published.size}, not {computed.size}")
    for (name, mine), (_, theirs) in zip(computed.figures(), published.figures(), strict=True):
        if mine != theirs:
            out.append(f"firewall figure {name} is {theirs} published but {mine} in the log")
    for (name, mine), (_, theirs) in zip(computed.agreements, published.agreements, strict=True):
        if mine != theirs:
            out.append(f"agreements figure {name} is {theirs} published but {mine} in the log")
    for (d, mine_rows), (_, their_rows) in zip(computed.tables, published.tables, strict=True):
        mine_map, theirs_map = dict(mine_rows), dict(their_rows)
        for key in dict.fromkeys([*mine_map, *theirs_map]):
            in_log, published_n = mine_map.get(key), theirs_map.get(key)
            if published_n is None:
                out.append(f"{d} {key!r} ({in_log} in the log) is not published")
            elif in_log is None:
                out.append(f"{d} {key!r} is published ({published_n}) but not in the log")
            elif in_log != published_n:
                out.append(f"{d} {key!r} is {published_n} published but {in_log} in the log")
        if mine_map == theirs_map and mine_rows != their_rows:
            out.append(f"table {d} lists its rows in another order than the definition's")
    return out


_Got = tuple[int, bytes | None]
_Fetch = Callable[[httpx.Client, str], _Got]


def _fetch(client: httpx.Client, url: str) -> _Got:
    """The status and (for a 200 within MAX_BYTES) the body; FetchError to try again."""
    what = "/" + url.rsplit("/", 1)[-1].split("?", 1)[0]
    return get_beside(client, url, MAX_BYTES, what)


class Prefetch:
    """The documents :func:`check_statistics` reads for ``size``, fetched with ``client``
    in a thread from :meth:`start` on (while the entries are read and replayed), in the
    order the check reads them.

    The check then reads each from here instead of fetching it: the same answer, the same
    findings. A fetch that failed here (a :class:`FetchError`, or anything else) stops the
    thread and is raised when the check reads that document, after every document before
    it, as fetching it then would have raised it; a document the thread did not fetch is
    fetched then. :meth:`close` (joining the thread) before ``client`` is closed, however
    the audit ends: an audit that ends early has fetched for nothing, and reports nothing.
    """

    def __init__(self, client: httpx.Client, url: str, size: int) -> None:
        self._urls = (f"{url}?size={size}", url, f"{_csv_url(url)}?size={size}")
        self._got: dict[str, _Got | Exception] = {}
        self._thread = threading.Thread(
            target=self._run, args=(client,), name="audit-statistics", daemon=True
        )

    def start(self) -> None:
        """Begin fetching (never before a fork: a process forked then would copy a thread's
        half-held locks)."""
        self._thread.start()

    def _run(self, client: httpx.Client) -> None:
        for url in self._urls:
            try:
                self._got[url] = _fetch(client, url)
            except Exception as e:  # raised when the check reads this document
                self._got[url] = e
                return

    def fetch(self, client: httpx.Client, url: str) -> _Got:
        """What fetching ``url`` with ``client`` now would answer (each document once)."""
        self.close()
        got = self._got.pop(url, None)
        if got is None:
            return _fetch(client, url)
        if isinstance(got, Exception):
            raise got
        return got

    def close(self) -> None:
        if self._thread.ident is not None:
            self._thread.join()


def _published(
    rp: Replay,
    fetch: _Fetch,
    client: httpx.Client,
    url: str,
    size: int,
    *,
    sized: bool = True,
) -> Statistics | None:
    status, body = fetch(client, f"{url}?size={size}" if sized else url)
    where = f"/statistics.json?size={size}" if sized else "/statistics.json (no size)"
    if status == 404:
        rp.find(
            size,
            KIND,
            f"{where} is not published (HTTP 404); every carewall instance publishes its "
            "statistics (pass --no-statistics only for a log of other software)",
        )
        return None
    if status != 200:
        rp.find(size, KIND, f"{where} answered HTTP {status}")
        return None
    if body is None:
        rp.find(size, KIND, f"{where} is over {MAX_BYTES:,} bytes")
        return None
    try:
        return Statistics.from_json(json.loads(body))
    except (ValueError, RecursionError) as e:
        why = str(e) if isinstance(e, StatisticsError) else "it is not JSON"
        rp.find(size, KIND, f"{where} is malformed: {why}")
        return None


def check_statistics(
    rp: Replay,
    client: httpx.Client,
    url: str,
    origin: str,
    size: int,
    *,
    prefetch: Prefetch | None = None,
) -> bool:
    """Compare the statistics published at ``url`` for ``size`` with the replay's own.

    Every problem is a finding recorded on ``rp``; True when the published statistics
    match the log exactly. The replay must hold a tally (a state file written before the
    auditor checked statistics holds none: the caller refuses it first). ``prefetch``, if
    given (for the same ``url`` and ``size``), holds the documents fetched already.
    """
    assert rp.tally is not None
    fetch: _Fetch = _fetch if prefetch is None else prefetch.fetch
    computed = rp.tally.result(origin, size)
    published = _published(rp, fetch, client, url, size)
    if published is None:
        return False
    found = _report(rp, size, "the published statistics", differences(computed, published))
    latest = _published(rp, fetch, client, url, size, sized=False)
    if latest is None:
        found = True
    elif latest.size == size:  # the same checkpoint: the same figures
        where = "the latest statistics (/statistics.json with no size)"
        found = _report(rp, size, where, differences(computed, latest)) or found
    return _check_csv(rp, fetch, client, url, size, computed) and not found


def _report(rp: Replay, size: int, what: str, found: list[str]) -> bool:
    """Record ``found`` as findings about ``what``; True when there is any."""
    for line in found[:MAX_LISTED]:
        rp.find(size, KIND, f"{what} differ from the log: {line}")
    if len(found) > MAX_LISTED:
        rp.find(size, KIND, f"… and {len(found) - MAX_LISTED:,} more differing figures")
    return bool(found)


def _check_csv(
    rp: Replay, fetch: _Fetch, client: httpx.Client, url: str, size: int, computed: Statistics
) -> bool:
    """``/statistics.csv?size=N`` is exactly the CSV of the figures computed from the log."""
    where = f"/statistics.csv?size={size}"
    status, body = fetch(client, f"{_csv_url(url)}?size={size}")
    if status != 200 or body is None:
        why = f"answered HTTP {status}" if status != 200 else f"is over {MAX_BYTES:,} bytes"
        rp.find(size, KIND, f"{where} {why}; every carewall instance publishes it")
        return False
    want = computed.to_csv().encode()
    if body == want:
        return True
    mine, theirs = want.split(b"\r\n"), body.split(b"\r\n")
    at = next(
        (i for i, (a, b) in enumerate(zip(mine, theirs, strict=False)) if a != b),
        min(len(mine), len(theirs)),
    )
    # Name the row by the auditor's own copy of it (ids and counts), never the server's text.
    row = next(csv.reader([mine[at].decode()])) if at < len(mine) and mine[at] else []
    named = f"row {at + 1} ({row[2]} {row[3]!r})" if len(row) == 5 else f"row {at + 1}"
    rp.find(size, KIND, f"{where} differs from the log's figures, first at {named}")
    return False
