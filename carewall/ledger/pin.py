"""The log's pinned identity: the verifier key the operator publishes, never read back.

A log's verifier key is stored beside its entries, but whoever can write that database can
also replace the key, rewrite history and re-sign every checkpoint; the stored key would
then vouch for the forgery. So the key that counts is the one the operator published when
the instance was created (``carewall init`` writes it to a ``.vkey`` file and prints it):
``carewall ledger verify``, ``carewall serve`` and ``carewall demo`` take it as a *pin*
(``--log-key VKEY``, ``--log-key-file FILE``, or ``$CAREWALL_LOG_VKEY`` /
``$CAREWALL_LOG_VKEY_FILE``) and refuse a database, a signing key file or a checkpoint that
does not match it. An outside auditor gets it the same way: from the operator's publication
or from witnesses, never from the server it audits.
"""

from __future__ import annotations

import base64
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from carewall.errors import CarewallError, InputError, LedgerError
from carewall.ledger import publisher
from carewall.ledger.checkpoint import open_checkpoint
from carewall.ledger.keys import default_key_path, load_key
from carewall.ledger.log import Ledger
from carewall.ledger.note import ALG_ED25519, Verifier
from carewall.storage.db import open_store

__all__ = [
    "ENV_FILE",
    "ENV_KEY",
    "LogKeyMismatch",
    "Pin",
    "check_checkpoint",
    "check_database",
    "check_ledger",
    "check_signing_key",
    "check_stored",
    "check_vkey_out",
    "key_problem",
    "parse_vkey",
    "publish_vkey",
    "read_vkey_file",
    "resolve_pin",
    "short",
    "signing_key_path",
    "unpinned_warning",
    "vkey_out_path",
    "vkey_path_for",
]

ENV_KEY = "CAREWALL_LOG_VKEY"
ENV_FILE = "CAREWALL_LOG_VKEY_FILE"
HOW_TO_PIN = f"--log-key-file FILE, --log-key VKEY or ${ENV_KEY}"
_MAX_FILE = 4096  # bytes: a verifier key is about 100


class LogKeyMismatch(CarewallError):
    """The instance's key is not the pinned one: refuse to run (exit 2, one line)."""

    status = 409
    exit_code = 2
    code = "log_key_mismatch"


@dataclass(frozen=True)
class Pin:
    """A verifier key the operator published, and where this process was given it."""

    vkey: str
    field: str  # the option or variable it came from, for error messages

    @property
    def verifier(self) -> Verifier:
        return Verifier.from_vkey(self.vkey)

    @property
    def name(self) -> str:
        return self.vkey.split("+", 1)[0]


def short(vkey: str) -> str:
    """``name+hex8``: enough to tell two keys apart in one line."""
    return "+".join(vkey.strip().split("+", 2)[:2])


def _identity(vkey: str) -> tuple[str, bytes] | None:
    """(name, alg || key) of a well-formed verifier key, else None."""
    try:
        Verifier.from_vkey(vkey)
    except CarewallError:
        return None
    name, _hex8, b64 = vkey.strip().split("+", 2)
    return name, base64.b64decode(b64)


def parse_vkey(text: str, field: str) -> str:
    """A log verifier key (Ed25519, ``name+hex8+base64``), or an InputError naming ``field``."""
    vkey = text.strip()
    fix = "give the log's verifier key as published, e.g. the line in the .vkey file"
    if vkey.startswith("PRIVATE+KEY+"):
        raise InputError(
            "is a private signing key, not the published verifier key",
            field=field,
            fix=fix + " (never pass or publish the private key)",
        )
    try:
        verifier = Verifier.from_vkey(vkey)
    except InputError as e:
        raise InputError(f"is not a verifier key: {e.message}", field=field, fix=fix) from e
    if verifier.alg != ALG_ED25519:
        raise InputError(
            "is not a log key (a carewall log signs with an Ed25519 key, type 0x01)",
            field=field,
            fix=fix + "; a witness's cosignature key is not the log's key",
        )
    return vkey


