"""A request about more people than fit one statement: its subjects go by COPY on
PostgreSQL (a plain executemany on SQLite), outside the pipeline and the group commit, and
every subject's row is what was sent."""

from __future__ import annotations

import json
from pathlib import Path

from logaudit import assert_log_audits

from carewall.entries import subject_commitment
from carewall.service import Service
from carewall.service.statements import SMALL_REQUEST

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DOC = json.loads((EXAMPLES / "07-police-theft-suspect.json").read_text(encoding="utf-8"))


def test_a_large_request_stores_every_subject_as_sent(db_url: str, tmp_path: Path) -> None:
    n = SMALL_REQUEST * 3 + 1
    subjects = [
        {
            "ref": f"S{i:06d}",
            "is_child": i % 3 == 0,
            "is_victim_or_witness": i % 5 == 0,
            **({"consent": True} if i % 7 == 0 else {}),
            **({"contact": f"person{i}@example.org"} if i % 2 == 0 else {}),
        }
        for i in range(n)
    ]
    svc = Service.init(db_url, None, "test.example/log", tmp_path / "log.key")
    try:
        got = svc.submit(json.dumps(DOC | {"subjects": subjects}))
        small = svc.submit(json.dumps(DOC))  # and a small one after it, pipelined
        record = svc.get(got.id)
        assert len(record.subjects) == n
        for sent, kept in zip(subjects, record.subjects, strict=True):
            assert kept.ref == sent["ref"]
            assert (kept.is_child, kept.is_victim_or_witness, kept.consent) == (
                sent["is_child"],
                sent["is_victim_or_witness"],
                sent.get("consent", False),
            )
            assert kept.has_contact == ("contact" in sent)
        key = svc._holder_keys[DOC["holder"]]
        assert [s.commitment for s in record.subjects] == [
            subject_commitment(key, got.id, s["ref"]) for s in subjects
        ]
        assert svc.get(small.id).stage == "decided"
        assert_log_audits(svc)
    finally:
        svc.close()
