"""The policy in force, as the log states it (contract §5, §6).

Entry 0 MUST be a ``policy`` entry with ``change: "init"``; every later change is a
``policy`` entry with ``change: "update"``. Each carries the full local policy text, which
is loaded again here with the packaged pledge (:meth:`carewall.policy.Engine.load`): the
text MUST load (no dropped, altered or shadowed pledge rule, no local ``pledge/…`` id), its
pledge hash MUST be the packaged pledge's, and its policy hash and rule ids MUST be the ones
the entry states. A log has few policies, so engines are cached by text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from carewall.errors import CarewallError
from carewall.policy import Engine

__all__ = ["PolicyReplay"]

# Loaded engines by policy text, shared by every replay in this process (a log has few
# policies, and an incremental run or a test suite meets the same ones again).
_ENGINES: dict[str, Engine | str] = {}
_MAX_ENGINES = 16


def _load(text: str) -> Engine | str:
    """The engine for ``text``, or why it does not load."""
    cached = _ENGINES.get(text)
    if cached is None:
        try:
            cached = Engine.load(text)
        except CarewallError as e:
            cached = f"its policy text does not load: {e.message}"
        except Exception as e:  # Cedar itself failing is a failure, never a pass
            cached = f"its policy text does not load ({type(e).__name__})"
        if len(_ENGINES) >= _MAX_ENGINES:
            _ENGINES.pop(next(iter(_ENGINES)))
        _ENGINES[text] = cached
    return cached


class PolicyReplay:
    """The policy in force and the engine that decides with it."""

    def __init__(self) -> None:
        self.text: str | None = None  # the local policy text in force
        self.hash: str | None = None  # its hash, as logged
        self.index: int | None = None  # the policy entry that put it in force
        self.valid = False  # whether that entry checked out (else nothing can be decided)
        self._engine: Engine | None = None

    def engine_for(self, text: str) -> Engine | str:
        """The engine for ``text``, or why it does not load."""
        return _load(text)

    @property
    def engine(self) -> Engine | None:
        """The engine in force, or None when no valid policy is in force."""
        if not self.valid or self.text is None:
            return None
        if self._engine is None:
            engine = self.engine_for(self.text)
            self._engine = engine if isinstance(engine, Engine) else None
        return self._engine

    def apply(self, entry: Mapping[str, Any], index: int) -> list[str]:
        """Put a ``policy`` entry in force; return what is wrong with it."""
        problems: list[str] = []
        if index == 0 and entry["change"] != "init":
            problems.append("the log's first entry must be the initial policy (change 'init')")
        if index > 0 and entry["change"] == "init":
            problems.append("only the log's first entry may be the initial policy")
        self.text, self.hash, self.index = entry["text"], entry["policy"], index
        self._engine = None
        engine = self.engine_for(entry["text"])
        if isinstance(engine, str):
            problems.append(engine)
        else:
            if entry["pledge"] != engine.pledge_hash:
                problems.append("field 'pledge' is not the hash of the packaged pledge")
            if entry["policy"] != engine.policy_hash:
                problems.append("field 'policy' is not the hash of the policy its text loads")
            if list(entry["rules"]) != sorted(engine.rule_ids):
                problems.append("field 'rules' is not the rule ids of the policy its text loads")
        self.valid = not problems
        return problems

    def missing(self) -> str:
        """Why nothing can be decided now (no valid policy in force)."""
        if self.index is None:
            return "no policy is in force (the log must begin with the initial policy)"
        return f"the policy in force (entry {self.index}) did not check out"

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "hash": self.hash, "index": self.index, "valid": self.valid}

    @classmethod
    def from_json(cls, obj: Any) -> PolicyReplay:
        out = cls()
        text, digest, index = obj["text"], obj["hash"], obj["index"]
        out.text = None if text is None else str(text)
        out.hash = None if digest is None else str(digest)
        out.index = None if index is None else int(index)
        out.valid = bool(obj["valid"])
        return out
