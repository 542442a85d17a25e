"""The log's Ed25519 signing key on disk.

A key file holds one C2SP signed-note private key (``PRIVATE+KEY+name+hex8+base64``) and
MUST be readable by its owner only (mode 0600): it is created that way, never overwritten,
and refused when group or others could read it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from carewall.errors import InputError
from carewall.ledger.note import Signer
from carewall.storage.db import normalise_url

__all__ = ["create_key", "default_key_path", "load_key"]

_FALLBACK = "carewall-log.key"


def default_key_path(db_url: str | None = None) -> Path:
    """``$CAREWALL_KEY``, else ``<file>.key`` beside a SQLite file, else ``./carewall-log.key``."""
    env = os.environ.get("CAREWALL_KEY")
    if env:
        return Path(env)
    url = normalise_url(db_url)
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[1] if ":///" in url else ""
        path = path.split("?", 1)[0]
        if path and path != ":memory:":
            return Path(path + ".key")
    return Path(_FALLBACK)


def create_key(path: Path, name: str) -> Signer:
    """Generate a new key named ``name`` and write it to ``path`` (0600); never overwrite."""
    signer = Signer.generate(name)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as e:
        raise InputError(
            "the key file already exists; refusing to overwrite a log key",
            field="--key",
            fix="choose a new key file path, or open the existing ledger with this key",
        ) from e
    except OSError as e:
        raise InputError(
            f"cannot create the key file ({e.strerror})",
            field="--key",
            fix="check the directory exists and is writable",
        ) from e
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(signer.skey() + "\n")
        f.flush()
        os.fsync(f.fileno())
    return signer


def load_key(path: Path) -> Signer:
    """Read the signing key at ``path``; refuse it if group or others may read or write it."""
    try:
        st = path.stat()
    except FileNotFoundError as e:
        raise InputError(
            "the log key file does not exist",
            field="--key",
            fix="pass --key with the ledger's key file, or set CAREWALL_KEY",
        ) from e
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise InputError(
            "the log key file is readable or writable by group or others",
            field="--key",
            fix=f"run: chmod 600 {path}",
        )
    try:
        text = path.read_text(encoding="ascii").strip()
    except PermissionError as e:
        raise InputError(
            "the log key file cannot be read by this user",
            field="--key",
            fix="run as the key's owner, or fix its ownership",
        ) from e
    except (OSError, UnicodeDecodeError) as e:
        raise InputError("the log key file cannot be read", field="--key") from e
    try:
        return Signer.from_skey(text)
    except Exception as e:  # the note module raises its own error types for malformed keys
        raise InputError(
            "the log key file does not hold a signed-note private key",
            field="--key",
            fix="pass the key file written when the ledger was created",
        ) from e