def read_vkey_file(path: Path, field: str) -> str:
    """The one verifier key in ``path`` (blank lines and ``#`` comments ignored).

    Refused when group or others may write it: a pin anyone could change pins nothing.
    """
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):
            raise InputError("is not a regular file", field=field, fix="pass the .vkey file")
        if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise InputError(
                "the pinned key file can be changed by group or others",
                field=field,
                fix=f"run: chmod go-w {path}",
            )
        with path.open("rb") as f:
            data = f.read(_MAX_FILE + 1)
    except FileNotFoundError as e:
        raise InputError(
            "the pinned key file does not exist",
            field=field,
            fix="pass the .vkey file `carewall init` wrote, or the key as published",
        ) from e
    except OSError as e:
        raise InputError(f"cannot read the pinned key file ({e.strerror})", field=field) from e
    if len(data) > _MAX_FILE:
        raise InputError("is too large to be a verifier key file", field=field)
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError as e:
        raise InputError("is not a verifier key file (not ASCII)", field=field) from e
    lines = [ln.strip() for ln in text.splitlines()]
    keys = [ln for ln in lines if ln and not ln.startswith("#")]
    if len(keys) != 1:
        raise InputError(
            "must hold exactly one verifier key line",
            field=field,
            fix="put the published key, name+hex8+base64, on a line of its own",
        )
    return parse_vkey(keys[0], field)


def resolve_pin(
    log_key: str | None, log_key_file: str | Path | None, env: Mapping[str, str] | None = None
) -> Pin | None:
    """The pin from ``--log-key`` / ``--log-key-file``, else from the environment, else None."""
    environ = os.environ if env is None else env
    if log_key is not None and log_key_file is not None:
        raise InputError(
            "give the pinned key once", field="--log-key", fix="use --log-key or --log-key-file"
        )
    if log_key is not None:
        return Pin(parse_vkey(log_key, "--log-key"), "--log-key")
    if log_key_file is not None:
        return Pin(read_vkey_file(Path(log_key_file), "--log-key-file"), "--log-key-file")
    key, file = environ.get(ENV_KEY) or None, environ.get(ENV_FILE) or None
    if key is not None and file is not None:
        raise InputError(
            f"both {ENV_KEY} and {ENV_FILE} are set", field=ENV_KEY, fix="set only one of them"
        )
    if key is not None:
        return Pin(parse_vkey(key, ENV_KEY), ENV_KEY)
    if file is not None:
        return Pin(read_vkey_file(Path(file), ENV_FILE), ENV_FILE)
    return None


def key_problem(stored_vkey: str | None, stored_origin: str | None, pin: Pin) -> str | None:
    """Why the key and origin stored in a database are not the pinned ones, or None."""
    if stored_vkey is None:
        return "the database records no verifier key"
    stored = _identity(stored_vkey)
    if stored is None:
        return "the verifier key recorded in the database is malformed"
    if stored != _identity(pin.vkey):
        return (
            f"the verifier key in the database ({short(stored_vkey)}) is not the pinned key "
            f"({short(pin.vkey)}, from {pin.field}): the log was re-keyed, or this is another "
            "log's database"
        )
    if stored_origin != pin.name:
        return f"the log origin in the database is not the pinned key's name ({pin.name})"
    return None


def check_stored(stored_vkey: str, stored_origin: str, pin: Pin) -> None:
    """Refuse (LogKeyMismatch) unless the database's key and origin are the pinned ones."""
    problem = key_problem(stored_vkey, stored_origin, pin)
    if problem is not None:
        raise LogKeyMismatch(
            f"refusing to run: {problem}",
            field=pin.field,
            fix="restore a database whose key is the published one, or correct the pin",
        )


def check_signing_key(key_path: Path, pin: Pin) -> None:
    """Refuse unless the private signing key at ``key_path`` signs as the pinned key."""
    signer = load_key(key_path)
    if _identity(signer.vkey()) != _identity(pin.vkey):
        raise LogKeyMismatch(
            f"refusing to run: the signing key file ({short(signer.vkey())}) is not the pinned "
            f"key ({short(pin.vkey)}, from {pin.field}); it would sign checkpoints no auditor "
            "holding the published key accepts",
            field=pin.field,
            fix="use the key file created with this log, or correct the pin",
        )


