"""What an auditor remembers between runs (``--state``), written atomically.

The state holds the last verified tree (origin, size, root, compact-range frontier, the
signed checkpoint), every finding so far (a failure is never forgotten), and the replay's
state (register, policy, every request's progress, running counts), so that an
incremental run continues the replay where the last one stopped. Version 1 files, written
before the auditor replayed the log, are refused: their runs checked far less.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from carewall.audit.report import Finding
from carewall.errors import InputError

__all__ = ["STATE_VERSION", "AuditState", "load_state", "save_state"]

STATE_VERSION = 3


def _malformed(e: BaseException | None = None) -> InputError:
    err = InputError(
        "the audit state file is malformed",
        field="--state",
        fix="point --state at a file written by `carewall audit`, or a new path",
    )
    if e is not None:
        err.__cause__ = e
    return err


@dataclass
class AuditState:
    """The last verified tree, the findings so far, and the replay to continue."""

    origin: str
    size: int
    root: bytes
    frontier: list[bytes]
    checkpoint: str
    findings: list[Finding] = field(default_factory=list)
    replay: dict[str, Any] | None = None  # Replay.to_json(); None when nothing was replayed

    def to_json(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "origin": self.origin,
            "size": self.size,
            "root": base64.b64encode(self.root).decode(),
            "frontier": [base64.b64encode(h).decode() for h in self.frontier],
            "checkpoint": self.checkpoint,
            "findings": [f.to_json() for f in self.findings],
            "replay": self.replay,
        }

    @classmethod
    def from_json(cls, obj: Any) -> AuditState:
        version = obj.get("version") if isinstance(obj, dict) else None
        if isinstance(version, int) and version < STATE_VERSION:
            raise InputError(
                f"the audit state file is version {version}, written by an older "
                "`carewall audit` that kept less of its replay",
                field="--state",
                fix="start again with a new --state path; the first run replays the whole log",
            )
        if version != STATE_VERSION:
            raise _malformed()
        try:
            replay = obj["replay"]
            if replay is not None and not isinstance(replay, dict):
                raise TypeError("replay")
            return cls(
                origin=str(obj["origin"]),
                size=int(obj["size"]),
                root=base64.b64decode(obj["root"], validate=True),
                frontier=[base64.b64decode(h, validate=True) for h in obj["frontier"]],
                checkpoint=str(obj["checkpoint"]),
                findings=[Finding.from_json(f) for f in obj["findings"]],
                replay=replay,
            )
        except (KeyError, TypeError, ValueError, binascii.Error) as e:
            raise _malformed(e) from e


def load_state(path: Path) -> AuditState | None:
    """The state saved at ``path``, or None when there is none yet."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError("cannot read the audit state file", field="--state") from e
    try:
        obj = json.loads(text)
    except ValueError as e:
        raise InputError("the audit state file is not JSON", field="--state") from e
    return AuditState.from_json(obj)


def save_state(path: Path, state: AuditState) -> None:
    """Write ``state`` so that a crash leaves either the old file or the new one."""
    data = json.dumps(state.to_json(), sort_keys=True, separators=(",", ":")).encode() + b"\n"
    directory = path.resolve().parent
    try:
        fd, tmp = tempfile.mkstemp(prefix=".audit-", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as e:
        raise InputError("cannot write the audit state file", field="--state") from e
