"""Preparing claimed notices for delivery: what each letter says, its proofs and its code.

A notice is rendered from its request's facts, the release entry's inclusion proof against
the newest signed checkpoint, the subject's path in the request's subjects tree, and the
subject's access code, derived (:mod:`carewall.service.codes`), so every rendering of the
same notice carries the same code. What a letter said, without its code, is pinned in
``svc_notices.body`` and ``svc_notices.path``; a notice rendered again after that (its
worker died after the letter may have left) is rendered from the pinned data, so it is the
same letter, byte for byte.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from carewall.ledger.subjects import SubjectTree, subjects_root
from carewall.service import tables as t
from carewall.service.codes import CodeMaker, code_maker, hash_code
from carewall.service.notices import Notice, render_notice
from carewall.service.request_record import REQUEST

if TYPE_CHECKING:
    from carewall.service.reading import ReadMixin

__all__ = ["LetterRun", "Prepared", "commitments_of", "subjects_facts"]

# Subject trees kept per delivery run: notices are claimed in id order, and a release
# inserts its notices together, so a run works through one request at a time.
_TREES_KEPT = 4


@dataclass(frozen=True)
class Prepared:
    """One claimed notice, rendered with its code (holds the code: never log it)."""

    notice: Notice
    position: int
    digest: str
    path: list[str]

    def code_row(self) -> dict[str, Any]:
        return {"rid": self.notice.request_id, "pos": self.position, "digest": self.digest}

    def pin_row(self, at: str) -> dict[str, Any]:
        # svc_notices.body keeps what the notice said without its code (and without the
        # path, which has its own column, svc_notices.path)
        data = {k: v for k, v in self.notice.data.items() if k != "subject_path"}
        return {
            "nid": self.notice.id,
            "data": json.dumps(data),
            "subject_path": json.dumps(self.path),
            "at": at,
        }

    def mark_row(self, at: str, used: str) -> dict[str, Any]:
        return {**self.pin_row(at), "used": used}


@dataclass
class _RequestFacts:
    """What every notice about one request shares, and its subjects tree (built once)."""

    common: dict[str, Any]
    groups: dict[int, list[str]]  # release log index -> categories released
    tree: SubjectTree
    root: str
    count: int
    request_index: int | None


class LetterRun:
    """Caches for one delivery run: the signed tree, the release proofs and, per request,
    the subjects tree (one ``SubjectTree`` per request, never one per notice, so a request
    about 100,000 people is delivered in seconds, not hours)."""

    def __init__(self, svc: ReadMixin) -> None:
        self.svc = svc
        self.requests: OrderedDict[str, _RequestFacts] = OrderedDict()
        self.signed: tuple[int, str, str] | None = None  # size, note, root hex
        self.proofs: dict[int, list[str]] = {}
        self._codes: CodeMaker | None = None

    @property
    def codes(self) -> CodeMaker:
        if self._codes is None:
            self._codes = code_maker(self.svc.ledger)
        return self._codes

    def _tree(self, index: int) -> tuple[int, str, str]:
        if self.signed is None or self.signed[0] <= index:
            size, note = self.svc._signed_tree(index)
            self.signed = (size, note, self.svc.ledger.root(size).hex())
            self.proofs.clear()
        return self.signed

    def _proof(self, index: int, size: int) -> list[str]:
        if index not in self.proofs:
            self.proofs[index] = [h.hex() for h in self.svc.ledger.inclusion_proof(index, size)]
        return self.proofs[index]

    def _request(self, conn: Connection, request_id: str) -> _RequestFacts:
        facts = self.requests.get(request_id)
        if facts is not None:
            self.requests.move_to_end(request_id)
            return facts
        req = conn.execute(REQUEST, {"rid": request_id}).one()
        rel = json.loads(req.release)
        commitments = commitments_of(conn, request_id)
        count, root, request_index = subjects_facts(conn, req, commitments)
        facts = _RequestFacts(
            common={
                "request_id": req.id,
                "holder": req.holder,
                "holder_name": self.svc._org_name(req.holder, conn),
                "recipient": rel["recipient"],
                "recipient_name": self.svc._org_name(rel["recipient"], conn),
                "purpose": req.purpose,
                "legal_basis": req.legal_basis,
                "court_order": bool(json.loads(req.document).get("court_order")),
                "released_at": rel["sent_at"],
            },
            groups={int(g["log_index"]): list(g["categories"]) for g in rel["groups"]},
            tree=SubjectTree(commitments),
            root=root,
            count=count,
            request_index=request_index,
        )
        self.requests[request_id] = facts
        while len(self.requests) > _TREES_KEPT:
            self.requests.popitem(last=False)
        return facts

    def prepare(self, ids: Sequence[int]) -> list[Prepared]:
        """Render each claimed notice with its code; a pinned letter is rendered again."""
        with self.svc.store.read() as conn:
            rows = conn.execute(_CLAIMED, {"ids": list(ids)}).all()
            fresh = [r for r in rows if not _pinned(r)]
            facts = {r.id: self._request(conn, r.request_id) for r in fresh}
        out = []
        for r in rows:
            position = int(r.position)
            if _pinned(r):
                path = list(json.loads(r.path))
                data = {**json.loads(r.body), "subject_path": path}
            else:
                data, path = self._data(r, facts[r.id])
            code = self.codes.code(r.request_id, position)
            subject_line, body = render_notice({**data, "code": code})
            notice = Notice(int(r.id), r.request_id, r.contact, subject_line, body, data)
            out.append(Prepared(notice, position, hash_code(code), path))
        return out

    def _data(self, r: Any, f: _RequestFacts) -> tuple[dict[str, Any], list[str]]:
        index = int(r.release_index)
        size, note, root = self._tree(index)
        path = f.tree.proof(int(r.position))
        data: dict[str, Any] = {
            **f.common,
            "categories": f.groups[index],
            "release_index": index,
            "tree_size": size,
            "root": root,
            "inclusion_proof": self._proof(index, size),
            "commitment": r.commitment,
            "checkpoint": note,
            "request_index": f.request_index,
            "subjects_root": f.root,
            "subject_position": int(r.position),
            "subject_count": f.count,
            "subject_path": path,
            # the letter names the page to see this at (set by `carewall serve`)
            "public_url": self.svc.public_url,
        }
        return data, path


def _pinned(r: Any) -> bool:
    """Whether an earlier attempt pinned what this notice's letter says."""
    return bool(r.body) and bool(r.path)


