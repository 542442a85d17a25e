"""The public append-only ledger: an RFC 9162 Merkle log with C2SP signed checkpoints.

Stages as in transparency-dev/tessera: sequence + integrate (:mod:`.sequencer`, one
transaction), publish (:mod:`.publisher`), serve (:mod:`.proofs`, read-only) and fsck
(:mod:`.verify`). :class:`Ledger` is the facade the service, API and CLI use.

The names below are loaded on first use (PEP 562), so that importing a pure core of the
package (``carewall.ledger.merkle``, ``.checkpoint``, ``.note``, ``.tiles``), as the
outside auditor does, does not import the database layer (SQLAlchemy) with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from carewall.lazy import lazy_attributes

if TYPE_CHECKING:
    from carewall.ledger.keys import create_key, default_key_path, load_key
    from carewall.ledger.log import Ledger, check_entry, check_origin, encode_entry
    from carewall.ledger.verify import Fault, VerifyReport, verify_ledger

__all__ = [
    "Fault",
    "Ledger",
    "VerifyReport",
    "check_entry",
    "check_origin",
    "create_key",
    "default_key_path",
    "encode_entry",
    "load_key",
    "verify_ledger",
]

_HOME = {
    "create_key": "keys",
    "default_key_path": "keys",
    "load_key": "keys",
    "Ledger": "log",
    "check_entry": "log",
    "check_origin": "log",
    "encode_entry": "log",
    "Fault": "verify",
    "VerifyReport": "verify",
    "verify_ledger": "verify",
}


__getattr__ = lazy_attributes(__name__, _HOME)