def check_checkpoint(note: str, size: int, pin: Pin) -> None:
    """Refuse unless the stored checkpoint for ``size`` is signed by the pinned key."""
    try:
        cp = open_checkpoint(note, [pin.verifier])
    except CarewallError as e:
        raise LogKeyMismatch(
            f"refusing to run: the latest checkpoint (size {size}) is not signed by the pinned "
            f"key ({short(pin.vkey)}, from {pin.field}): {e.message}",
            field=pin.field,
            fix="run `carewall ledger verify` with the same pin to see what was changed",
        ) from e
    if cp.size != size:
        raise LogKeyMismatch(
            f"refusing to run: the checkpoint stored for size {size} signs size {cp.size}",
            field=pin.field,
            fix="run `carewall ledger verify` with the same pin to see what was changed",
        )


def check_ledger(ledger: Ledger, pin: Pin, key_path: Path | None) -> None:
    """Before serving: the stored key, the signing key file and the latest checkpoint are
    all the pinned key's (LogKeyMismatch naming the first that is not)."""
    check_stored(ledger.verifier_key, ledger.origin, pin)
    if key_path is not None and ledger.writable:
        check_signing_key(key_path, pin)
    with ledger.store.read() as conn:
        last = publisher.latest(conn)
    if last is not None:
        check_checkpoint(last[1], last[0], pin)


def check_database(db: str | None, pin: Pin) -> None:
    """:func:`check_ledger` on the database alone, before it is opened with its signing key.

    So a re-keyed database is named as such, rather than the honest key file being blamed
    for not matching it. A database with no ledger is left for the opening to report.
    """
    store = open_store(db)
    try:
        try:
            ledger = Ledger.open(store)
        except LedgerError:
            return
        check_ledger(ledger, pin, None)
    finally:
        store.dispose()


def unpinned_warning(what: str) -> str:
    """The warning a command prints when it was given no pin."""
    return (
        f"warning: the log key is not pinned, so {what} trusts the verifier key stored in the "
        "database itself: whoever can write the database could have re-keyed, rewritten and "
        f"re-signed the log. Pin the published key with {HOW_TO_PIN}."
    )


def vkey_path_for(key_path: Path) -> Path:
    """Where ``carewall init`` publishes the verifier key: ``x.key`` -> ``x.vkey``."""
    if key_path.suffix == ".key":
        return key_path.with_suffix(".vkey")
    return key_path.with_name(key_path.name + ".vkey")


def signing_key_path(db: str | None, key: str | Path | None) -> Path:
    """The signing key file a command opens: ``--key``, else the default for ``db``."""
    return Path(key) if key else default_key_path(db)


def vkey_out_path(db: str | None, key: str | Path | None, vkey_out: str | Path | None) -> Path:
    """``--vkey-out``, else beside the signing key file: ``<db>.key`` -> ``<db>.vkey``."""
    if vkey_out:
        return Path(vkey_out)
    return vkey_path_for(signing_key_path(db, key))


def check_vkey_out(path: Path, field: str = "--vkey-out") -> None:
    """Before anything is created: the verifier key file can be written at ``path``."""
    elsewhere = " or pass --vkey-out with a new path" if field == "--vkey-out" else ""
    if path.exists() or path.is_symlink():
        raise InputError(
            f"a verifier key file already exists at {path}; refusing to replace a published key",
            field=field,
            fix=f"if this is an existing instance, serve it; otherwise move the old file "
            f"away{elsewhere}",
        )
    parent = path.parent
    if not parent.is_dir():
        raise InputError(
            f"the directory for the verifier key file ({parent}) does not exist",
            field=field,
            fix=f"create it{elsewhere}",
        )


def publish_vkey(path: Path, vkey: str, field: str = "--vkey-out") -> None:
    """Write the verifier key to ``path`` (0644: public, owner-writable); never overwrite."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError as e:
        raise InputError(
            "a verifier key file already exists there; refusing to replace a published key",
            field=field,
            fix="move the old file away",
        ) from e
    except OSError as e:
        raise InputError(f"cannot create the verifier key file ({e.strerror})", field=field) from e
    with os.fdopen(fd, "w", encoding="ascii") as f:
        os.fchmod(f.fileno(), 0o644)  # public: readable by all whatever the umask
        f.write(vkey + "\n")
        f.flush()
        os.fsync(f.fileno())
