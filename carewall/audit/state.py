"""What an auditor remembers between runs (``--state``), written atomically.

The state holds the last verified tree (origin, size, root, compact-range frontier, the
signed checkpoint), every finding so far (a failure is never forgotten), and the replay's
state (register, policy, every request's progress, running counts), so that an
incremental run continues the replay where the last one stopped. Older versions are
refused: their runs checked less (version 1 did not replay at all) or were not sealed.

The file is sealed: an HMAC-SHA256 under a key of the auditor's own (:func:`state_key`,
by default in the auditor's configuration directory, never beside the state), so that a
state changed by anyone without the key (findings erased, notices owed set to nought) is
refused rather than continued from. The seal is only as safe as the key: keep it where
the log's operator cannot read it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from carewall.audit.report import Finding
from carewall.errors import InputError

__all__ = [
    "STATE_VERSION",
    "AuditState",
    "default_key_path",
    "load_state",
    "save_state",
    "state_bytes",
    "state_key",
]

STATE_VERSION = 4
_KEY_BYTES = 32


def default_key_path() -> Path:
    """``$XDG_CONFIG_HOME/carewall/audit-state.key`` (``~/.config`` by default)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "carewall" / "audit-state.key"


def _key_error(message: str, fix: str) -> InputError:
    return InputError(message, field="--state-key", fix=fix)


def state_key(path: Path) -> tuple[bytes, bool]:
    """The sealing key kept at ``path`` (64 hex digits), made there if there is none yet
    (mode 0600, its directory 0700); and whether it was made now. A key file that others
    may read or write is refused: whoever can read it can reseal a changed state."""
    try:
        made = False
        try:
            text = path.read_text(encoding="ascii")
        except FileNotFoundError:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="ascii") as f:
                f.write(secrets.token_hex(_KEY_BYTES) + "\n")
            text, made = path.read_text(encoding="ascii"), True
        mode = path.stat().st_mode
    except (OSError, UnicodeDecodeError) as e:
        raise _key_error(
            "cannot read or make the audit state's key file",
            "point --state-key at a file this user can read, or at a new path to make one",
        ) from e
    if mode & 0o077:
        raise _key_error(
            "the audit state's key file can be read or written by other users",
            f"chmod 600 {path}, or point --state-key at a new path to make a new key "
            "(then give a new --state path too)",
        )
    try:
        key = bytes.fromhex(text.strip())
    except ValueError:
        key = b""
    if len(key) != _KEY_BYTES:
        raise _key_error(
            "the audit state's key file does not hold a key (64 hex digits)",
            "point --state-key at the key file `carewall audit` made, or at a new path",
        )
    return key, made


_encode_sorted = msgspec.json.Encoder(order="sorted").encode


def state_bytes(body: dict[str, Any]) -> bytes:
    """``json.dumps(body, sort_keys=True, separators=(",", ":"))`` as UTF-8 bytes: the
    form a state is sealed and written in. msgspec writes the same bytes for ASCII-only
    text about ten times faster (a test compares the two on random documents); anything
    else (non-ASCII text, which json.dumps escapes; a number msgspec cannot write) takes
    the reference."""
    try:
        data = _encode_sorted(body)
    except (msgspec.EncodeError, OverflowError, TypeError):
        data = b""
    if data and data.isascii():
        return data
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def _seal(body: dict[str, Any], key: bytes) -> str:
    return hmac.new(key, state_bytes(body), hashlib.sha256).hexdigest()


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
                "`carewall audit` that kept less of its replay, or did not seal it",
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


def load_state(path: Path, key: bytes | Callable[[], bytes]) -> AuditState | None:
    """The state saved at ``path`` and sealed with ``key``, or None when there is none yet.

    ``key`` may be a function giving it, called only once the file has been read as a
    state of this version: a file that is no state at all is refused as such first."""
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
    if isinstance(obj, dict) and obj.get("version") == STATE_VERSION:
        seal = obj.pop("seal", None)
        secret = key() if callable(key) else key
        if not isinstance(seal, str) or not hmac.compare_digest(seal, _seal(obj, secret)):
            raise InputError(
                "the audit state file does not carry this auditor's seal: it was changed "
                "after `carewall audit` wrote it, or sealed with another key",
                field="--state",
                fix="keep --state where the log's operator cannot write and its key "
                "(--state-key) where they cannot read; to start over, give a new --state "
                "path (the first run replays the whole log)",
            )
    return AuditState.from_json(obj)


def save_state(path: Path, state: AuditState, key: bytes) -> None:
    """Write ``state``, sealed with ``key``, so that a crash leaves either the old file or
    the new one."""
    body = state.to_json()
    body["seal"] = _seal(body, key)
    data = state_bytes(body) + b"\n"
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
