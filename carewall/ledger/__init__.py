"""The public append-only ledger: an RFC 9162 Merkle log with C2SP signed checkpoints.

Stages as in transparency-dev/tessera: sequence + integrate (:mod:`.sequencer`, one
transaction), publish (:mod:`.publisher`), serve (:mod:`.proofs`, read-only) and fsck
(:mod:`.verify`). :class:`Ledger` is the facade the service, API and CLI use.
"""

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
