"""``carewall witness …``: be a C2SP witness for other logs (https://c2sp.org/tlog-witness).

``witness key`` creates a cosigner key (mode 0600) and prints its cosignature/v1 verifier
key; ``witness serve`` runs the add-checkpoint endpoint for the logs in ``--config``,
keeping the latest cosigned checkpoint per log in ``--db`` (SQLite or PostgreSQL).
"""

from __future__ import annotations

from pathlib import Path

import click

from carewall.api.server import ServeSettings, serve_app
from carewall.cli import main
from carewall.cli.port import check_port
from carewall.errors import InputError
from carewall.ledger.keys import create_key, load_key
from carewall.storage import migrate
from carewall.storage.db import open_store
from carewall.witness.config import load_config
from carewall.witness.cosignature import Cosigner
from carewall.witness.server import Witness, make_witness_app

__all__ = ["witness"]

_key = click.option(
    "--key",
    "key_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The witness's private key file (created by `carewall witness key`).",
)


@main.group("witness")
def witness() -> None:
    """Witness other logs: cosign their checkpoints when they only ever grow."""


@witness.command("key")
@_key
@click.option("--name", required=True, help="The witness's name, e.g. witness.example.gov.uk.")
def key_cmd(key_path: Path, name: str) -> None:
    """Create a witness key (never overwriting one) and print its verifier key (type 0x04),
    which the logs and auditors that trust this witness configure."""
    click.echo(Cosigner(create_key(key_path, name)).vkey())


@witness.command("vkey")
@_key
def vkey_cmd(key_path: Path) -> None:
    """Print the cosignature/v1 verifier key of a witness key file."""
    click.echo(Cosigner(load_key(key_path)).vkey())


@witness.command("serve")
@click.option("--db", "db", default=None, help="Database URL or path for the witness's state.")
@_key
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="TOML file whose [[log]] tables list the logs to witness (see docs/witnesses.md).",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8100, show_default=True, type=click.IntRange(1, 65535))
@click.option("--prefix", default="", help="URL prefix of the endpoints, e.g. /witness.")
def serve_cmd(
    db: str | None, key_path: Path, config_path: Path, host: str, port: int, prefix: str
) -> None:
    """Serve POST <prefix>/add-checkpoint for the configured logs (C2SP tlog-witness)."""
    config = load_config(config_path)
    if not config.logs:
        raise InputError(
            "the configuration lists no log to witness",
            field="--config",
            fix='add a [[log]] table with vkey = "<the log\'s verifier key>"',
        )
    if prefix and (not prefix.startswith("/") or prefix.endswith("/")):
        raise InputError("must start with / and not end with /", field="--prefix")
    cosigner = Cosigner(load_key(key_path))
    check_port(host, port)
    store = open_store(db)
    migrate.upgrade(store)
    app = make_witness_app(Witness(store, cosigner, config.logs), prefix)
    click.echo(f"witness {cosigner.vkey()} serving on http://{host}:{port}{prefix}/")
    try:
        serve_app(app, host, port, ServeSettings())
    finally:
        store.dispose()
