"""A submit made with an API token records nothing unless the token is live at commit.

The API may admit a submit from a token it saw live moments before; these tests hold the
service to re-reading it in the recording transaction, alone or in a shared batch, on
SQLite and PostgreSQL (the ``svc`` fixture), and every log left is replayed by the auditor.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from carewall.api.auth import create_token, revoke_token
from carewall.errors import AuthError
from carewall.service import Service
from carewall.service import submitting as sub

Doc = Callable[..., dict[str, Any]]


def _token(svc: Service, organisation: str = "met-police") -> str:
    return create_token(svc.store, organisation, "requester").info.id


def _requests(svc: Service) -> int:
    return len(svc.list_requests(limit=1000))


def test_a_live_token_records_and_a_revoked_one_records_nothing(
    svc: Service, make_doc: Doc
) -> None:
    token = _token(svc)
    first = svc.submit(make_doc(reference="MPS-2026-000001"), token=token)
    assert svc.get(first.id).stage == "decided"
    revoke_token(svc.store, token)  # as another process would: nothing here is told
    size, count = svc.ledger.size(), _requests(svc)
    with pytest.raises(AuthError, match="revoked; nothing was recorded"):
        svc.submit(make_doc(reference="MPS-2026-000002"), token=token)
    assert (svc.ledger.size(), _requests(svc)) == (size, count)


def test_an_unknown_token_id_records_nothing(svc: Service, make_doc: Doc) -> None:
    svc.submit(make_doc(reference="MPS-2026-000001"))  # the holder's key exists: a batch path
    size = svc.ledger.size()
    for forged in ("0" * 16, "", "x' OR '1'='1"):
        with pytest.raises(AuthError):
            svc.submit(make_doc(reference="MPS-2026-000002"), token=forged)
    assert svc.ledger.size() == size


def test_a_revoked_token_cannot_read_back_an_idempotent_retry(svc: Service, make_doc: Doc) -> None:
    token = _token(svc)
    doc = make_doc(reference="MPS-2026-000003")
    first = svc.submit(doc, idempotency_key="retry-1", token=token)
    again = svc.submit(doc, idempotency_key="retry-1", token=token)
    assert again.id == first.id  # the retry is answered while the token is live
    revoke_token(svc.store, token)
    with pytest.raises(AuthError):
        svc.submit(doc, idempotency_key="retry-1", token=token)


def test_a_large_request_is_refused_at_commit_too(svc: Service, make_doc: Doc) -> None:
    token = _token(svc)
    revoke_token(svc.store, token)
    many = [
        {"ref": f"94347659{i:02d}", "is_child": False, "is_victim_or_witness": False}
        for i in range(40)
    ]
    size = svc.ledger.size()
    with pytest.raises(AuthError):
        svc.submit(make_doc(reference="MPS-2026-000004", subjects=many), token=token)
    assert svc.ledger.size() == size


def test_a_shared_transaction_with_one_revoked_token_records_none_of_it(
    svc: Service, make_doc: Doc
) -> None:
    svc.submit(make_doc(reference="MPS-2026-000001"))  # the holder's key: they may share
    live, gone = _token(svc), _token(svc)
    revoke_token(svc.store, gone)
    ready = []
    for n, token in enumerate((live, gone), 5):
        parsed = sub.parse(svc, make_doc(reference=f"MPS-2026-00000{n}"))
        item = sub.prepare(svc, parsed, token)
        assert item is not None
        ready.append(item)
    size, count = svc.ledger.size(), _requests(svc)
    with pytest.raises(AuthError):
        sub.write_batch(svc, ready)
    assert (svc.ledger.size(), _requests(svc)) == (size, count)
    # Written alone, as the group commit then writes each: the live one is recorded.
    assert sub.write_batch(svc, ready[:1])[0].id == ready[0].request_id
    assert svc.ledger.size() == size + 2


def test_the_batch_path_refuses_a_revoked_token_alone(svc: Service, make_doc: Doc) -> None:
    # Through Service.submit: the shared-transaction path fails, the one-alone path refuses.
    svc.submit(make_doc(reference="MPS-2026-000001"))
    token = _token(svc)
    revoke_token(svc.store, token)
    size = svc.ledger.size()
    with pytest.raises(AuthError):
        svc.submit(make_doc(reference="MPS-2026-000006"), token=token)
    assert svc.ledger.size() == size
    assert svc.submit(make_doc(reference="MPS-2026-000007"), token=_token(svc)).log_index > 0
