"""Request builders shared by the policy tests."""

from __future__ import annotations

from typing import Any


def subject(ref: str = "9434765919", child: bool = False, victim: bool = False) -> dict[str, Any]:
    return {"ref": ref, "is_child": child, "is_victim_or_witness": victim}


def request(**fields: Any) -> dict[str, Any]:
    """A valid police request for a suspect's name and address, with ``fields`` replaced."""
    base: dict[str, Any] = {
        "reference": "MPS-2026-000123",
        "requester": "met-police",
        "holder": "islington-council",
        "purpose": "prevention_detection_of_crime",
        "legal_basis": "dpa2018_sch2_p1_para2_crime",
        "offence": "theft_act_1968_s1",
        "subjects": [subject()],
        "categories": ["name", "address"],
    }
    base.update(fields)
    return base


def numbered(subjects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``subjects`` with distinct refs: a request lists each person once."""
    return [{**s, "ref": f"s{i}"} for i, s in enumerate(subjects)]
