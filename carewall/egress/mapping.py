"""The mapping file (TOML): which source column holds which category, and the subject facts.

```toml
subject_ref = "pupil_id"          # the column naming each row's person
[columns]                         # source column -> vocabulary category
forename = "name"
postcode = "address"
[facts]                           # a source column, or a boolean stated for every row
                                  # (consent: a column, or false; never true for all)
is_child = "under_18"
is_victim_or_witness = "victim_flag"
consent = false
```

The file is hostile input: every key, name and value is checked, and an error names the
field at fault and the fix (never a row value). Column names may hold any printable
characters (they are always quoted in SQL), but not control characters, surrounding
spaces, or more than :data:`MAX_NAME` characters; two names that differ only in case are
one column to DuckDB and Spark, so they are refused as a column mapped twice. The
``subject_ref`` column is never output: ``[columns]`` may not name it. Whether the
columns exist is checked against the source itself, when a plan is built or run.

How a flag column is read (:func:`flag_reading`): its value as text, spaces trimmed and
lowercased, is *true* when one of :data:`TRUE_WORDS` and *false* when one of
:data:`FALSE_WORDS`. NULL or any other value fails closed: a child, a victim or witness,
and no consent.
"""

from __future__ import annotations

import tomllib
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from carewall.clean.rules import NEVER_DISCLOSED, default_rules
from carewall.errors import InputError
from carewall.vocab import vocabulary

__all__ = [
    "FACTS",
    "FALSE_WORDS",
    "MAX_NAME",
    "TRUE_WORDS",
    "EgressMapping",
    "FactSource",
    "fail_closed",
    "load_mapping",
    "shown_name",
]

FACTS: Final = ("is_child", "is_victim_or_witness", "consent")
TRUE_WORDS: Final = ("true", "t", "1", "y", "yes")
FALSE_WORDS: Final = ("false", "f", "0", "n", "no")
MAX_NAME: Final = 255
_TOP_KEYS: Final = ("subject_ref", "columns", "facts")

# A fact's value: the source column that holds it, or a boolean stated for every row.
FactSource = str | bool


def fail_closed(fact: str) -> bool:
    """The value a fact takes when its flag is NULL or unrecognised: the protective one."""
    return fact != "consent"


@dataclass(frozen=True)
class EgressMapping:
    """A parsed, validated mapping. ``columns`` keeps the file's order (the output's order)."""

    subject_ref: str
    columns: tuple[tuple[str, str], ...]  # (source column, category)
    facts: tuple[tuple[str, FactSource], ...]  # (fact, source), in FACTS order

    @property
    def category_of(self) -> dict[str, str]:
        return dict(self.columns)

    @property
    def fact_sources(self) -> dict[str, FactSource]:
        return dict(self.facts)

    @property
    def fact_columns(self) -> tuple[str, ...]:
        """The source columns read to decide (never output)."""
        return tuple(v for _, v in self.facts if isinstance(v, str))

    def referenced(self) -> tuple[str, ...]:
        """Every source column the mapping names: subject ref, mapped columns, flags."""
        names = [self.subject_ref, *(c for c, _ in self.columns), *self.fact_columns]
        return tuple(dict.fromkeys(names))

    def to_json(self) -> dict[str, Any]:
        return {
            "subject_ref": self.subject_ref,
            "columns": dict(self.columns),
            "facts": dict(self.facts),
        }


def shown_name(name: str) -> str:
    """A column name as errors quote it: repr, cut to 64 characters."""
    return repr(name if len(name) <= 64 else name[:61] + "...")


def check_name(name: object, field: str) -> str:
    """A column name: a non-blank string without control characters or outer spaces."""
    if not isinstance(name, str):
        raise InputError(
            f"expected a column name (a string), got {type(name).__name__}",
            field=field,
            fix="write the source column's name in quotes",
        )
    if not name.strip():
        raise InputError("the column name is blank", field=field, fix="name a source column")
    if name != name.strip():
        raise InputError(
            f"the column name {shown_name(name.strip())} has spaces around it",
            field=field,
            fix="write the name exactly as the source spells it, without surrounding spaces",
        )
    if len(name) > MAX_NAME:
        raise InputError(
            f"the column name is longer than {MAX_NAME} characters",
            field=field,
            fix="name a source column",
        )
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") for ch in name):
        raise InputError(
            "the column name holds a control, format or unassigned character",
            field=field,
            fix="write the name with printable characters only",
        )
    return name


def _table(raw: dict[str, Any], key: str) -> dict[str, Any]:
    value = raw.get(key)
    if not isinstance(value, dict):
        raise InputError(
            f"the mapping has no [{key}] table",
            field=key,
            fix=f"add a [{key}] table (see the carewall.egress documentation)",
        )
    return value


