"""The lines ``carewall ledger append`` reads, checked as canonical entries, a batch at a time.

Checking a line (proving it RFC 8785 canonical, or canonicalising it, and checking it is an
entry) is about as much work as appending it, and both are Python on the CPU, so a thread
cannot overlap them. Where it can (Linux, and a process with no other thread yet, so no
lock is copied held), a forked child reads and checks the input while this process writes:
it sends each checked batch through a pipe, at most one batch ahead of the writer, and
stops at the first bad line, sending the error in its place. Elsewhere the same checks run
here, batch by batch. Either way a batch reaches the writer only whole and checked.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Iterator
from multiprocessing.connection import Connection
from typing import IO

from carewall.errors import CarewallError, InputError
from carewall.ledger import check_entry, encode_entry
from carewall.ledger.canonical import CanonicalError, fast_canonical, parse_entry
from carewall.ledger.log import MAX_ENTRY_BYTES

__all__ = ["checked_batches", "entry_bytes", "read_batches"]

Batch = tuple[int, list[bytes]]  # the number of the first line after it, its entries


def entry_bytes(raw: bytes, where: str) -> bytes:
    """One line's canonical entry bytes: the line itself when it already is canonical."""
    try:
        obj = fast_canonical(raw) if len(raw) <= MAX_ENTRY_BYTES else None
    except CanonicalError:
        obj = None  # encode_entry below says what is wrong, in the CLI's words
    if obj is None:  # not provably canonical as written: parse strictly, canonicalise
        return encode_entry(parse_entry(raw), where)
    check_entry(obj, where)
    return raw


def read_batches(source: IO[bytes], size: int) -> Iterator[Batch]:
    """Lines of ``source`` as canonical entries, ``size`` at a time (0: all at once), each
    batch with the number of the first line after it. A bad line raises before its batch
    is yielded.
    """
    datas: list[bytes] = []
    number = 0
    for number, raw in enumerate(source, start=1):
        if not raw.strip():
            continue
        where = f"line {number}"
        try:
            datas.append(entry_bytes(raw.rstrip(b"\n"), where))
        except InputError as e:
            field = e.field if e.field and e.field.startswith(where) else where
            raise InputError(e.message, field=field, fix=e.fix) from e
        if len(datas) == size:
            yield number + 1, datas
            datas = []
    if datas:
        yield number + 1, datas


def checked_batches(source: IO[bytes], size: int) -> Iterator[Batch]:
    """:func:`read_batches`, checked by a forked child where that is safe (see above).

    The child reads its own duplicate of the source's file descriptor (multiprocessing
    closes standard input in a child); a source without one (a test's bytes) is read here.
    """
    try:
        fd = source.fileno()
    except (OSError, ValueError):  # io.UnsupportedOperation is both
        fd = None
    fork = "fork" in multiprocessing.get_all_start_methods()
    if fd is None or not fork or threading.active_count() > 1:
        return read_batches(source, size)
    return _from_child(os.dup(fd), size)


def _from_child(fd: int, size: int) -> Iterator[Batch]:
    ctx = multiprocessing.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=check_in_child, args=(fd, size, send), name="ledger-append-check")
    try:
        child.start()  # from here on only the child reads the source
    finally:
        os.close(fd)
        send.close()
    try:
        while True:
            try:
                message = receive.recv()
            except EOFError:
                raise CarewallError(
                    "the process checking the input stopped before the end of it",
                    fix="append again from the line the error names, or with --batch 0",
                ) from None
            kind = message[0]
            if kind == "end":
                return
            if kind == "error":
                raise InputError(message[1], field=message[2], fix=message[3])
            if kind == "failed":
                raise CarewallError(f"reading the input failed: {message[1]}")
            yield message[1], message[2]
    finally:
        receive.close()
        child.join(timeout=5)
        if child.is_alive():  # the writer stopped early (an error): the rest is not needed
            child.kill()
            child.join()


def check_in_child(fd: int, size: int, send: Connection) -> None:
    """The child's side: every checked batch, then "end"; or the first error instead."""
    try:
        with os.fdopen(fd, "rb") as source:
            for after, datas in read_batches(source, size):
                send.send(("batch", after, datas))
        send.send(("end",))
    except InputError as e:
        send.send(("error", e.message, e.field, e.fix))
    except BrokenPipeError:
        pass  # the writer has stopped and closed its end: nothing more is wanted
    except Exception as e:  # a read error: say what kind, never the input's content
        send.send(("failed", type(e).__name__))
    finally:
        send.close()
