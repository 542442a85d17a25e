"""Checking, on the server, what ``/my-data`` tells a person about the public log.

Two RFC 9162 inclusion proofs, both against the log's signed checkpoint (C2SP
tlog-checkpoint, checked with the log's own verifier key):

1. the release entry at ``release_index`` is in the tree of ``tree_size`` entries, and
   says what the page says (this request, this recipient, these categories);
2. the request entry at ``request_index`` is in that tree, carries ``subjects_root``, and
   the person's commitment is leaf ``subject`` of the tree with that root
   (:func:`carewall.ledger.subjects.verify_subject`).

Each result is True, False (a check was made and failed) or None (nothing to check, e.g.
nothing was released). The page states only what these say: never a check not made.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from carewall.errors import CarewallError
from carewall.ledger.checkpoint import Checkpoint, open_checkpoint
from carewall.ledger.merkle import hash_leaf, verify_inclusion
from carewall.ledger.note import Verifier
from carewall.ledger.subjects import verify_subject
from carewall.service import Service, SubjectView
from carewall.witness.cosignature import WitnessKey, cosigned_by

__all__ = ["LogCheck", "check_view"]


@dataclass(frozen=True)
class LogCheck:
    """What the server checked about a subject's view, and the signed tree it used."""

    signed: bool  # the checkpoint's signature verified with the log's key
    release: bool | None  # the release entry is in the signed tree and matches the view
    subject: bool | None  # the logged request lists this person's commitment
    size: int | None  # the signed tree's size
    root: str | None  # its root, base64 as in the checkpoint
    request_proof: list[str]  # the request entry's inclusion proof (hex), for the page
    witnesses: list[str] = field(default_factory=list)  # the witnesses this log asks
    cosigned_by: list[str] = field(default_factory=list)  # those whose cosignature verified

    @property
    def ok(self) -> bool:
        return self.signed and self.release is not False and self.subject is not False


def _entry(service: Service, index: int) -> tuple[bytes, dict[str, Any]]:
    (raw,) = service.ledger.entries(index, index + 1)
    entry = json.loads(raw)
    if not isinstance(entry, dict):
        raise ValueError("not an entry")
    return raw, entry


def _included(index: int, cp: Checkpoint, raw: bytes, proof: Sequence[str]) -> None:
    verify_inclusion(index, cp.size, hash_leaf(raw), [bytes.fromhex(h) for h in proof], cp.root)


def _release_ok(service: Service, view: SubjectView, cp: Checkpoint) -> bool:
    index = view.release_index
    if index is None or view.tree_size != cp.size or not 0 <= index < cp.size:
        return False
    raw, entry = _entry(service, index)
    _included(index, cp, raw, view.inclusion_proof)
    return (
        entry.get("kind") == "release"
        and entry.get("request") == view.request_id
        and entry.get("recipient") == view.recipient
        and sorted(entry.get("categories") or []) == sorted(view.categories)
    )


def _subject_ok(service: Service, view: SubjectView, cp: Checkpoint) -> tuple[bool, list[str]]:
    index = view.request_index
    if index is None or not view.subjects_root or not 0 <= index < cp.size:
        return False, []
    raw, entry = _entry(service, index)
    proof = [h.hex() for h in service.ledger.inclusion_proof(index, cp.size)]
    _included(index, cp, raw, proof)
    if (
        entry.get("kind") != "request"
        or entry.get("request") != view.request_id
        or entry.get("subjects_root") != view.subjects_root
    ):
        return False, proof
    verify_subject(
        view.commitment, view.subject, view.subject_count, view.subject_path, view.subjects_root
    )
    return True, proof


def check_view(
    service: Service, view: SubjectView, witnesses: Sequence[WitnessKey] = ()
) -> LogCheck:
    """Check ``view`` against the log's signed checkpoint; a failure is False, never raised.

    ``witnesses`` are the independent witnesses this log asks to cosign (C2SP
    tlog-cosignature): the check names those whose cosignature on the checkpoint verifies.
    """
    note = view.checkpoint or service.ledger.checkpoint()
    try:
        cp = open_checkpoint(note, [Verifier.from_vkey(service.ledger.verifier_key)])
    except (CarewallError, ValueError):
        return LogCheck(False, None, None, None, None, [])
    release: bool | None = None
    if view.release_index is not None:
        try:
            release = _release_ok(service, view, cp)
        except (CarewallError, ValueError):
            release = False
    subject: bool | None = None
    request_proof: list[str] = []
    if view.request_index is not None or view.subjects_root:
        try:
            subject, request_proof = _subject_ok(service, view, cp)
        except (CarewallError, ValueError):
            subject = False
    root = base64.b64encode(cp.root).decode("ascii")
    names = [w.name for w in witnesses]
    cosigned = sorted(cosigned_by(note, witnesses).values())
    return LogCheck(True, release, subject, cp.size, root, request_proof, names, cosigned)
