"""Witness configuration: the witnesses a log asks, and the logs a witness witnesses.

One TOML file serves both sides (see docs/witnesses.md)::

    [[witness]]                       # asked by this instance's log
    vkey = "witness.b.example+1a2b3c4d+BF…"   # cosignature/v1 key (type 0x04)
    url = "https://b.example/witness"  # submission prefix: POST <url>/add-checkpoint

    [[log]]                           # witnessed by `carewall witness serve`
    vkey = "carewall.a.example/log+5e6f7a8b+AY…"  # the log's key; its name is the origin

A witness's name is its key's name; one public key under two names, or two witnesses under
one name, is refused (a quorum counts distinct keys).
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from carewall.errors import InputError
from carewall.ledger.note import ALG_COSIGNATURE_V1, Verifier
from carewall.witness.cosignature import WitnessKey, parse_witness_vkey

__all__ = ["AskedWitness", "WitnessConfig", "WitnessedLog", "load_config", "parse_config"]


@dataclass(frozen=True)
class AskedWitness:
    key: WitnessKey
    url: str  # the submission prefix, without a trailing slash

    @property
    def name(self) -> str:
        return self.key.name


@dataclass(frozen=True)
class WitnessedLog:
    origin: str
    verifiers: tuple[Verifier, ...]


@dataclass(frozen=True)
class WitnessConfig:
    witnesses: tuple[AskedWitness, ...] = ()
    logs: Mapping[str, WitnessedLog] = field(default_factory=dict)


def _url(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise InputError(
            "must be an http:// or https:// URL",
            field=where,
            fix="the witness's submission prefix, e.g. https://witness.example/w",
        )
    return value.rstrip("/")


def check_distinct(keys: Iterable[WitnessKey], where: str) -> None:
    """Refuse one public key under two names, and one name for two keys."""
    names: dict[str, bytes] = {}
    pubs: dict[bytes, str] = {}
    for k in keys:
        if pubs.get(k.public_key, k.name) != k.name:
            raise InputError(
                f"witnesses {pubs[k.public_key]} and {k.name} share one public key",
                field=where,
                fix="a witness key signs under one name only; list each witness once",
            )
        if names.get(k.name, k.public_key) != k.public_key:
            raise InputError(f"two witness keys are named {k.name}", field=where)
        pubs[k.public_key] = k.name
        names[k.name] = k.public_key


def _table_list(doc: Mapping[str, Any], name: str) -> list[Mapping[str, Any]]:
    items = doc.get(name, [])
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise InputError(f"[[{name}]] must be a list of tables", field=name)
    return items


def parse_config(doc: Mapping[str, Any]) -> WitnessConfig:
    unknown = set(doc) - {"witness", "log"}
    if unknown:
        raise InputError(
            f"unknown key {sorted(unknown)[0]!r}",
            field=sorted(unknown)[0],
            fix="use [[witness]] or [[log]]",
        )
    asked: list[AskedWitness] = []
    for i, item in enumerate(_table_list(doc, "witness")):
        where = f"witness[{i}]"
        extra = set(item) - {"vkey", "url"}
        if extra:
            raise InputError(f"unknown key {sorted(extra)[0]!r}", field=where, fix="use vkey, url")
        vkey = item.get("vkey")
        if not isinstance(vkey, str):
            raise InputError("vkey is required", field=f"{where}.vkey")
        key = parse_witness_vkey(vkey, f"{where}.vkey")
        asked.append(AskedWitness(key, _url(item.get("url"), f"{where}.url")))
    check_distinct((w.key for w in asked), "witness")
    logs: dict[str, list[Verifier]] = {}
    for i, item in enumerate(_table_list(doc, "log")):
        where = f"log[{i}].vkey"
        if set(item) - {"vkey"} or not isinstance(item.get("vkey"), str):
            raise InputError("each [[log]] holds exactly one vkey", field=where)
        try:
            v = Verifier.from_vkey(str(item["vkey"]))
        except InputError as e:
            raise InputError(e.message, field=where, fix=e.fix) from e
        if v.alg == ALG_COSIGNATURE_V1:
            raise InputError("a log key cannot be a cosignature key", field=where)
        logs.setdefault(v.name, []).append(v)
    return WitnessConfig(tuple(asked), {o: WitnessedLog(o, tuple(vs)) for o, vs in logs.items()})


def load_config(path: Path) -> WitnessConfig:
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise InputError("no witness configuration at that path", field="--witnesses") from e
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise InputError(
            f"the witness configuration cannot be read ({e})",
            field="--witnesses",
            fix="write it as TOML; see docs/witnesses.md",
        ) from e
    try:
        return parse_config(doc)
    except InputError as e:
        raise InputError(
            e.message, field=f"--witnesses {e.field}" if e.field else "--witnesses", fix=e.fix
        ) from e
