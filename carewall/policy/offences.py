"""Offence ids (contract §1): the statute-id grammar, immigration offences, the Acts list.

Pure: no Cedar, no database. An offence id is ``<act words>_<year>_s<section>[letters]``
optionally followed by ``_<subsection>`` parts (``theft_act_1968_s1``,
``immigration_act_1971_s24_1_b``). An id is an **immigration offence** when it equals one of
the families in the vocabulary, or begins with ``<family>_`` (a subsection) or
``<family><letter>`` (s24 → s24a, s24b…), so no spelling of a subsection escapes the rule.

The public log carries an offence id only when its Act is on the packaged list, and
otherwise the word ``unlisted``, so a requester can never write free text into the log. The
policy decides on that same public form, so an auditor can decide every request again from
the log alone. Every immigration Act is on the list, so ``unlisted`` is never an
immigration offence; and since an Act can be written another way (its full short title,
``asylum_and_immigration_treatment_of_claimants_etc_act_2004``, for the list's
``asylum_and_immigration_act_2004``), an Act that is not on the list but whose words
name immigration, asylum, nationality or borders is refused where a request or agreement
is read (:func:`unlisted_immigration_act`), never passed on as ``unlisted``.
"""

from __future__ import annotations

import re
from typing import Final

from carewall.ids import is_id
from carewall.policy.names import one_slip_from
from carewall.vocab import vocabulary

__all__ = [
    "UNLISTED",
    "UNLISTED_IMMIGRATION_ACT",
    "UNLISTED_IMMIGRATION_ACT_FIX",
    "act_of",
    "is_immigration_offence",
    "public_offence",
    "unlisted_immigration_act",
]

UNLISTED: Final = "unlisted"
_ACT = re.compile(r"([a-z_]+_[0-9]{4})_s[0-9]", re.ASCII)
# Words that make an Act one about immigration (the list's immigration Acts all have one).
# Words of an Act's id that make it an immigration Act (the Illegal Migration Act 2023,
# the UK Borders Act 2007, ...); a word one typing slip from one of them counts too
# ('imigration', 'inmigration', 'immigartion'), as names.py reads 'immigration'.
_IMMIGRATION_WORDS: Final = frozenset(
    {"immigration", "asylum", "nationality", "borders", "border", "migration", "deportation"}
)
UNLISTED_IMMIGRATION_ACT: Final = (
    "names an Act about immigration, asylum, nationality or borders that is not on the "
    "packaged list of Acts"
)
UNLISTED_IMMIGRATION_ACT_FIX: Final = (
    "write the Act as the list has it (e.g. asylum_and_immigration_act_2004_s2 for the "
    "Asylum and Immigration (Treatment of Claimants, etc.) Act 2004); an immigration "
    "offence is an immigration purpose, which this firewall refuses"
)


def act_of(offence: str) -> str | None:
    """The Act id of a well-formed offence id (``theft_act_1968``), else None."""
    if not is_id(offence, "offence"):
        return None
    m = _ACT.match(offence)
    return m.group(1) if m else None


def is_immigration_offence(offence: str | None) -> bool:
    """True for an immigration status offence (§1), in any subsection or lettered variant."""
    if offence is None:
        return False
    for family in vocabulary()["immigration_offence"]:
        if offence == family:
            return True
        if offence.startswith(family):
            rest = offence[len(family) :]
            if rest[0] == "_" or ("a" <= rest[0] <= "z"):
                return True
    return False


def unlisted_immigration_act(offence: str) -> bool:
    """True when ``offence`` names an Act off the list whose words name immigration.

    Such an id would otherwise reach the policy as ``unlisted``, which is never an
    immigration offence: the full short title of a listed Act would escape the rule.
    """
    act = act_of(offence)
    if act is None or act in vocabulary()["act"]:
        return False
    return any(_immigration_word(w) for w in act.split("_"))


def _immigration_word(word: str) -> bool:
    if word in _IMMIGRATION_WORDS:
        return True
    return len(word) >= 7 and one_slip_from(word, _IMMIGRATION_WORDS)


def public_offence(offence: str | None) -> str | None:
    """The form of ``offence`` that the log carries and the policy decides on.

    None stays None; an id whose Act is on the packaged list stays as it is; anything
    else (an unknown Act, or a string that is not an offence id at all) is ``unlisted``.
    """
    if offence is None:
        return None
    act = act_of(offence)
    return offence if act is not None and act in vocabulary()["act"] else UNLISTED
