"""The request document (contract §3) read without pydantic: for ``carewall decide``.

:mod:`carewall.policy.request` defines the document as pydantic models (the service and the
API's JSON Schema use them); building those models costs more at start-up than a CLI
command that decides one request is allowed to spend. This module is the same validator
written out in plain Python, for JSON documents only (what ``json.loads`` gives: dicts with
string keys, lists, strings, numbers, booleans and null). It accepts and refuses exactly
the documents the models do, with the same :class:`~carewall.errors.InputError` (field,
message and fix) for the first fault in the models' order, and returns what the model's
``model_dump()`` would; a differential property test
(``tests/unit/policy/test_document.py``) holds the two equal.

Everything the two validators share (decoding, the field checks, the wording of every
error, the checks against the register) is in :mod:`carewall.policy.checks`; this module
holds only the walk over the document's shape, in the models' order.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

from carewall.errors import InputError
from carewall.policy.checks import (
    VocabError,
    check_date,
    check_object,
    check_offence,
    check_received_at,
    check_request,
    check_vocab,
    decode,
    distinct_subjects,
    field_path,
    input_error,
    not_blank,
    unique,
)
from carewall.text import TextKind, text_problem

if TYPE_CHECKING:
    from carewall.policy.register import Register

__all__ = ["parse_document", "stored_document", "validate_document"]


# ----- the shape, in the models' order ----------------------------------------------------
#
# Each model's fields are checked in the order the model declares them, and a field's
# checks in pydantic's order: type (strict: a JSON string for str, true/false for bool),
# then, for a string with a length bound, a lone surrogate and then the bounds, then the
# field validator. A list checks its type, then each item, then its length, then its
# validator. An object whose keys include a lone surrogate fails as a whole first; unknown
# keys are reported after every declared field, in the document's order.

Loc = tuple[int | str, ...]
_MISSING: Final = object()


def _fail(kind: str, loc: Loc, value: object = None, **ctx: Any) -> InputError:
    return input_error(kind, field_path(loc), value, **ctx)


def _has_surrogate(s: str) -> bool:
    # Its callers ask only of text that is not ASCII: ASCII text (the usual case) has none.
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _run(loc: Loc, check: Callable[[Any], Any], value: Any) -> Any:
    try:
        return check(value)
    except VocabError as e:
        raise _fail("value_error", loc, value, cause=e) from None


def _text(
    value: Any, loc: Loc, min_length: int | None = None, max_length: int | None = None
) -> str:
    if type(value) is not str:
        raise _fail("string_type", loc, value)
    if min_length is not None or max_length is not None:
        if not value.isascii() and _has_surrogate(value):
            raise _fail("string_unicode", loc, value)
        if min_length is not None and len(value) < min_length:
            raise _fail("string_too_short", loc, value)
        if max_length is not None and len(value) > max_length:
            raise _fail("string_too_long", loc, value, max_length=max_length)
    return value


def _stored(
    value: Any,
    loc: Loc,
    min_length: int | None,
    max_length: int,
    kind: TextKind = "line",
    *,
    blank: bool = True,
) -> str:
    """A bounded string that every database can store as ``kind`` text (and, unless
    ``blank``, not only spaces): ``_text`` and then ``_run(loc, storable(·, kind))`` (and
    ``not_blank``) as one step, with the same errors in the same order."""
    if type(value) is not str:
        raise _fail("string_type", loc, value)
    if not value.isascii() and _has_surrogate(value):
        raise _fail("string_unicode", loc, value)
    if min_length is not None and len(value) < min_length:
        raise _fail("string_too_short", loc, value)
    if len(value) > max_length:
        raise _fail("string_too_long", loc, value, max_length=max_length)
    problem = text_problem(value, kind)
    if problem is not None:
        raise _fail("value_error", loc, value, cause=VocabError(*problem))
    if not blank:
        _run(loc, not_blank, value)
    return value


def _bool(value: Any, loc: Loc) -> bool:
    if type(value) is not bool:
        raise _fail("bool_type", loc, value)
    return value


def _texts(value: Any, loc: Loc, min_length: int | None = None) -> list[str]:
    if type(value) is not list:
        raise _fail("list_type", loc, value)
    for i, item in enumerate(value):
        if type(item) is not str:  # _text(item, (*loc, i)), with no bounds to check
            raise _fail("string_type", (*loc, i), item)
    if min_length is not None and len(value) < min_length:
        raise _fail("too_short", loc, value)
    return list(value)


def _object(value: Any, loc: Loc) -> dict[str, Any]:
    if type(value) is not dict:
        raise _fail("model_type", loc, value)
    for key in value:
        if not key.isascii() and _has_surrogate(key):
            raise _fail("string_unicode", loc, key)
    return value


def _extras(value: dict[str, Any], loc: Loc, known: frozenset[str]) -> None:
    for key in value:
        if key not in known:
            raise _fail("extra_forbidden", (*loc, key), value[key])


def _required(value: dict[str, Any], name: str, loc: Loc) -> Any:
    got = value.get(name, _MISSING)
    if got is _MISSING:
        raise _fail("missing", (*loc, name), value)
    return got


# The vocabulary checks, made once (not a closure per document).
_PURPOSE: Final = functools.partial(check_vocab, "purpose")
_LEGAL_BASIS: Final = functools.partial(check_vocab, "legal_basis")
_BASES: Final = functools.partial(unique, kind="legal_basis")
_CATEGORIES: Final = functools.partial(unique, kind="category")
_FUNCTIONS: Final = functools.partial(unique, kind="function")


_OFFICER: Final = frozenset({"name", "role", "contact"})
_AUTHORISER: Final = frozenset({"name", "role"})
_COURT_ORDER: Final = frozenset({"reference", "court", "date"})
_SUBJECT: Final = frozenset({"ref", "is_child", "is_victim_or_witness", "consent"})
_REQUEST: Final = frozenset(
    {
        "reference",
        "requester",
        "officer",
        "authorised_by",
        "holder",
        "purpose",
        "legal_basis",
        "other_bases",
        "offence",
        "court_order",
        "subjects",
        "categories",
        "onward_recipients",
        "necessity",
        "prejudice",
        "received_at",
    }
)


def _person(value: Any, loc: Loc, known: frozenset[str]) -> dict[str, Any] | None:
    """An Officer (name, role, contact) or an Authoriser (name, role); None stays None."""
    if value is None:
        return None
    obj = _object(value, loc)
    out: dict[str, Any] = {"name": _stored(_required(obj, "name", loc), (*loc, "name"), 1, 500)}
    for extra in ("role", "contact"):
        if extra in known:
            v = obj.get(extra)
            out[extra] = None if v is None else _stored(v, (*loc, extra), None, 500)
    _extras(obj, loc, known)
    return out


def _court_order(value: Any, loc: Loc) -> dict[str, Any] | None:
    if value is None:
        return None
    obj = _object(value, loc)
    out: dict[str, Any] = {}
    for name in ("reference", "court"):
        text = _required(obj, name, loc)
        out[name] = _stored(text, (*loc, name), 1, 500, "verbatim", blank=False)
    date = _required(obj, "date", loc)
    if type(date) is str:
        date = _run((*loc, "date"), check_date, date)
    else:
        raise _fail("date_type", (*loc, "date"), date)
    out["date"] = date
    _extras(obj, loc, _COURT_ORDER)
    return out


def _subject(value: Any, loc: Loc) -> dict[str, Any]:
    obj = _object(value, loc)
    ref = _stored(_required(obj, "ref", loc), (*loc, "ref"), 1, 200, blank=False)
    out: dict[str, Any] = {"ref": ref}
    for name in ("is_child", "is_victim_or_witness"):
        out[name] = _bool(_required(obj, name, loc), (*loc, name))
    consent = obj.get("consent")
    out["consent"] = None if consent is None else _bool(consent, (*loc, "consent"))
    _extras(obj, loc, _SUBJECT)
    return out


def _subjects(value: Any, loc: Loc) -> list[dict[str, Any]]:
    if type(value) is not list:
        raise _fail("list_type", loc, value)
    out = [_subject(item, (*loc, i)) for i, item in enumerate(value)]
    if not out:
        raise _fail("too_short", loc, value)
    _run(loc, distinct_subjects, [s["ref"] for s in out])
    return out


def _received_at(value: Any, loc: Loc) -> dt.datetime | None:
    if value is None:
        return None
    if type(value) is str:
        parsed: dt.datetime = _run(loc, check_received_at, value)
        return parsed
    raise _fail("datetime_type", loc, value)


def validate_document(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A decoded JSON request object, checked: what ``DisclosureRequest`` would hold.

    Returns the model's ``model_dump()``: every field, defaults filled in, the court
    order's date a :class:`datetime.date` and ``received_at`` a :class:`datetime.datetime`.
    Raises the InputError the model's validation would (its first error).
    """
    top = _object(dict(raw) if type(raw) is not dict else raw, ())
    out: dict[str, Any] = {}
    out["reference"] = _stored(_required(top, "reference", ()), ("reference",), 1, 200)
    out["requester"] = _text(_required(top, "requester", ()), ("requester",), 1, 100)
    out["officer"] = _person(top.get("officer"), ("officer",), _OFFICER)
    out["authorised_by"] = _person(top.get("authorised_by"), ("authorised_by",), _AUTHORISER)
    out["holder"] = _text(_required(top, "holder", ()), ("holder",), 1, 100)
    purpose = _text(_required(top, "purpose", ()), ("purpose",))
    out["purpose"] = _run(("purpose",), _PURPOSE, purpose)
    basis = _text(_required(top, "legal_basis", ()), ("legal_basis",))
    out["legal_basis"] = _run(("legal_basis",), _LEGAL_BASIS, basis)
    others = _texts(top.get("other_bases", []), ("other_bases",))
    out["other_bases"] = _run(("other_bases",), _BASES, others)
    offence = top.get("offence")
    offence = None if offence is None else _text(offence, ("offence",))
    out["offence"] = _run(("offence",), check_offence, offence)
    out["court_order"] = _court_order(top.get("court_order"), ("court_order",))
    out["subjects"] = _subjects(_required(top, "subjects", ()), ("subjects",))
    categories = _texts(_required(top, "categories", ()), ("categories",), 1)
    out["categories"] = _run(("categories",), _CATEGORIES, categories)
    onward = _texts(top.get("onward_recipients", []), ("onward_recipients",))
    out["onward_recipients"] = _run(("onward_recipients",), _FUNCTIONS, onward)
    necessity = top.get("necessity")
    if necessity is not None:
        necessity = _stored(necessity, ("necessity",), None, 20000, "verbatim")
    out["necessity"] = necessity
    out["prejudice"] = _bool(top.get("prejudice", False), ("prejudice",))
    out["received_at"] = _received_at(top.get("received_at"), ("received_at",))
    _extras(top, (), _REQUEST)
    return out


