"""The lines ``carewall ledger append`` reads, checked as canonical entries, a batch at a time.

A line already in RFC 8785 form is kept as written (proven by the fast path of
:mod:`carewall.ledger.canonical`); any other is parsed strictly and canonicalised. A batch
reaches the writer only whole and checked.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO

from carewall.errors import InputError
from carewall.ledger import check_entry, encode_entry
from carewall.ledger.canonical import CanonicalError, fast_canonical, parse_entry
from carewall.ledger.log import MAX_ENTRY_BYTES

__all__ = ["Batch", "entry_bytes", "read_batches"]

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