def commitments_of(conn: Connection, request_id: str) -> list[str]:
    """The request's subjects' commitments, in request order (the subjects tree's leaves)."""
    return [str(c) for c in conn.execute(_COMMITMENTS, {"rid": request_id}).scalars()]


def subjects_facts(
    conn: Connection, req: Row[Any], commitments: Sequence[str] | None = None
) -> tuple[int, str, int | None]:
    """(subject count, subjects root, the request entry's log index) of request ``req``."""
    if commitments is None and req.subjects_root:
        count = int(conn.execute(_COUNT, {"rid": req.id}).scalar_one())
        root = str(req.subjects_root)
    else:
        commitments = commitments_of(conn, req.id) if commitments is None else commitments
        count = len(commitments)
        # a request stored before the root was kept has it recomputed from its rows
        root = str(req.subjects_root or subjects_root(commitments))
    index = conn.execute(_RECEIVED_INDEX, {"rid": req.id}).scalar()
    return count, root, None if index is None else int(index)


# Built once, so their compiled forms are reused for every delivery.
_CLAIMED = (
    sa.select(
        t.notices.c.id,
        t.notices.c.request_id,
        t.notices.c.position,
        t.notices.c.release_index,
        t.notices.c.body,
        t.notices.c.path,
        t.subjects.c.commitment,
        t.subjects.c.contact,
    )
    .join(
        t.subjects,
        (t.subjects.c.request_id == t.notices.c.request_id)
        & (t.subjects.c.position == t.notices.c.position),
    )
    .where(t.notices.c.id.in_(sa.bindparam("ids", expanding=True)))
    .order_by(t.notices.c.id)
)
_COMMITMENTS = (
    sa.select(t.subjects.c.commitment)
    .where(t.subjects.c.request_id == sa.bindparam("rid"))
    .order_by(t.subjects.c.position)
)
_COUNT = sa.select(sa.func.count()).where(t.subjects.c.request_id == sa.bindparam("rid"))
_RECEIVED_INDEX = (
    sa.select(t.events.c.log_index)
    .where((t.events.c.request_id == sa.bindparam("rid")) & (t.events.c.kind == "received"))
    .order_by(t.events.c.id)
    .limit(1)
)
