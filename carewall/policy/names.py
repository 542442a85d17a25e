"""Names in the register, and the guard on names that name immigration enforcement.

Contract §2: an organisation whose name contains, case-insensitively, ``immigration``,
``border force``, ``visas`` or ``home office`` must have the function
``immigration_enforcement``. People who want round that rule write the name differently, so
:func:`fold` first takes away case, compatibility forms, accents, invisible characters,
look-alike letters from other scripts, digits standing in for letters and odd separators.
The same folding serves the policy engine's check that no local rule id reads as "pledge".

Beyond §2's rule: a term also matches when a break is put inside it ('Immi-gration',
'Hom e Office'), so long as the match starts and ends on whole words; ``border agency``
(the former UK Border Agency) is a term too; so are, as whole words, the other names the
Home Office and its immigration bodies go by (:data:`WORD_TERMS`: its legal name "the
Secretary of State for the Home Department", UKVI, HOIE, UKBA, the singular "visa", the
Border Security Command); a word one typing slip from "immigration" ('Imigration',
'Immigartion') counts as the word; and a name holding letters that do not fold to
Latin ones (Cherokee 'Ꮋ', Lisu 'ꓲ', any other script) cannot be checked, so
:func:`has_unreadable_letters` lets the register refuse it unless the body is an
immigration-enforcement one. A neutral name ('Compliance Directorate') cannot be caught
by any name check: the register also refuses a name once used by an
immigration-enforcement body for a body with another function
(:mod:`carewall.policy.register`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import Final

from rapidfuzz.distance import OSA

from carewall.errors import InputError

__all__ = [
    "EXTRA_IMMIGRATION_TERMS",
    "IMMIGRATION_TERMS",
    "MAX_NAME_LENGTH",
    "WORD_TERMS",
    "check_name",
    "fold",
    "has_unreadable_letters",
    "name_key",
    "names_immigration_enforcement",
    "one_slip_from",
]

IMMIGRATION_TERMS: Final = ("immigration", "border force", "visas", "home office")
# Not in contract §2, checked all the same: the UK Border Agency was the Home Office's
# immigration agency until 2013, and a body still called that is one by name.
EXTRA_IMMIGRATION_TERMS: Final = ("border agency",)
# Matched as whole words only (inside a word, 'visa' is in 'envisage' and 'hoie' could be
# anywhere): the Home Office's legal name, its immigration bodies' abbreviations (UK Visas
# and Immigration, Immigration Enforcement, the UK Border Agency), the singular "visa",
# and the border bodies of 2024 on (the Border Security Command) and border control.
WORD_TERMS: Final = (
    "home department",
    "ukvi",
    "hoie",
    "ukba",
    "visa",
    "border security",
    "border control",
)
# A word within one typing slip (a letter missing, added, changed, or two swapped: the
# optimal string alignment distance) of one of these is read as it.
_NEAR_WORDS: Final = ("immigration",)
MAX_NAME_LENGTH: Final = 200  # the ledger's organisation entry allows 200 characters

# Letters that look like Latin ones, mapped before case folding (capitals whose lower case
# looks different: Greek Eta 'Η' looks like H, but its lower case 'η' looks like n) ...
_UPPER_LOOKALIKES: Final = str.maketrans(
    {
        "Α": "a", "Β": "b", "Ε": "e", "Ζ": "z", "Η": "h", "Ι": "i", "Κ": "k", "Μ": "m",
        "Ν": "n", "Ο": "o", "Ρ": "p", "Τ": "t", "Υ": "y", "Χ": "x",
        "А": "a", "В": "b", "Е": "e", "З": "3", "К": "k", "М": "m", "Н": "h", "О": "o",
        "Р": "p", "С": "c", "Т": "t", "У": "y", "Х": "x", "Ѕ": "s", "І": "i", "Ј": "j",
        "Ӏ": "i", "Ԁ": "d", "Ԍ": "g", "Ԛ": "q", "Ԝ": "w",
    }
)  # fmt: skip
# ... and after it: lower-case look-alikes, small capitals, and digits and signs that
# stand in for letters ('H0me 0ffice', 'V1sas', 'lmmigration' with a lower-case L).
_LOWER_LOOKALIKES: Final = str.maketrans(
    {
        "α": "a", "β": "b", "γ": "y", "ε": "e", "η": "n", "ι": "i", "κ": "k", "μ": "u",
        "ν": "v", "ο": "o", "ρ": "p", "σ": "o", "ς": "s", "τ": "t", "υ": "u", "χ": "x",
        "ω": "w",
        "а": "a", "в": "b", "г": "r", "е": "e", "з": "e", "к": "k", "м": "m", "н": "h",
        "о": "o", "п": "n", "р": "p", "с": "c", "т": "t", "у": "y", "х": "x", "ѕ": "s",
        "і": "i", "ј": "j", "һ": "h", "ӏ": "i", "ԁ": "d", "ԍ": "g", "ԛ": "q", "ԝ": "w",
        "ѵ": "v", "ց": "g", "օ": "o", "ս": "u",
        "ı": "i", "ɩ": "i", "ɪ": "i", "ł": "i", "ø": "o", "đ": "d", "ħ": "h", "ɡ": "g",
        "ɑ": "a", "ʜ": "h", "ᴏ": "o", "ᴍ": "m", "ʙ": "b", "ᴇ": "e", "ɢ": "g", "ʀ": "r",
        "ᴀ": "a", "ᴛ": "t", "ɴ": "n", "ᴅ": "d", "ꜰ": "f", "ᴄ": "c", "ᴠ": "v", "ꜱ": "s",
        "0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "9": "g",
        "@": "a", "$": "s", "!": "i", "|": "i", "l": "i", "€": "e",
    }
)  # fmt: skip
# Latin letters that do not decompose into a-z plus accents, so that Welsh, Irish, Nordic
# and older English spellings still read ('ß' is already 'ss' after case folding).
_LATIN_LETTERS: Final = str.maketrans(
    {"æ": "ae", "œ": "oe", "ð": "d", "þ": "th", "ŋ": "n", "ĸ": "k", "ŧ": "t", "ƒ": "f"}
)
# Modifier letters written as apostrophes ('Hawaiʻi', 'Mary\u02bcs'): separators, not letters.
_APOSTROPHES: Final = frozenset("\u02bb\u02bc\u02bd")


def _term_res(term: str) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """Two patterns for a term, as it looks after folding (an 'l' folds to 'i').

    The first is §2's: the letters in a row, a space optional where the term has one,
    anywhere in the name. The second allows a space between any two letters, but only from
    the start of a word to the end of one, so 'immi gration' and 'hom e office' match while
    'tim migration' and 'davis associates' do not.
    """
    folded = term.translate(_LOWER_LOOKALIKES)
    contiguous = re.escape(folded).replace(r"\ ", " ?")
    spread = " ?".join(re.escape(c) for c in folded.replace(" ", ""))
    return re.compile(contiguous), re.compile(rf"(?<![a-z]){spread}(?![a-z])")


def _word_re(term: str) -> re.Pattern[str]:
    """A term as whole words (a plural too), a space optional where it has one (after
    folding)."""
    words = re.escape(term.translate(_LOWER_LOOKALIKES)).replace(r"\ ", " ?")
    return re.compile(rf"(?<![a-z]){words}s?(?![a-z])")


_TERM_RES: Final = (
    *(r for t in IMMIGRATION_TERMS + EXTRA_IMMIGRATION_TERMS for r in _term_res(t)),
    *(_word_re(t) for t in WORD_TERMS),
)
_NEAR_WORDS_FOLDED: Final = tuple(t.translate(_LOWER_LOOKALIKES) for t in _NEAR_WORDS)
_DROPPED_CATEGORIES: Final = frozenset({"Mn", "Me", "Cf", "Cc", "Co", "Cn", "Cs"})


def _latin(text: str) -> str:
    """``text`` in lower case with every look-alike and Latin letter made a-z where it can."""
    s = unicodedata.normalize("NFKC", text).translate(_UPPER_LOOKALIKES).casefold()
    s = unicodedata.normalize("NFKD", s)
    # accents, zero-width and other invisible characters, controls: gone
    s = "".join(c for c in s if unicodedata.category(c) not in _DROPPED_CATEGORIES)
    return s.translate(_LATIN_LETTERS).translate(_LOWER_LOOKALIKES)


def has_unreadable_letters(name: str) -> bool:
    """True when ``name`` holds a letter that does not fold to a-z (Cherokee 'Ꮋ', Lisu 'ꓲ',
    Chinese, Arabic...): such a name cannot be checked against the immigration terms."""
    return any(
        unicodedata.category(c).startswith("L") and not ("a" <= c <= "z")
        for c in _latin(name)
        if c not in _APOSTROPHES
    )


def fold(text: str) -> str:
    """``text`` as plain lower-case Latin words separated by single spaces."""
    words = re.split(r"[^a-z]+", _latin(text))
    # 'I m m i g r a t i o n' and 'V.I.S.A.S': runs of single letters are one word
    out: list[str] = []
    glued = False
    for w in words:
        if not w:
            continue
        if len(w) == 1 and glued:
            out[-1] += w
        else:
            out.append(w)
            glued = len(w) == 1
    return " ".join(out)


def names_immigration_enforcement(name: str) -> bool:
    """True when ``name`` names immigration enforcement (contract §2), however disguised.

    Case, compatibility forms (full-width, mathematical letters), accents, invisible
    characters, look-alike letters from other scripts, digits standing in for letters and
    odd separators ('Home-Office', 'HomeOffice') are all folded away first. A break inside
    a term ('Immi-gration', 'B order Force') counts when the match covers whole words. The
    terms are §2's four and :data:`EXTRA_IMMIGRATION_TERMS`. A name with letters carewall
    cannot read is not matched here: see :func:`has_unreadable_letters`.
    """
    folded = fold(name)
    if any(r.search(folded) for r in _TERM_RES):
        return True
    return any(one_slip_from(w, _NEAR_WORDS_FOLDED) for w in folded.split())


def one_slip_from(word: str, terms: Iterable[str]) -> bool:
    """Whether ``word`` is within one typing slip of one of ``terms`` (a letter missing,
    added, changed, or two swapped: the optimal string alignment distance)."""
    return any(OSA.distance(word, t, score_cutoff=1) <= 1 for t in terms)


def name_key(name: str) -> str:
    """A name as compared for being one body's: folded, with no spaces ('Returns-Liaison
    Unit', 'RETURNS LIAISON UNIT' and 'Returns Liaison  Unit' are one)."""
    return fold(name).replace(" ", "")


def check_name(value: object, *, field: str) -> str:
    """A name: non-blank printable text, at most 200 characters (never echoed in errors)."""
    if not isinstance(value, str):
        raise InputError("must be a string", field=field, fix='write name = "..."')
    if not value.strip():
        raise InputError("must not be blank", field=field, fix="give the name")
    if len(value) > MAX_NAME_LENGTH:
        raise InputError(
            f"is longer than {MAX_NAME_LENGTH} characters",
            field=field,
            fix=f"shorten it to at most {MAX_NAME_LENGTH} characters",
        )
    if not value.isprintable():
        raise InputError(
            "must be printable text",
            field=field,
            fix="remove line breaks, tabs, zero-width and other control or invisible characters",
        )
    return value
