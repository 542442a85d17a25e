"""C2SP tlog-witness ``add-checkpoint`` wire format: request bodies and answers.

Spec: https://c2sp.org/tlog-witness — the request body is ``old <size>\\n``, at most 63
base64 consistency-proof lines, an empty line, then the signed checkpoint note; every line
ends in ``\\n`` (never CRLF). A 200 answer is one or more note signature lines; a 409 answer
is the witness's latest cosigned size and ``\\n``, with content type ``text/x.tlog.size``.
Pure: parsing and formatting only.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass

from carewall.errors import InputError
from carewall.ledger.note import Signature, parse_note
from carewall.types import HASH_SIZE

__all__ = [
    "MAX_BODY",
    "MAX_PROOF",
    "SIZE_TYPE",
    "AddCheckpoint",
    "format_add_checkpoint",
    "format_size",
    "parse_add_checkpoint",
    "parse_cosignatures",
    "parse_size",
]

MAX_PROOF = 63
MAX_BODY = 64 * 1024  # proof lines (63 x 45 bytes) plus a checkpoint with many signatures
SIZE_TYPE = "text/x.tlog.size"
_MAX_SIZE = 2**64 - 1


@dataclass(frozen=True)
class AddCheckpoint:
    old_size: int
    proof: tuple[bytes, ...]
    note: str


def _decimal(text: str, field: str) -> int:
    if not text.isascii() or not text.isdigit() or (text.startswith("0") and text != "0"):
        raise InputError(
            "must be a decimal number without sign or leading zeros",
            field=field,
            fix="e.g. old 0",
        )
    value = int(text)
    if value > _MAX_SIZE:
        raise InputError("does not fit in 64 bits", field=field)
    return value


def parse_add_checkpoint(body: bytes) -> AddCheckpoint:
    """Parse an add-checkpoint body strictly; InputError names the line at fault.

    The note is only split off here; its syntax and signatures are checked by the caller.
    """
    if len(body) > MAX_BODY:
        raise InputError(f"the body is over {MAX_BODY} bytes", field="body")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError("the body is not UTF-8", field="body") from e
    if "\r" in text:
        raise InputError("lines must end in \\n, not \\r\\n", field="body")
    head, sep, note = text.partition("\n\n")
    if not sep:
        raise InputError(
            "no empty line before the checkpoint",
            field="body",
            fix="send old <size>, the proof lines, an empty line, then the checkpoint",
        )
    lines = head.split("\n")
    first = lines[0]
    if not first.startswith("old "):
        raise InputError("the first line must be 'old <size>'", field="old")
    old = _decimal(first[4:], "old")
    if len(lines) - 1 > MAX_PROOF:
        raise InputError(f"more than {MAX_PROOF} consistency proof lines", field="proof")
    proof: list[bytes] = []
    for i, line in enumerate(lines[1:]):
        try:
            h = base64.b64decode(line.encode("ascii"), validate=True)
        except (binascii.Error, ValueError, UnicodeEncodeError) as e:
            raise InputError("not a base64 hash", field=f"proof[{i}]") from e
        if len(h) != HASH_SIZE:
            raise InputError(f"a proof hash must be {HASH_SIZE} bytes", field=f"proof[{i}]")
        proof.append(h)
    if not note:
        raise InputError("the checkpoint is missing", field="checkpoint")
    return AddCheckpoint(old, tuple(proof), note)


def format_add_checkpoint(old_size: int, proof: Sequence[bytes], note: str) -> bytes:
    if len(proof) > MAX_PROOF:
        raise InputError(f"more than {MAX_PROOF} consistency proof lines", field="proof")
    lines = [f"old {old_size}\n"] + [base64.b64encode(h).decode() + "\n" for h in proof]
    return ("".join(lines) + "\n" + note).encode()


def format_size(size: int) -> bytes:
    return f"{size}\n".encode()


def parse_size(body: bytes) -> int:
    """The witness's size from a 409 answer."""
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError as e:
        raise InputError("the conflict answer is not ASCII", field="size") from e
    if not text.endswith("\n"):
        raise InputError("the conflict answer must end in a newline", field="size")
    return _decimal(text[:-1], "size")


def parse_cosignatures(body: bytes, checkpoint_body: str) -> list[Signature]:
    """The signature lines of a 200 answer (syntax only; verify each against its key)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError("the cosignature answer is not UTF-8", field="cosignatures") from e
    if not text.startswith("\u2014 "):
        raise InputError("the answer holds no signature lines", field="cosignatures")
    try:
        return parse_note(checkpoint_body + "\n" + text).signatures
    except Exception as e:  # the note parser's own error types, for a malformed line
        raise InputError("the answer's signature lines are malformed", field="cosignatures") from e
