"""Two processes for one audit: a forked reader fetches, hashes and checks shapes while this
process replays.

The replay (:class:`carewall.audit.replay.Replay`) is sequential and CPU-bound, and CPython
runs it on one core. What each entry needs on its own is done beside it by a reader, a
child forked from this process (so it starts with every module loaded and with a copy of
the compact range the audit continues from):

1. fetch the entry bundles (:func:`carewall.audit.fetch.entry_bundles`, prefetched);
2. hash each entry into its copy of the compact range (RFC 9162 leaf hashes);
3. check each entry's bytes and shape (:func:`carewall.audit.shape.check_shape`);
4. count each entry it accepted in its copy of the public statistics' tally
   (:class:`carewall.statistics.Tally`, which reads nothing the replay decides).

It sends each bundle's leaf hashes, verdicts and the entries it accepted, as the objects
the check decoded (MessagePack keeps JSON's types apart: str, int, bool, null, list, map),
over a pipe. This process hands them to the replay in order, and at the end takes
the reader's compact range and tally, whose root it then checks against the signed checkpoint as
before. Nothing is trusted more than in one process: the reader is this program's own
code, and the root is still checked here.

Errors keep their meaning: a FetchError or VerificationError in the reader is raised here
when its bundle is due, after every bundle before it; any other exception as a RuntimeError
naming its type alone (never its message, which could quote an entry). Only where
``os.fork`` exists (Linux, macOS); :func:`carewall.audit.run.audit_log` falls back to one
process elsewhere.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import multiprocessing
import multiprocessing.connection
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import msgspec

from carewall.audit.fetch import TILE_WIDTH, FetchError, entry_bundles, prefetched
from carewall.audit.shape import ShapeError, check_shape
from carewall.errors import CarewallError, InputError, VerificationError
from carewall.ledger.merkle import CompactRange
from carewall.statistics import StatisticsError, Tally

__all__ = ["Checked", "Reader", "extend", "leaf_hashes"]

_TILE_LEVEL = TILE_WIDTH.bit_length() - 1  # a full entry bundle is a perfect subtree of 2**8
_PIPE_BYTES = 1 << 20  # lets the reader run a few bundles ahead (Linux's default is 64 KiB)
_ERRORS: dict[str, type[CarewallError]] = {
    c.__name__: c for c in (FetchError, VerificationError, InputError)
}


def leaf_hashes(bundle: list[bytes]) -> list[bytes]:
    # RFC 9162 leaf hashes (merkle.hash_leaf, inlined: one call per entry is a third of it).
    sha = hashlib.sha256
    return [sha(b"\x00" + data).digest() for data in bundle]


def extend(crange: CompactRange, leaves: list[bytes]) -> None:
    """Append ``leaves`` to ``crange``; a whole aligned tile as one perfect subtree."""
    if len(leaves) != TILE_WIDTH or crange.size % TILE_WIDTH:
        crange.extend(leaves, collect=False)
        return
    sha = hashlib.sha256
    level = leaves
    while len(level) > 1:  # 256 leaves: 8 levels of pairs, each hashed as RFC 9162 §2.1.1
        it = iter(level)
        level = [sha(b"\x01" + left + right).digest() for left, right in zip(it, it, strict=True)]
    crange.append_subtree(_TILE_LEVEL, level[0])


@dataclass(frozen=True)
class Checked:
    """One bundle as the reader read it: its entries, their leaf hashes, the verdicts."""

    first: int  # the index of the first entry
    entries: list[dict[str, Any] | None]  # each entry the check accepted, decoded; else None
    leaves: bytes  # 32 bytes an entry
    verdicts: list[tuple[str, str] | None]  # None: accepted; else (kind, message)
    uncounted: list[str | None] | None  # why an entry cannot be counted, if any cannot


def _checked(bundle: list[bytes]) -> tuple[list[Any], list[tuple[str, str] | None]]:
    """Each entry of ``bundle`` decoded if its shape is right (else None), and the verdicts."""
    entries: list[dict[str, Any] | None] = []
    verdicts: list[tuple[str, str] | None] = []
    for data in bundle:
        try:
            entries.append(check_shape(data))
            verdicts.append(None)
        except ShapeError as e:
            entries.append(None)
            verdicts.append((e.kind, e.message))
    return entries, verdicts


def _count(tally: Tally, entries: list[dict[str, Any] | None]) -> list[str | None] | None:
    """Count the accepted ``entries``; why each that could not be counted was not (or None
    when all were)."""
    why: list[str | None] | None = None
    for k, entry in enumerate(entries):
        if entry is None:
            continue
        try:
            tally.feed(entry)
        except StatisticsError as e:
            why = why or [None] * len(entries)
            why[k] = str(e)
    return why


def _read(
    out: multiprocessing.connection.Connection,
    connect: Callable[[], httpx.Client],
    crange: CompactRange,
    tally: Tally | None,
    span: tuple[int, int],
) -> None:
    """The reader's whole life: every bundle, then the compact range and tally (or the
    error)."""
    encode = msgspec.msgpack.Encoder().encode
    start, size = span
    try:
        with connect() as client:
            for first, bundle in prefetched(entry_bundles(client, start, size)):
                leaves = leaf_hashes(bundle)
                extend(crange, leaves)
                entries, verdicts = _checked(bundle)
                uncounted = None if tally is None else _count(tally, entries)
                bundled = ("bundle", first, entries, b"".join(leaves), verdicts, uncounted)
                out.send_bytes(encode(bundled))
        counts = None if tally is None else tally.to_json()
        out.send_bytes(encode(("end", crange.size, list(crange.frontier()), counts)))
    except BaseException as e:  # told to the auditor, raised there when its turn comes
        # Any other exception is named by its type alone: its message (a library's) could
        # quote what it was handed, an entry's value, and the auditor's output is public.
        text = e.message if isinstance(e, CarewallError) else type(e).__name__
        field = e.field if isinstance(e, CarewallError) else None
        fix = e.fix if isinstance(e, CarewallError) else None
        with contextlib.suppress(OSError):
            out.send_bytes(encode(("error", type(e).__name__, text, field, fix)))
    finally:
        out.close()
        # Straight out, as multiprocessing itself leaves a forked child, but before its
        # clean-up: that flushes this process's copies of stdout and stderr, whose locks a
        # thread of the auditor (a progress bar's) may have held at the fork.
        os._exit(0)


class Reader:
    """The forked reader of entries ``span[0]`` to ``span[1] - 1``, continuing ``crange``
    and ``tally``; iterate it for :class:`Checked` bundles in order, then read
    :attr:`crange` and :attr:`tally`. Use it as a context manager: the reader is stopped
    however the iteration ends."""

    def __init__(
        self,
        connect: Callable[[], httpx.Client],
        crange: CompactRange,
        tally: Tally | None,
        span: tuple[int, int],
    ) -> None:
        ctx = multiprocessing.get_context("fork")
        self._in, out = ctx.Pipe(duplex=False)
        with contextlib.suppress(OSError, AttributeError):  # a larger pipe where allowed
            fcntl.fcntl(out.fileno(), fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
        self._process = ctx.Process(
            target=_read, args=(out, connect, crange, tally, span), name="audit-reader"
        )
        self._process.daemon = True
        self._process.start()
        out.close()  # the reader holds the only writing end: its exit is our EOF
        self.crange: CompactRange | None = None
        self.tally: Tally | None = None  # the reader's, at the end (None if given none)

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._in.close()
        if self._process.is_alive():
            self._process.terminate()
        self._process.join()

    def __iter__(self) -> Iterator[Checked]:
        decode = msgspec.msgpack.Decoder().decode
        while True:
            try:
                message: list[Any] = decode(self._in.recv_bytes())
            except EOFError:
                raise FetchError(
                    "the audit's reader process stopped before the end of the log",
                    fix="run the audit again",
                ) from None
            tag = message[0]
            if tag == "bundle":
                _, first, entries, leaves, verdicts, uncounted = message
                verdicts = [v and (v[0], v[1]) for v in verdicts]
                yield Checked(first, entries, leaves, verdicts, uncounted)
            elif tag == "end":
                _, size, frontier, counts = message
                self.crange = CompactRange(size, frontier)
                self.tally = None if counts is None else Tally.from_json(counts)
                return
            else:
                _, name, text, field, fix = message
                cls = _ERRORS.get(name)
                if cls is None:
                    raise RuntimeError(f"the audit's reader process failed: {text}")
                raise cls(text, field=field, fix=fix)
