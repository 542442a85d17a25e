"""The auditor's witness check: the checkpoint it verifies MUST carry a quorum of valid
cosignatures (https://c2sp.org/tlog-cosignature) from witnesses the auditor chose.

A split view (one tree for one reader, another for the next) cannot gather cosignatures
from honest witnesses for both trees, since each witness cosigns only checkpoints that
extend what it cosigned before. The quorum counts distinct witness public keys: a line
repeated, a key listed or signing under two names, or a key the auditor did not name,
counts once or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from carewall.errors import InputError, VerificationError
from carewall.witness.cosignature import WitnessKey, cosigned_by, parse_witness_vkey

__all__ = ["check_quorum", "load_witness_keys"]


def load_witness_keys(vkeys: Sequence[str], files: Sequence[Path]) -> list[WitnessKey]:
    """``--witness VKEY`` values and ``--witness-file FILE`` lines (blank and # lines skipped)."""
    keys = [parse_witness_vkey(v, "--witness") for v in vkeys]
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise InputError("the witness file cannot be read", field="--witness-file") from e
        for n, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if line and not line.startswith("#"):
                keys.append(parse_witness_vkey(line, f"--witness-file line {n}"))
    return keys


def check_quorum(note: str, witnesses: Sequence[WitnessKey], quorum: int) -> list[str]:
    """The names of the chosen witnesses that cosigned ``note``; VerificationError (naming
    those that did not) when fewer than ``quorum`` distinct keys did."""
    distinct = {w.public_key for w in witnesses}
    if quorum < 0:
        raise InputError("must not be negative", field="--quorum")
    if quorum > len(distinct):
        raise InputError(
            f"a quorum of {quorum} needs at least {quorum} distinct witness keys, "
            f"but {len(distinct)} were given",
            field="--quorum",
            fix="add --witness keys, or lower --quorum",
        )
    signed = cosigned_by(note, witnesses)
    if len(signed) < quorum:
        missing = sorted({w.name for w in witnesses if w.public_key not in signed})
        raise VerificationError(
            f"the checkpoint carries {len(signed)} of the {quorum} witness cosignatures "
            f"required; not cosigned by: {', '.join(missing)}",
            field="--quorum",
            fix="the witnesses may be behind (try again shortly) or may have refused a split "
            "view: keep the checkpoint as evidence",
        )
    return sorted(signed.values())
