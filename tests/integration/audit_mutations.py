"""Forgeries of a coherent log: one field of one entry changed, two entries swapped, one
entry left out. Each returns the forged entries, or None when the change would write
another valid log (those are listed, with why, in EQUIVALENT and in the functions)."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from audit_support import LogBuilder

from carewall.policy.facts import RequestFacts, SubjectFacts

Entries = list[dict[str, Any]]

# Changes that write another valid log, so that no auditor could tell them from the truth.
EQUIVALENT: dict[tuple[str, str], str] = {
    ("*", "time"): "entry times are synthetic and not ordered (contract: skip time order)",
    ("organisation", "name"): "a body's public name is free text (unless it names immigration)",
    ("request", "subjects_root"): "a commitment only the subjects themselves can open",
    ("notice", "subject"): "a commitment only the subject can open",
    ("deletion", "categories"): "a deletion certificate is not replayed (shape only)",
    ("deletion", "records"): "a deletion certificate is not replayed (shape only)",
    ("deletion", "certificate"): "a deletion certificate is not replayed (shape only)",
    ("appeal", "stage"): "a subject's appeal, once decided, leaves no later trace either way",
}
REGISTER_KINDS = ("organisation", "reviewer")

FRESH_REQUEST = "r" + "0" * 19 + "1"
OTHER_SHA = "sha256:" + "ab" * 32


def _retype(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return 7
    if isinstance(value, list):
        return "x"
    if isinstance(value, dict):
        return []
    return 0  # None


def _recase(value: Any) -> Any:
    if isinstance(value, str) and value.swapcase() != value:
        return value.swapcase()
    if isinstance(value, list) and value and isinstance(value[0], str):
        return [value[0].swapcase(), *value[1:]]
    return None


def drop(entries: Entries, i: int, field: str) -> Entries:
    out = copy.deepcopy(entries)
    del out[i][field]
    return out


def retype(entries: Entries, i: int, field: str) -> Entries:
    out = copy.deepcopy(entries)
    out[i][field] = _retype(out[i][field])
    return out


def recase(entries: Entries, i: int, field: str) -> Entries | None:
    if (entries[i]["kind"], field) == ("organisation", "name"):
        return None  # free text
    value = _recase(entries[i][field])
    if value is None:
        return None
    out = copy.deepcopy(entries)
    out[i][field] = value
    return out


def unknown_field(entries: Entries, i: int) -> Entries:
    out = copy.deepcopy(entries)
    out[i]["note"] = "free text"
    return out


def swap(b: LogBuilder, i: int, j: int) -> Entries | None:
    """Entries i < j swapped, when that changes what the log says."""
    a, c = b.entries[i], b.entries[j]
    if b.groups[i] == b.groups[j]:
        if b.groups[i] == 0 and i != 0:
            return None  # the register at init is a set
        if a["kind"] == c["kind"]:
            return None  # releases or notices of one transaction are a set
    elif not _multi(b, i) and not _multi(b, j):
        return None  # two independent steps may come in either order
    elif a["kind"] == "notice" and not _multi(b, j):
        return None  # a notice is written by a job after its release: it may come later
    out = copy.deepcopy(b.entries)
    out[i], out[j] = out[j], out[i]
    return out


def _multi(b: LogBuilder, i: int) -> bool:
    return b.groups.count(b.groups[i]) > 1


def remove(b: LogBuilder, i: int) -> Entries | None:
    """Entry i left out, when it belongs to a transaction of several entries."""
    if not _multi(b, i) or i == 0:
        return None
    return copy.deepcopy(b.entries[:i] + b.entries[i + 1 :])


# ----- another valid-looking value, wrong in its context ---------------------------------


def _request_facts(e: dict[str, Any]) -> tuple[RequestFacts, list[SubjectFacts], int]:
    facts = RequestFacts(
        e["requester"], e["holder"], e["purpose"], e["legal_basis"], tuple(e["other_bases"]),
        e["offence"], e["court_order"], tuple(e["onward_recipients"]), tuple(e["categories"]),
    )  # fmt: skip
    if e["kind"] == "request":
        groups = [
            SubjectFacts(g["is_child"], g["is_victim_or_witness"], g["consent"])
            for g in e["groups"]
        ]
    else:
        groups = [SubjectFacts(e["is_child"], e["is_victim_or_witness"], e["consent"])]
    return facts, groups, e["subjects"]


def _same_decision(b: LogBuilder, i: int, before: dict[str, Any], after: dict[str, Any]) -> bool:
    """Whether the engine decides the forged facts as it decided the true ones."""
    engine, reg = b.context[i]
    try:
        d1 = engine.decide_facts(
            *_request_facts(before)[:2], reg, _request_facts(before)[2]
        ).to_json()
        d2 = engine.decide_facts(
            *_request_facts(after)[:2], reg, _request_facts(after)[2]
        ).to_json()
    except Exception:
        return False
    keep = ("outcome", "categories", "rules")
    return all(d1[k] == d2[k] for k in keep)


_FACT_VALUES: dict[str, list[Any]] = {
    "purpose": ["immigration_control", "victim_support"],
    "legal_basis": ["dpa2018_sch2_p1_para4_immigration", "consent"],
    "offence": ["immigration_act_1971_s24", "theft_act_1968_s1", None],
    "court_order": [True, False],
    "onward_recipients": [["immigration_enforcement"], []],
    "other_bases": [["dpa2018_sch2_p1_para4_immigration"], []],
    "categories": [["name", "nationality"]],
}


def revalue(b: LogBuilder, i: int, field: str) -> Entries | None:
    """Entry i with ``field`` set to another value of the right type and form."""
    e = b.entries[i]
    kind = e["kind"]
    if field == "time" or field in ("v", "kind"):
        return None
    if (kind, field) in EQUIVALENT and not (kind == "appeal" and e["by"] == "requester"):
        return None
    value = _other(b, i, e, field)
    if value is _SAME:
        return None
    out = copy.deepcopy(b.entries)
    out[i][field] = value
    # Nothing repeats the facts of a request that released nothing, so changing them is a
    # forgery only if it changes the decision (else the log says the same either way).
    unrepeated = kind in ("request", "release") and field in _FACT_VALUES
    unrepeated = unrepeated and not _released(b, e["request"])
    if unrepeated and _same_decision(b, i, e, out[i]):
        return None
    return out


_SAME = object()


def _released(b: LogBuilder, rid: str) -> bool:
    return any(x["kind"] == "release" and x.get("request") == rid for x in b.entries)


_AGREEMENT_VALUES: dict[str, dict[Any, Any]] = {
    "agreement": {"*": "another-agreement"},
    "action": {"registered": "refused", "withdrawn": "destroyed", "*": "registered"},
    "start": {"*": "2025-01-01"},
    "end": {None: "2030-01-01", "*": None},
    "due": {None: "2099-01-01", "*": None},
    "text": {None: OTHER_SHA, "*": None},
    "released": {"*": ["name"]},
    "releases": {None: 1},
    "subjects": {None: 1},
}


def _other(b: LogBuilder, i: int, e: dict[str, Any], field: str) -> Any:
    kind, value = e["kind"], e[field]
    if field == "request":
        return FRESH_REQUEST
    if field in _FACT_VALUES:
        return next((v for v in _FACT_VALUES[field] if v != value), _SAME)
    if field in ("policy", "pledge", "certificate"):
        return OTHER_SHA
    if kind == "agreement" and field in _AGREEMENT_VALUES:
        options = _AGREEMENT_VALUES[field]
        key = value if value is None or isinstance(value, str | int) else "*"
        return options.get(key, options.get("*", _SAME))
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1 if field != "corrected" else 99
    if kind == "policy":
        if field == "rules":
            return value[:-1]
        if field == "change":
            return "update" if value == "init" else "init"
        if field == "text":
            return value.replace("local/court-order", "local/court-orders")
    if kind == "organisation":
        return _other_org(b, e, field)
    if kind == "reviewer":
        return _other_reviewer(b, i, e, field)
    if kind == "deletion" and field == "holder":
        return "nobody-registered"
    if field in ("holder", "requester", "recipient", "by") and kind != "appeal":
        return "whittington-health" if value != "whittington-health" else "met-police"
    if field.endswith("_function"):
        return "housing"
    if field == "reviewer":
        return "ig-whittington" if value != "ig-whittington" else "dpo-st-marys"
    if field == "groups":
        return (
            [{**value[0], "subjects": value[0]["subjects"] + 1}, *value[1:]]
            if value
            else [
                {"is_child": False, "is_victim_or_witness": False, "consent": False, "subjects": 1}
            ]
        )
    if field == "categories" and kind == "decision":
        cat = sorted(value)[0]
        flipped = "refused" if value[cat]["outcome"] == "review" else "review"
        return {**value, cat: {**value[cat], "outcome": flipped}}
    if field == "categories":
        return (
            [c for c in value if c != "name"]
            if "name" in value and len(value) > 1
            else ["nationality"]
        )
    if field == "rules":
        return (
            [*value, "default-deny"] if "default-deny" not in value else value[:-1] or ["local/x"]
        )
    if field == "outcome":
        return {"refused": "review", "review": "refused", "released": "refused"}.get(
            value, "released"
        )
    if field == "by":
        return "subject" if value == "requester" else "requester"
    if field == "stage":
        return {"lodged": "upheld", "upheld": "overturned", "overturned": "upheld"}[value]
    if field == "action":
        return {"deferred": "renewed", "renewed": "lifted", "lifted": "renewed"}[value]
    if field == "review_date":
        when = date.fromisoformat(e["time"][:10]) + timedelta(days=200)
        return when.isoformat()
    if field == "status":
        return _SAME  # only one value exists
    return _SAME


def _other_org(b: LogBuilder, e: dict[str, Any], field: str) -> Any:
    if field == "id":
        return "met-police" if e["id"] != "met-police" else "dfe-other"
    if field == "name":
        return "Home Office Border Force" if e["function"] != "immigration_enforcement" else _SAME
    if field == "function":
        return "housing" if e["function"] != "housing" else "police"
    if field == "change":
        return "retire" if e["change"] == "add" else "add"
    return _SAME


def _other_reviewer(b: LogBuilder, i: int, e: dict[str, Any], field: str) -> Any:
    if field == "id":
        return "dpo-st-marys" if e["id"] != "dpo-st-marys" else "head-st-marys"
    if field == "organisation":
        return "whittington-health" if e["organisation"] != "whittington-health" else "met-police"
    if field == "roles":
        return ["appeal_reviewer"] if "release_reviewer" in e["roles"] else ["release_reviewer"]
    if field == "change":
        later = [x for x in b.entries[i + 1 :] if x["kind"] == "reviewer" and x["id"] == e["id"]]
        if e["change"] == "retire" and not later:
            return _SAME  # a log may simply never retire someone
        return {"add": "update", "update": "retire", "retire": "update"}[e["change"]]
    return _SAME


# ----- the catalogue -----------------------------------------------------------------------

OPS = ("drop", "retype", "recase", "unknown", "revalue", "swap", "remove")


@dataclass(frozen=True)
class Forgery:
    """One change to a coherent log: ``op`` on entry ``i`` (``arg``: a field, or ``j``)."""

    op: str
    i: int
    arg: str | int | None = None

    def apply(self, b: LogBuilder) -> Entries | None:
        op, i, arg = self.op, self.i, self.arg
        if op == "drop":
            return drop(b.entries, i, str(arg))
        if op == "retype":
            return retype(b.entries, i, str(arg))
        if op == "recase":
            return recase(b.entries, i, str(arg))
        if op == "unknown":
            return unknown_field(b.entries, i)
        if op == "revalue":
            return revalue(b, i, str(arg))
        if op == "swap":
            assert isinstance(arg, int)
            return swap(b, i, arg)
        return remove(b, i)

    def blamed(self, b: LogBuilder, forged: Entries) -> set[int]:
        """The indices a finding may name to have found this forgery.

        The entry changed (both, for a swap); for an entry left out, any entry of the
        transaction it belonged to; for a register entry moved, renamed or left out, also
        every entry that names the organisation or reviewer (where its absence shows).
        """
        out = {self.i}
        touched = [self.i]
        if self.op == "swap":
            assert isinstance(self.arg, int)
            out.add(self.arg)
            touched.append(self.arg)
        if self.op == "remove":
            group = b.groups[self.i]
            first = b.groups.index(group)
            last = len(b.groups) - 1 - b.groups[::-1].index(group)
            out |= set(range(first, last))
        if self.op == "swap" and b.entries[self.i]["kind"] in ("release", "deferral"):
            # moved away from its notices: they stand unowed where they are
            out |= {n for n, g in enumerate(b.groups) if g == b.groups[self.i]}
        moved = self.op in ("swap", "remove") or (self.op, self.arg) == ("revalue", "id")
        for k in touched:
            entry = b.entries[k]
            if moved and entry["kind"] in REGISTER_KINDS:
                needle = json.dumps(entry["id"])
                out |= {n for n, e in enumerate(forged) if needle in json.dumps(e)}
            if entry["kind"] == "agreement":  # a later step of the agreement shows it
                out |= {
                    n
                    for n, e in enumerate(forged)
                    if n > k and e.get("agreement") == entry["agreement"]
                }
        return out


SWAP_DISTANCES = (1, 2, 3, 5, 8, 13)


def catalogue(b: LogBuilder, *, every_entry: bool = True) -> list[Forgery]:
    """The forgeries of ``b``'s log that write a log different in meaning.

    Every value change, omission and unknown field of every entry; swaps at a few
    distances and with the last entry. Drops, retypes and re-casings of every field are
    for every entry, or (``every_entry=False``) for the first entry of each kind only:
    the schema refuses them the same way wherever they are.
    """
    out: list[Forgery] = []
    n = len(b.entries)
    seen_kinds: set[str] = set()
    for i, e in enumerate(b.entries):
        shape = every_entry or e["kind"] not in seen_kinds
        seen_kinds.add(e["kind"])
        ops = ("drop", "retype", "recase", "revalue") if shape else ("revalue",)
        candidates = [Forgery(op, i, f) for f in e for op in ops]
        candidates += [Forgery("unknown", i), Forgery("remove", i)]
        js = {i + d for d in SWAP_DISTANCES if i + d < n} | ({n - 1} if i < n - 1 else set())
        candidates += [Forgery("swap", i, j) for j in sorted(js)]
        out += [f for f in candidates if f.apply(b) is not None]
    return out
