"""The person whose data it is sees the witnesses' cosignatures (issue 11, item 3).

A fake witness (a real Ed25519 cosigner, no server) cosigns the checkpoint a subject's proof
is against, as the witness client would store it; the subject's page then names it, the API
view's checkpoint carries the cosignature line, and a letter delivered afterwards prints it.
A cosignature by a key the log does not ask, or for another tree, names nobody.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from api_support import access_code, free_port, init_service, reviewable, tokens_for
from cli_support import run
from fastapi.testclient import TestClient

from carewall.api.app import create_app
from carewall.ledger.checkpoint import parse_checkpoint
from carewall.ledger.note import Signer, parse_note
from carewall.service import Service
from carewall.service.jobs import drain, record_queued
from carewall.witness import store
from carewall.witness.config import AskedWitness, WitnessConfig
from carewall.witness.cosignature import Cosigner


@dataclass
class Served:
    client: TestClient
    svc: Service
    request_id: str
    code: str
    asked: Cosigner
    stranger: Cosigner


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    svc = init_service(f"sqlite:///{tmp_path / 'cw.db'}", tmp_path)
    asked = Cosigner(Signer.generate("witness.hospital.test"))
    stranger = Cosigner(Signer.generate("witness.stranger.test"))
    # The URL is never reached: a port nobody listens on, so the client only records failures.
    config = WitnessConfig(witnesses=(AskedWitness(asked.key, "http://127.0.0.1:9"),))
    try:
        got = svc.submit(reviewable())
        svc.review(got.id, "dpo-islington", True)
        tokens_for(svc)
        app = create_app(svc, witnesses=config)
        with TestClient(app, base_url="https://testserver") as client:
            yield Served(client, svc, got.id, access_code(svc, got.id), asked, stranger)
    finally:
        svc.close()


def cosign_latest(s: Served, witness: Cosigner, *, tamper: bool = False) -> int:
    """Store ``witness``'s cosignature on the newest checkpoint, as the witness client does."""
    note = s.svc.ledger.checkpoint()
    body = parse_note(note).text
    size = parse_checkpoint(body).size
    signed = body.replace("\n", "\n\n", 1) if tamper else body  # a different tree's text
    line = witness.cosign(signed, int(time.time())).line()
    with s.svc.store.write() as conn:
        store.save_cosignature(conn, size, witness.name, line, int(time.time()))
    return size


def my_data(s: Served) -> str:
    page = s.client.get("/my-data")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    r = s.client.post(
        "/my-data",
        data={"request_id": s.request_id, "code": s.code, "csrf_token": token.group(1)},
    )
    assert r.status_code == 200, r.text
    return r.text


def test_the_subject_page_says_no_witness_has_countersigned_yet(served: Served) -> None:
    page = my_data(served)
    assert "Independent witnesses (witness.hospital.test)" in page
    assert "No witness has countersigned this checkpoint yet" in page


def test_the_subject_page_names_the_witness_that_cosigned(served: Served) -> None:
    cosign_latest(served, served.asked)
    page = my_data(served)
    assert "This checkpoint is countersigned by witness.hospital.test." in page


def test_a_stranger_or_a_cosignature_of_another_tree_names_nobody(served: Served) -> None:
    cosign_latest(served, served.stranger)
    cosign_latest(served, served.asked, tamper=True)
    page = my_data(served)
    assert "No witness has countersigned this checkpoint yet" in page
    assert "countersigned by" not in page


def test_the_api_view_carries_the_cosignature_line(served: Served) -> None:
    cosign_latest(served, served.asked)
    r = served.client.post(
        "/api/subject/view", json={"request": served.request_id, "code": served.code}
    )
    assert r.status_code == 200, r.text
    checkpoint = r.json()["checkpoint"]
    assert any(line.startswith("— witness.hospital.test ") for line in checkpoint.splitlines()), (
        checkpoint
    )


def test_a_letter_delivered_after_the_cosignature_prints_it(served: Served) -> None:
    """A letter is made when it is delivered: one sent after a witness cosigned carries it."""
    svc = served.svc
    svc.job_policy.background = True  # as under a server: a job larger than
    svc.job_policy.inline_limit = 0  # the inline limit waits for the worker
    got = svc.submit(reviewable())
    svc.review(got.id, "dpo-islington", True)
    record_queued(svc)  # the notice written (and logged), its letter not yet made
    (notice,) = svc.notices(got.id)
    assert notice.delivered_at is None  # queued for the worker, not yet a letter
    svc.publish_pending()
    cosign_latest(served, served.asked)
    assert drain(svc).sent == 1
    (letter,) = svc.outbox(notice.id)
    lines = str(letter["body"]).splitlines()
    assert any(ln.strip().startswith("— witness.hospital.test ") for ln in lines), lines
    assert any("countersignatures" in ln for ln in lines)


@pytest.mark.parametrize(
    ("content", "why"),
    [
        pytest.param(None, "no witness configuration", id="missing"),
        pytest.param("[[witness]\n", "cannot be read", id="not-toml"),
        pytest.param('[[witness]]\nvkey = "x"\nurl = "ftp://w"\n', "malformed", id="bad-entry"),
    ],
)
def test_serve_names_a_bad_witness_file_in_one_line(
    tmp_path: Path, content: str | None, why: str
) -> None:
    svc = init_service(f"sqlite:///{tmp_path / 'cw.db'}", tmp_path)
    svc.close()
    path = tmp_path / "witnesses.toml"
    if content is not None:
        path.write_text(content)
    db = f"sqlite:///{tmp_path / 'cw.db'}"
    args = ["serve", "--db", db, "--key", str(tmp_path / "log.key"), "--port", str(free_port())]
    args += ["--witnesses", str(path), "--log-key", svc.ledger.verifier_key]
    res = run(args)
    assert res.exit_code == 2 and res.stdout == "", res.output
    (line,) = res.stderr.splitlines()
    assert line.startswith("error: --witnesses") and why in line, line
