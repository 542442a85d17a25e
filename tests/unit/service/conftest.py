"""Fixtures for the service tests: a fresh instance on SQLite, and on PostgreSQL.

PostgreSQL runs at 127.0.0.1:5432 with trust auth; each test creates its own uniquely
named database and drops it afterwards, so tests can run in parallel.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from logaudit import assert_log_audits

from carewall.service import Service

BASE_DOC: dict[str, Any] = {
    "reference": "MPS-2026-000123",
    "requester": "met-police",
    "officer": {
        "name": "DC Jo Smithson",
        "role": "Detective Constable",
        "contact": "jo@police.example",
    },
    "authorised_by": {"name": "Insp. Rana Khanum", "role": "Inspector"},
    "holder": "whittington-health",
    "purpose": "prevention_detection_of_crime",
    "legal_basis": "dpa2018_sch2_p1_para2_crime",
    "offence": "theft_act_1968_s1",
    "subjects": [
        {
            "ref": "9434765919",
            "is_child": False,
            "is_victim_or_witness": False,
            "contact": "pat@example.org",
        }
    ],
    "categories": ["name", "address", "nationality"],
    "necessity": "Suspect in a burglary; address needed to arrest. Not available elsewhere.",
    "prejudice": False,
    "received_at": "2026-11-21T10:00:00Z",
}


@pytest.fixture
def svc(db_url: str, tmp_path: Path) -> Iterator[Service]:
    s = Service.init(db_url, None, "test.carewall.example/log", tmp_path / "log.key")
    try:
        yield s
        assert_log_audits(s)  # whatever the test did, the log it left passes the auditor
    finally:
        s.close()


@pytest.fixture
def make_doc() -> Callable[..., dict[str, Any]]:
    def make(**changes: Any) -> dict[str, Any]:
        doc = copy.deepcopy(BASE_DOC)
        doc.update(changes)
        return doc

    return make
