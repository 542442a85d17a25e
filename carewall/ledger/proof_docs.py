"""Public JSON proof documents: one shape for `/log/proof/…` and `carewall ledger proof`.

Hashes are standard base64, as in C2SP checkpoints. Callers validate the parameters (so their
errors can name their own field spelling) before asking for a document.
"""

from __future__ import annotations

import base64
from typing import Any

from carewall.ledger.log import Ledger

__all__ = ["consistency_doc", "inclusion_doc"]


def _b64(h: bytes) -> str:
    return base64.b64encode(h).decode("ascii")


def inclusion_doc(ledger: Ledger, index: int, size: int) -> dict[str, Any]:
    """``{"index", "size", "root", "proof"}``: entry ``index`` is in the tree of ``size``."""
    proof = ledger.inclusion_proof(index, size)
    return {
        "index": index,
        "size": size,
        "root": _b64(ledger.root(size)),
        "proof": [_b64(h) for h in proof],
    }


def consistency_doc(ledger: Ledger, m: int, n: int) -> dict[str, Any]:
    """``{"from", "size", "root_from", "root", "proof"}``: tree ``m`` is a prefix of tree ``n``."""
    proof = ledger.consistency_proof(m, n)
    return {
        "from": m,
        "size": n,
        "root_from": _b64(ledger.root(m)),
        "root": _b64(ledger.root(n)),
        "proof": [_b64(h) for h in proof],
    }
