"""``carewall ledger …``: verify, checkpoint, proof, append and key for the public log."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

import click

from carewall.cli import err_console, main
from carewall.cli.append_input import Batch, read_batches
from carewall.cli.options import log_key_options
from carewall.errors import InputError, LedgerError
from carewall.ledger import Ledger, default_key_path, verify_ledger
from carewall.ledger.pin import resolve_pin, short, unpinned_warning
from carewall.ledger.proof_docs import consistency_doc, inclusion_doc
from carewall.storage.db import DEFAULT_URL, Store, normalise_url, open_store

__all__ = ["ledger"]

DEFAULT_ORIGIN = "carewall.localhost/log"
DEFAULT_BATCH = 1 << 14  # entries per append transaction: ~9 MB of typical entries
_PROGRESS_FROM = 1 << 18  # entries; below this verify is over before a bar is worth drawing

_db_option = click.option(
    "--db",
    "db",
    default=None,
    metavar="URL",
    help=f"Database: a file path, sqlite:///PATH or postgresql://… "
    f"(default: $CAREWALL_DB or {DEFAULT_URL}).",
)


def _open_existing(db: str | None) -> Store:
    """Open a database that must already exist (never create an empty SQLite file)."""
    url = normalise_url(db)
    if url.startswith("sqlite") and ":///" in url:
        path = url.split(":///", 1)[1].split("?", 1)[0]
        if path and path != ":memory:" and not os.path.exists(path):
            raise InputError(
                "no database at that path",
                field="--db",
                fix="pass --db with an existing database, or create one with `carewall init`",
            )
    return open_store(url)


@main.group("ledger")
def ledger() -> None:
    """The public append-only log: verify it, read checkpoints and proofs, append entries."""


@ledger.command("verify")
@_db_option
@log_key_options
def verify_cmd(db: str | None, log_key: str | None, log_key_file: str | None) -> None:
    """Re-derive every hash and root from the stored entries and check every checkpoint.

    Pin the log's published verifier key (--log-key-file, --log-key or $CAREWALL_LOG_VKEY):
    every checkpoint must then be signed by it, and the database must record it. Without a
    pin this checks only that the database agrees with itself (whoever can write it can
    re-key and re-sign a rewritten log), and says so on stderr.

    Exit 0 when everything matches; exit 1 naming the key that is not the pinned one, or
    the first bad entry index.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    pin = resolve_pin(log_key, log_key_file)
    store = _open_existing(db)
    try:
        size = Ledger.open(store).size()
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=err_console,
            transient=True,
            disable=size < _PROGRESS_FROM or not err_console.is_terminal,
            # Redrawn by each update instead of by a thread: verify forks its workers only
            # when this process has no other thread.
            auto_refresh=False,
        ) as bar:
            task = bar.add_task("verifying", total=size)
            report = verify_ledger(
                store,
                lambda done, _total: bar.update(task, completed=done, refresh=True),
                pinned=pin,
            )
    finally:
        store.dispose()
    if report.ok:
        against = (
            f"signed by the pinned key {short(pin.vkey)}"
            if pin is not None
            else "self-consistent only: no pinned key"
        )
        click.echo(
            f"ok: {report.size} entries, {report.nodes} hashes and {report.checkpoints} "
            f"checkpoints verified in {report.seconds:.2f}s "
            f"({report.entries_per_second:,.0f} entries/s); {against}"
        )
    else:
        count = report.fault_count + (report.key_problem is not None)
        found = f"({count} problem{'s' if count != 1 else ''} found)"
        if report.key_problem is not None:
            click.echo(f"FAILED: {report.key_problem}" + ("" if report.faults else f" {found}"))
        first = report.first
        if first is not None:
            click.echo(f"FAILED: first bad index {first.index}: {first.problem} {found}")
    if pin is None:  # after the verdict, which stays the first line a script reads
        click.echo(unpinned_warning("this check"), err=True)
    if not report.ok:
        sys.exit(1)


@ledger.command("checkpoint")
@_db_option
def checkpoint_cmd(db: str | None) -> None:
    """Print the latest signed checkpoint (a C2SP signed note)."""
    store = _open_existing(db)
    try:
        click.echo(Ledger.open(store).checkpoint(), nl=False)
    finally:
        store.dispose()


@ledger.command("key")
@_db_option
def key_cmd(db: str | None) -> None:
    """Print the verifier key this database records (name+hex8+base64).

    This is what the database says, not a trust anchor: publish the key `carewall init`
    wrote to its .vkey file, and pin that one (--log-key-file) in `ledger verify` and `serve`.
    """
    store = _open_existing(db)
    try:
        click.echo(Ledger.open(store).verifier_key)
    finally:
        store.dispose()