def parse_document(
    data: bytes | str | Mapping[str, Any], register: Register, *, today: dt.date | None = None
) -> dict[str, Any]:
    """Decode and check a request document: what ``parse_request(...).model_dump()`` gives.

    The same documents are accepted and refused as by
    :func:`carewall.policy.request.parse_request`, with the same errors.
    """
    doc = validate_document(check_object(decode(data) if isinstance(data, bytes | str) else data))
    court = doc["court_order"]
    check_request(
        register,
        requester=doc["requester"],
        holder=doc["holder"],
        bases={doc["legal_basis"], *doc["other_bases"]},
        court_date=None if court is None else court["date"],
        offence=doc["offence"],
        today=today,
    )
    return doc


def stored_document(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A checked document (``parse_document``'s result) as JSON values: what
    ``parse_request(...).model_dump(mode="json")`` gives, the form the service stores.

    Only the court order's date and ``received_at`` are not JSON values already; they are
    written by pydantic's own serialisers (loaded on first use), so the text is the same.
    """
    out = dict(doc)
    court = doc["court_order"]
    if court is not None:
        out["court_order"] = {**court, "date": _json_of(dt.date, court["date"])}
    if doc["received_at"] is not None:
        out["received_at"] = _json_of(dt.datetime, doc["received_at"])
    return out


@functools.cache
def _adapter(kind: type) -> Any:
    from pydantic import TypeAdapter

    return TypeAdapter(kind)


def _json_of(kind: type, value: Any) -> Any:
    return _adapter(kind).dump_python(value, mode="json")