def _never_disclosed_by_name(column: str) -> list[str]:
    """The never-disclosed categories whose scan rules read ``column``'s name as theirs.

    carewall's own scanner (:mod:`carewall.clean`) recognises a nationality column by its
    name; a careless mapping (``nationality = "address"``) would otherwise send it out.
    """
    return [r.category for r in default_rules().candidates(column) if r.category in NEVER_DISCLOSED]


def _parse(raw: dict[str, Any]) -> EgressMapping:
    unknown = [k for k in raw if k not in _TOP_KEYS]
    if unknown:
        raise InputError(
            f"unknown key {shown_name(unknown[0])}",
            field=unknown[0],
            fix=f"use only {', '.join(_TOP_KEYS)}",
        )
    if "subject_ref" not in raw:
        raise InputError(
            "the mapping names no subject_ref column",
            field="subject_ref",
            fix='add subject_ref = "<the column naming each row\'s person>"',
        )
    subject_ref = check_name(raw["subject_ref"], "subject_ref")

    categories = vocabulary()["category"]
    columns: list[tuple[str, str]] = []
    seen: dict[str, str] = {}  # casefolded name -> field that used it

    def claim(name: str, field: str) -> None:
        key = name.casefold()
        if key in seen:
            raise InputError(
                f"the column {shown_name(name)} is already used by {seen[key]}",
                field=field,
                fix="map each source column once (names that differ only in case are one "
                "column to DuckDB and Spark)",
            )
        seen[key] = field

    for name, category in _table(raw, "columns").items():
        field = f"columns.{shown_name(name)}"
        check_name(name, field)
        if not isinstance(category, str) or category not in categories:
            raise InputError(
                "not a vocabulary category",
                field=field,
                fix=f"use one of: {', '.join(categories)}",
            )
        if name.casefold() == subject_ref.casefold():
            raise InputError(
                f"the column {shown_name(name)} is the subject_ref column, which is never output",
                field=field,
                fix="remove it from [columns] (it names each row's person, only to log the "
                "request's subjects)",
            )
        named = _never_disclosed_by_name(name)
        if named and category not in named:
            raise InputError(
                f"the column {shown_name(name)} is named for {named[0]}, which is never "
                f"disclosed, but is mapped as {category}",
                field=field,
                fix=f"map it as {named[0]} (it then never leaves) or leave it out; a column "
                "named for a never-disclosed category is not output as another",
            )
        claim(name, field)
        columns.append((name, category))
    if not columns:
        raise InputError(
            "the [columns] table maps no column", field="columns", fix="map at least one column"
        )

    facts_raw = _table(raw, "facts")
    for key in facts_raw:
        if key not in FACTS:
            raise InputError(
                f"unknown fact {shown_name(key)}",
                field=f"facts.{shown_name(key)}",
                fix=f"use only {', '.join(FACTS)}",
            )
    facts: list[tuple[str, FactSource]] = []
    for fact in FACTS:
        field = f"facts.{fact}"
        if fact not in facts_raw:
            raise InputError(
                f"the fact {fact} is missing",
                field=field,
                fix=f'name the flag column (e.g. {fact} = "col") or state it: {fact} = true',
            )
        value = facts_raw[fact]
        if value is True and fact == "consent":
            # Consent is a person's, given one by one: one line cannot give it for every
            # row (a single request's consent counts only where the reviewer states it
            # subject by subject, and an extract has no such review of each row).
            raise InputError(
                "consent cannot be stated for every row at once",
                field=field,
                fix='name the column recording each person\'s consent (consent = "col"), '
                "or state consent = false",
            )
        if isinstance(value, bool):
            facts.append((fact, value))
            continue
        name = check_name(value, field)
        if name.casefold() == subject_ref.casefold():
            raise InputError(
                "a fact cannot be read from the subject_ref column",
                field=field,
                fix="name the flag column that holds this fact",
            )
        claim(name, field)  # a flag is never output, nor read for two facts
        facts.append((fact, name))
    return EgressMapping(subject_ref, tuple(columns), tuple(facts))


def load_mapping(path_or_text: Path | str) -> EgressMapping:
    """Parse and validate a mapping: a :class:`~pathlib.Path` is read, a ``str`` is TOML text."""
    if isinstance(path_or_text, Path):
        try:
            text = path_or_text.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(
                f"cannot read the mapping file ({type(e).__name__})",
                field="MAPPING",
                fix="pass a readable UTF-8 TOML file",
            ) from e
    else:
        text = path_or_text
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise InputError(
            f"the mapping is not valid TOML: {e}",
            field="MAPPING",
            fix="fix the TOML syntax",
        ) from e
    return _parse(raw)