@ledger.command("proof")
@click.option("--index", type=click.IntRange(min=0), help="Prove this entry is in the log.")
@click.option("--from", "from_", type=click.IntRange(min=1), help="Prove size FROM grew into SIZE.")
@click.option(
    "--size",
    type=click.IntRange(min=0),
    help="Tree size (default: the latest checkpoint's).",
)
@_db_option
def proof_cmd(index: int | None, from_: int | None, size: int | None, db: str | None) -> None:
    """Print an inclusion (--index) or consistency (--from, --size) proof as JSON."""
    if (index is None) == (from_ is None):
        raise InputError("give exactly one of --index or --from", field="--index")
    if from_ is not None and size is None:
        raise InputError("--from needs --size", field="--size")
    store = _open_existing(db)
    try:
        lg = Ledger.open(store)
        if size is None:
            published = lg.checkpoints()
            if not published:
                raise LedgerError("the log has no checkpoint yet", fix="pass --size")
            size = published[-1][0]
        out: dict[str, Any]
        if index is not None:
            if index >= size:
                raise LedgerError(
                    f"index {index} is not below size {size}",
                    field="--index",
                    fix="ask for an index smaller than the tree size",
                )
            out = inclusion_doc(lg, index, size)
        else:
            assert from_ is not None
            out = consistency_doc(lg, from_, size)
    finally:
        store.dispose()
    click.echo(json.dumps(out, indent=2))


@ledger.command("append")
@_db_option
@click.option(
    "--key",
    "key_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Log signing key (default: $CAREWALL_KEY, <db file>.key, or ./carewall-log.key).",
)
@click.option(
    "--origin",
    default=None,
    help=f"Log origin when this creates the ledger (default: {DEFAULT_ORIGIN}).",
)
@click.option(
    "--batch",
    type=click.IntRange(min=0),
    default=DEFAULT_BATCH,
    show_default=True,
    help="Entries per transaction; 0 reads the whole input first and appends it in one.",
)
@click.argument("source", type=click.File("rb"), default="-", metavar="[ENTRIES.jsonl | -]")
def append_cmd(
    db: str | None, key_path: Path | None, origin: str | None, batch: int, source: IO[bytes]
) -> None:
    """Append each line (one JSON object) as one entry in canonical form, publish, and print
    the new checkpoint. Creates the ledger if the database has none.

    Lines are appended --batch at a time: each batch is checked whole, then committed
    durably together with a signed checkpoint covering it, before the next is read. A bad
    line appends nothing of its batch; batches before it stay appended, and the error says
    from which line to append again. An input of one batch or less is all or nothing.
    """
    batches = read_batches(source, batch)
    pending = next(batches, None)  # checked before any ledger or key is created
    key = key_path or default_key_path(db)
    store = open_store(db)
    try:
        lg = _open_or_create(store, key, origin)
        note = lg.publish() if pending is None else _append_batches(lg, pending, batches)
        click.echo(note, nl=False)
    finally:
        store.dispose()


def _append_batches(lg: Ledger, first: Batch, rest: Iterator[Batch]) -> str:
    """Append batch after batch; return the checkpoint signed with the last.

    The next batch is read and checked while the one before it is written (SQLite and
    PostgreSQL release the GIL while they work), but it is handed to the ledger only once
    that write has committed, so batches commit one at a time and in order.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-append") as writer:
        after, datas = first
        writing = writer.submit(lg.append_and_publish, datas)
        while True:
            try:
                pending = next(rest, None)
            except InputError as e:
                note = writing.result()  # what was handed over is committed before we say so
                size = int(note.splitlines()[1])
                raise InputError(
                    e.message,
                    field=e.field,
                    fix=(e.fix + "; " if e.fix else "")
                    + f"the lines before line {after} are appended (the log has {size:,} "
                    f"entries, signed): fix the line and append again from line {after}",
                ) from e
            note = writing.result()
            if pending is None:
                return note
            after, datas = pending
            writing = writer.submit(lg.append_and_publish, datas)


@ledger.command("publish")
@_db_option
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), metavar="DIR")
def publish_cmd(db: str | None, directory: Path) -> None:
    """Write the log to DIR as static C2SP tlog-tiles (tiles, entry bundles with .gz copies,
    key, and the checkpoint with its witness cosignatures, last), writing only what is new.
    Serve DIR as /log/ from any web server or CDN (see docs/witnesses.md)."""
    from carewall.ledger.static import publish_static
    from carewall.witness.client import cosigned_checkpoint

    store = _open_existing(db)
    try:
        lg = Ledger.open(store)
        report = publish_static(lg, directory, cosigned_checkpoint(lg))
    finally:
        store.dispose()
    click.echo(
        f"published {report.size} entries to {directory}: {report.written} tile(s) written, "
        f"{report.kept} already there"
    )


def _open_or_create(store: Store, key: Path, origin: str | None) -> Ledger:
    try:
        lg = Ledger.open(store, key)
    except LedgerError:
        return Ledger.create(store, origin or DEFAULT_ORIGIN, key)
    if origin is not None and origin != lg.origin:
        raise InputError(
            "this ledger already has a different origin",
            field="--origin",
            fix="leave out --origin, or use a new database",
        )
    return lg
