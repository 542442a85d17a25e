"""The exact shape of every ledger entry kind (contract §6), as one JSON Schema.

Pure data: served at ``/log/schema`` and used by the auditor, so the holder and every
outsider read the same shapes. Every object is closed (``additionalProperties: false``),
every field required (a field that may be empty is ``null`` or ``[]``, never absent), and
every id is matched whole against the pattern of :mod:`carewall.ids` (ECMA-262 anchors).

JSON Schema 2020-12: https://json-schema.org/draft/2020-12/json-schema-core
"""

from __future__ import annotations

from functools import cache
from typing import Any

from carewall.ids import PATTERNS, IdKind
from carewall.vocab import Kind, vocabulary

__all__ = ["SCHEMA_ID", "entry_schema", "kind_schema"]

SCHEMA_ID = "https://carewall.example/log/schema/v1"
MAX_COUNT = 10**9  # subjects per request: far above any real request, far below 2**53


def _pattern(kind: IdKind) -> dict[str, Any]:
    return {"type": "string", "pattern": f"^(?:{PATTERNS[kind]})$"}


def _enum(kind: Kind) -> dict[str, Any]:
    return {"type": "string", "enum": list(vocabulary()[kind])}


def _set_of(item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": item, "uniqueItems": True}


def _count(minimum: int = 0) -> dict[str, Any]:
    return {"type": "integer", "minimum": minimum, "maximum": MAX_COUNT}


_TIME = {"type": "string", "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$"}
_DATE = {"type": "string", "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}
_RULE_IDS = {"type": "array", "items": _pattern("rule"), "uniqueItems": True}
_OUTCOME_CAT = {
    "type": "object",
    "additionalProperties": False,
    "required": ["outcome", "rules"],
    "properties": {
        "outcome": {"enum": ["refused", "review"]},
        "rules": {**_RULE_IDS, "minItems": 1},
    },
}
_GROUP = {
    "type": "object",
    "additionalProperties": False,
    "required": ["is_child", "is_victim_or_witness", "consent", "subjects"],
    "properties": {
        "is_child": {"type": "boolean"},
        "is_victim_or_witness": {"type": "boolean"},
        "consent": {"type": "boolean"},
        "subjects": _count(1),
    },
}


def _facts() -> dict[str, Any]:
    """What the pledge needs to judge a disclosure: shared by request and release."""
    return {
        "request": _pattern("request"),
        "holder": _pattern("organisation"),
        "holder_function": _enum("function"),
        "requester": _pattern("organisation"),
        "requester_function": _enum("function"),
        "purpose": _enum("purpose"),
        "legal_basis": _enum("legal_basis"),
        "other_bases": _set_of(_enum("legal_basis")),
        "offence": {
            "anyOf": [{"type": "null"}, {"const": "unlisted"}, _pattern("offence")],
        },
        "court_order": {"type": "boolean"},
        "onward_recipients": _set_of(_enum("function")),
        "categories": {**_set_of(_enum("category")), "minItems": 1},
        "subjects": _count(1),
        "victims_or_witnesses": _count(0),
    }


def _kinds() -> dict[str, dict[str, Any]]:
    facts = _facts()
    return {
        "policy": {
            "policy": _pattern("sha256"),
            "pledge": _pattern("sha256"),
            "rules": {**_RULE_IDS, "minItems": 1},
            "change": {"enum": ["init", "update"]},
            # the full local policy (Cedar) so anyone can read the rule behind an id
            "text": {"type": "string", "maxLength": 60000},
        },
        "organisation": {
            "id": _pattern("organisation"),
            "name": {"type": "string", "minLength": 1, "maxLength": 200},
            "function": _enum("function"),
            "change": {"enum": ["add", "retire"]},
        },
        "reviewer": {
            "id": _pattern("reviewer"),
            "organisation": _pattern("organisation"),
            "roles": {**_set_of(_enum("role")), "minItems": 1},
            "change": {"enum": ["add", "update", "retire"]},
        },
        "request": {
            **facts,
            # the subjects as the requester claims them: one group per distinct combination
            "groups": {"type": "array", "items": _GROUP, "minItems": 1, "maxItems": 8},
            # RFC 9162 Merkle root over the subjects' commitments, in request order
            "subjects_root": _pattern("hash"),
        },
        "decision": {
            "request": _pattern("request"),
            "outcome": {"enum": ["refused", "review"]},
            "categories": {
                "type": "object",
                "minProperties": 1,
                "propertyNames": _enum("category"),
                "additionalProperties": _OUTCOME_CAT,
            },
            "rules": {**_RULE_IDS, "minItems": 1},
            "policy": _pattern("sha256"),
        },
        "review": {
            "request": _pattern("request"),
            "outcome": {"enum": ["released", "refused"]},
            "reviewer": _pattern("reviewer"),
            "categories": _set_of(_enum("category")),
            # the holder's record of the subjects, confirmed or corrected by the reviewer
            # (empty when refused), and how many subjects' facts the reviewer corrected
            "groups": {"type": "array", "items": _GROUP, "maxItems": 8},
            "corrected": _count(0),
        },
        "release": {
            **facts,
            # the holder's record of this group of subjects, on which it was decided again
            "is_child": {"type": "boolean"},
            "is_victim_or_witness": {"type": "boolean"},
            "consent": {"type": "boolean"},
            "recipient": _pattern("organisation"),
            "recipient_function": _enum("function"),
            "reviewer": _pattern("reviewer"),
            "policy": _pattern("sha256"),
            # an extract's released file (issue 10): anyone holding it can check its hash
            "file": {"anyOf": [{"type": "null"}, _pattern("sha256")]},
        },
        "appeal": {
            "request": _pattern("request"),
            "by": {"enum": ["requester", "subject"]},
            "stage": {"enum": ["lodged", "upheld", "overturned"]},
            "reviewer": {"anyOf": [{"type": "null"}, _pattern("reviewer")]},
        },
        "notice": {
            "request": _pattern("request"),
            "subject": _pattern("commitment"),
            # its place in the request's subjects tree (carewall.ledger.subjects): a tree
            # of at most MAX_COUNT leaves has a path of at most 30 hashes
            "subject_position": _count(),
            "subject_path": {"type": "array", "items": _pattern("hash"), "maxItems": 30},
            "status": {"enum": ["sent"]},
        },
        "deferral": {
            "request": _pattern("request"),
            "action": {"enum": ["deferred", "renewed", "lifted"]},
            "reviewer": _pattern("reviewer"),
            "subjects": _count(1),
            "review_date": {"anyOf": [{"type": "null"}, _DATE]},
        },
        "withdrawal": {
            "request": _pattern("request"),
            "by": _pattern("organisation"),
        },
        "deletion": {
            "holder": _pattern("organisation"),
            "categories": {**_set_of(_enum("category")), "minItems": 1},
            "records": _count(0),
            "certificate": _pattern("sha256"),
        },
        "agreement": _agreement(),
    }


def _agreement() -> dict[str, Any]:
    """A standing agreement's terms and what happened to it (docs/clean.md, Agreements)."""
    nullable_count = {"anyOf": [{"type": "null"}, _count(0)]}
    return {
        "agreement": _pattern("organisation"),
        "action": {"enum": ["registered", "refused", "withdrawn", "destroyed"]},
        "holder": _pattern("organisation"),
        "holder_function": _enum("function"),
        "recipient": _pattern("organisation"),
        "recipient_function": _enum("function"),
        "purpose": _enum("purpose"),
        "legal_basis": _enum("legal_basis"),
        "other_bases": _set_of(_enum("legal_basis")),
        "offence": {"anyOf": [{"type": "null"}, {"const": "unlisted"}, _pattern("offence")]},
        "onward_recipients": _set_of(_enum("function")),
        "categories": {**_set_of(_enum("category")), "minItems": 1},
        "children": {"type": "boolean"},
        "victims_or_witnesses": {"type": "boolean"},
        "consent_required": {"type": "boolean"},
        "start": _DATE,
        "end": {"anyOf": [{"type": "null"}, _DATE]},
        "rules": _RULE_IDS,
        "policy": _pattern("sha256"),
        "text": {"anyOf": [{"type": "null"}, _pattern("sha256")]},
        "releases": nullable_count,
        "subjects": nullable_count,
        "released": _set_of(_enum("category")),
        "due": {"anyOf": [{"type": "null"}, _DATE]},
        "certificate": {"anyOf": [{"type": "null"}, _pattern("sha256")]},
        # A registration pins the recipient's published verifier key, when it has one
        # (C2SP signed-note: name+hex8+base64): the key its deletion certificate must
        # verify under. Absent from every other entry, and from registrations without one.
        "recipient_key": {"type": "string", "pattern": _VKEY, "maxLength": 400},
    }


# Fields an entry of the kind may leave out (every other field is required).
_OPTIONAL: dict[str, frozenset[str]] = {"agreement": frozenset({"recipient_key"})}
# A C2SP signed-note verifier key: a name without '+' or spaces, 8 hex digits, base64.
_VKEY = r"^[!-*,-~]{1,200}\+[0-9a-f]{8}\+[A-Za-z0-9+/]{4,300}={0,2}$"


def kind_schema(kind: str) -> dict[str, Any]:
    """The closed object schema of one entry kind (KeyError for an unknown kind)."""
    props = _kinds()[kind]
    optional = _OPTIONAL.get(kind, frozenset())
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["v", "kind", "time", *(p for p in props if p not in optional)],
        "properties": {"v": {"const": 1}, "kind": {"const": kind}, "time": _TIME, **props},
    }


@cache
def entry_schema() -> dict[str, Any]:
    """The whole schema: one entry is exactly one of the kinds, chosen by ``kind``."""
    kinds = _kinds()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "carewall ledger entry (contract §6)",
        "type": "object",
        "required": ["v", "kind"],
        "properties": {"v": {"const": 1}, "kind": {"enum": list(kinds)}},
        "$defs": {k: kind_schema(k) for k in kinds},
        "allOf": [
            {
                "if": {"properties": {"kind": {"const": k}}, "required": ["kind"]},
                "then": {"$ref": f"#/$defs/{k}"},
            }
            for k in kinds
        ],
    }
