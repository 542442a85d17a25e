"""The served app's background publisher signs the log's tail, so no entry stays unsigned."""

from __future__ import annotations

import time
from pathlib import Path

from api_support import init_service, reviewable, tokens_for
from fastapi.testclient import TestClient

from carewall.api.app import create_app
from carewall.ledger.checkpoint import open_checkpoint
from carewall.ledger.note import Verifier


def test_publisher_signs_entries_written_between_checkpoints(tmp_path: Path) -> None:
    service = init_service(f"sqlite:///{tmp_path / 'pub.db'}", tmp_path)
    tok = tokens_for(service)
    service.publish_interval = 3600.0  # writers never sign on their own from here
    with TestClient(create_app(service)) as client:  # runs the lifespan publisher
        for _ in range(3):
            r = client.post("/api/requests", json=reviewable(), headers=tok.auth("requester"))
            assert r.status_code == 201, r.text
        size = service.ledger.size()
        assert service.ledger.checkpoints()[-1][0] < size
        service.publish_interval = 0.05  # the publisher's next tick signs the tail
        deadline = time.monotonic() + 180  # generous: never a timed assertion
        signed = 0
        while signed < size and time.monotonic() < deadline:
            time.sleep(0.05)
            note = client.get("/log/checkpoint").text
            signed = open_checkpoint(note, [Verifier.from_vkey(service.ledger.verifier_key)]).size
        assert signed == size
    service.close()
