"""Scan rules as data: which columns hold which category of personal data (pure, no I/O
beyond reading the rules file).

A rule combines a column-name pattern, value recognisers and a minimum share of matching
values (see the comments in ``rules.toml``, shipped with the package); a share of 0 makes
the name alone enough, for the few names that cannot mean anything lawful. Recognisers are sets
of normalised values: ISO 3166 countries from ``pycountry`` (a maintained library) in codes
and names, plus word lists kept in the rules file.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pycountry

from carewall.errors import InputError
from carewall.vocab import vocabulary

__all__ = [
    "BLANKS",
    "DEFAULT_RULES_PATH",
    "NEVER_DISCLOSED",
    "Rule",
    "RuleSet",
    "default_rules",
    "load_rules",
    "normalise_name",
    "normalise_value",
]

DEFAULT_RULES_PATH = Path(__file__).with_name("rules.toml")
NEVER_DISCLOSED = ("nationality", "country_of_birth", "immigration_status")
_NAME_CHARS = re.compile(r"[^a-z0-9]")
# Every character Python's str.strip() takes off (str.isspace: tabs, line breaks, no-break
# and other Unicode spaces), named so that the scanner's SQL trims exactly the same set:
# DuckDB's one-argument trim() takes off spaces only, so "GBR\t" was a value no rule knew.
# (Written out: finding them takes a pass over every code point; a test checks the list.)
BLANKS = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004"
    "\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


def normalise_name(name: str) -> str:
    """Lowercase letters and digits only, accents taken off (Unicode NFKD, case-folded):
    ``Country_Of-Birth`` -> ``countryofbirth``, ``Staatsangehörigkeit`` ->
    ``staatsangehorigkeit``, ``Narodowość`` -> ``narodowosc``."""
    return _NAME_CHARS.sub("", unicodedata.normalize("NFKD", name.casefold()))


def normalise_value(value: str) -> str:
    """Trimmed of :data:`BLANKS` and upper-cased, as the scanner compares values
    (``upper(trim(v, BLANKS))``)."""
    return value.strip(BLANKS).upper()


@dataclass(frozen=True)
class Rule:
    """Flag a column for ``category`` when its name and enough of its values match."""

    id: str
    category: str
    names: tuple[re.Pattern[str], ...]
    exclude: tuple[re.Pattern[str], ...]
    values: tuple[str, ...]  # recogniser names
    min_share: float
    min_values: int

    def names_match(self, column: str) -> bool:
        norm = normalise_name(column)
        if any(p.search(norm) for p in self.exclude):
            return False
        return any(p.search(norm) for p in self.names)

    def holds(self, values: int, matched: int) -> bool:
        """Whether ``matched`` of ``values`` non-null values are enough to flag the column."""
        return values >= self.min_values and matched >= self.min_share * values


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]
    recognisers: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @property
    def categories(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.category for r in self.rules))

    def only(self, categories: Iterable[str]) -> RuleSet:
        """The rules for ``categories`` (each must have at least one rule)."""
        wanted = list(dict.fromkeys(categories))
        for c in wanted:
            if c not in self.categories:
                raise InputError(
                    f"no scan rule finds the category {c!r}",
                    field="--category",
                    fix="add a rule for it with --rules FILE, or choose one of "
                    + ", ".join(self.categories),
                )
        return RuleSet(tuple(r for r in self.rules if r.category in wanted), self.recognisers)

    def candidates(self, column: str) -> list[Rule]:
        """The rules whose name patterns this column matches (its values decide the rest)."""
        return [r for r in self.rules if r.names_match(column)]


def _iso3166() -> set[str]:
    out: set[str] = set()
    for c in [*pycountry.countries, *pycountry.historic_countries]:
        for attr in ("alpha_2", "alpha_3", "alpha_4", "numeric", "name", "official_name"):
            v = getattr(c, attr, None)
            if v:
                out.add(normalise_value(str(v)))
        common = getattr(c, "common_name", None)
        if common:
            out.add(normalise_value(str(common)))
    return out


_LIBRARIES = {"iso3166": _iso3166}


def _err(where: str, message: str) -> InputError:
    return InputError(message, field=where, fix="see the comments in carewall/clean/rules.toml")


def _strings(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _err(where, "must be a list of strings")
    return list(value)


def _patterns(value: Any, where: str) -> tuple[re.Pattern[str], ...]:
    out = []
    for i, p in enumerate(_strings(value, where)):
        try:
            out.append(re.compile(p))
        except re.error as e:
            raise _err(f"{where}[{i}]", f"is not a regular expression ({e.msg})") from e
    return tuple(out)


def _recogniser(name: str, spec: Any, where: str) -> frozenset[str]:
    if not isinstance(spec, dict) or set(spec) - {"library", "words"}:
        raise _err(where, "takes only `library` and `words`")
    values: set[str] = set()
    lib = spec.get("library")
    if lib is not None:
        if lib not in _LIBRARIES:
            raise _err(f"{where}.library", f"must be one of {', '.join(_LIBRARIES)}")
        values |= _LIBRARIES[lib]()
    values |= {normalise_value(w) for w in _strings(spec.get("words", []), f"{where}.words")}
    if not values:
        raise _err(where, f"recogniser {name!r} recognises nothing")
    return frozenset(values)


def _rule(spec: Any, where: str, recognisers: Mapping[str, frozenset[str]]) -> Rule:
    keys = {"id", "category", "names", "exclude", "values", "min_share", "min_values"}
    if not isinstance(spec, dict) or set(spec) - keys:
        raise _err(where, f"a rule takes only {', '.join(sorted(keys))}")
    rid, category = spec.get("id"), spec.get("category")
    if not isinstance(rid, str) or not rid:
        raise _err(f"{where}.id", "must be a non-empty string")
    if category not in vocabulary()["category"]:
        raise _err(f"{where}.category", "must be a category of the contract's vocabulary (§1)")
    names = _patterns(spec.get("names"), f"{where}.names")
    if not names:
        raise _err(f"{where}.names", "needs at least one column-name pattern")
    values = tuple(_strings(spec.get("values"), f"{where}.values"))
    for v in values:
        if v not in recognisers:
            raise _err(f"{where}.values", f"names an unknown recogniser {v!r}")
    if not values:
        raise _err(f"{where}.values", "needs at least one recogniser")
    share = spec.get("min_share", 0.5)
    # 0: the name alone flags a column holding at least `min_values` values (whatever they
    # are); only for names that cannot mean anything else (see rules.toml).
    if not isinstance(share, int | float) or isinstance(share, bool) or not 0 <= share <= 1:
        raise _err(f"{where}.min_share", "must be a number from 0 to 1")
    min_values = spec.get("min_values", 1)
    if not isinstance(min_values, int) or isinstance(min_values, bool) or min_values < 1:
        raise _err(f"{where}.min_values", "must be a whole number of at least 1")
    return Rule(
        rid,
        str(category),
        names,
        _patterns(spec.get("exclude", []), f"{where}.exclude"),
        values,
        float(share),
        min_values,
    )


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise InputError(
            f"cannot read the rules file ({e.strerror})", field="--rules", fix="check the path"
        ) from e
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise InputError(
            f"the rules file is not valid TOML ({e})", field="--rules", fix="fix the file"
        ) from e


def load_rules(paths: Sequence[str | Path] = ()) -> RuleSet:
    """The shipped rules, extended by the rules files in ``paths`` (later ids must be new)."""
    docs = [_read(DEFAULT_RULES_PATH), *(_read(Path(p)) for p in paths)]
    recognisers: dict[str, frozenset[str]] = {}
    rules: list[Rule] = []
    for doc in docs:
        extra = set(doc) - {"version", "recogniser", "rule"}
        if extra:
            raise _err(sorted(extra)[0], "is not a rules-file section")
        for name, spec in dict(doc.get("recogniser", {})).items():
            got = _recogniser(name, spec, f"recogniser.{name}")
            recognisers[name] = recognisers.get(name, frozenset()) | got
        for i, spec in enumerate(doc.get("rule", [])):
            rule = _rule(spec, f"rule[{i}]", recognisers)
            if any(r.id == rule.id for r in rules):
                raise _err(f"rule[{i}].id", f"rule id {rule.id!r} is already defined")
            rules.append(rule)
    return RuleSet(tuple(rules), recognisers)


@cache
def default_rules() -> RuleSet:
    """The rules shipped with the package (cached: they are immutable)."""
    return load_rules()
