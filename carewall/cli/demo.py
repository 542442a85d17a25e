"""``carewall demo``: build a synthetic, reproducible year on SQLite, show it, serve it.

The year itself is built by :mod:`carewall.cli.demo_year`, a client of the service like any
other command.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from carewall.cli import err_console, main
from carewall.cli.demo_start import where_to_start
from carewall.cli.demo_year import fill_year, year_start
from carewall.cli.options import log_key_options
from carewall.cli.port import check_port
from carewall.cli.service import _serve
from carewall.errors import InputError
from carewall.ledger import pin
from carewall.service import Service

__all__ = ["demo"]


def _outcome_chart(svc: Service, width: int = 40) -> Table:
    """Who asked, and what they got: one bar per requester function, released part in green."""
    asked: Counter[str] = Counter()
    released: Counter[str] = Counter()
    for (fn, outcome), n in svc.outcomes_by_function().items():
        asked[fn] += n
        released[fn] += n if outcome == "released" else 0
    top = max(asked.values(), default=1)
    chart = Table(title="requests by who asked (green: released after review)", box=None)
    chart.add_column("requester function")
    chart.add_column("", min_width=width)
    chart.add_column("asked", justify="right")
    chart.add_column("released", justify="right")
    for fn, n in asked.most_common():
        full = max(1, round(n / top * width))
        green = round(released[fn] / top * width)
        bar = f"[green]{'█' * green}[/green][red]{'█' * (full - green)}[/red]"
        chart.add_row(fn, bar, str(n), str(released[fn]))
    return chart


@main.command()
@click.option(
    "--db", default="carewall-demo.db", show_default=True, help="SQLite file for the demo instance."
)
@click.option("--seed", default=2026, show_default=True, type=int)
@click.option(
    "--scale", default=1.0, show_default=True, type=float, help="Fraction of a full year's volume."
)
@click.option("--serve/--no-serve", "do_serve", default=True, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@log_key_options
def demo(
    db: str,
    seed: int,
    scale: float,
    do_serve: bool,
    host: str,
    port: int,
    log_key: str | None,
    log_key_file: str | None,
) -> None:
    """Build a synthetic, reproducible year of requests on SQLite, then serve it.

    A new demo writes its verifier key beside the database (<db>.vkey) and pins it; a
    later run pins that file again, unless --log-key or --log-key-file says otherwise.
    """
    if "://" in db and not db.startswith("sqlite"):
        raise click.BadParameter("the demo runs on a SQLite file", param_hint="--db")
    if not 0 < scale <= 2:
        raise click.BadParameter("between 0 and 2", param_hint="--scale")
    if do_serve:  # before the year is built, not after
        check_port(host, port, make_hint=True)
    pinned = pin.resolve_pin(log_key, log_key_file)
    path = Path(db.split(":///", 1)[-1])
    vkey_path = pin.vkey_out_path(db, None, None)
    if path.exists():
        err_console.print(f"using the existing demo instance in {path}")
        if pinned is None and vkey_path.exists():
            pinned = pin.Pin(pin.read_vkey_file(vkey_path, str(vkey_path)), str(vkey_path))
        if pinned is not None:
            pin.check_database(db, pinned)
        svc = Service.open(db)
        if pinned is not None:
            pin.check_ledger(svc.ledger, pinned, pin.signing_key_path(db, None))
        else:
            click.echo(pin.unpinned_warning("the demo"), err=True)
    else:
        if pinned is not None:
            raise InputError(
                "a new demo instance gets a new log key, so it cannot match a pinned one",
                field=pinned.field,
                fix="leave the pin out (the demo pins the key it creates), or pass --db "
                "with the existing demo database",
            )
        pin.check_vkey_out(vkey_path, field="--db")
        # Built without waiting for the disk at each commit (a lost build is rebuilt from
        # its seed), then opened again, durable, to serve.
        # The instance is made on the demo year's first day, so its log's times never go
        # backwards (an auditor fails a log whose entries are dated before earlier ones).
        svc = Service.init(
            db, None, "demo.carewall.example/log", None, durable=False, clock=year_start
        )
        pin.publish_vkey(vkey_path, svc.ledger.verifier_key, field="--db")
        with Progress(
            TextColumn("[bold]synthetic year"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err_console,
        ) as bar:
            task = bar.add_task("requests", total=None)

            def step(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            stats = fill_year(svc, seed, scale, step)
        svc.close()
        svc = Service.open(db)
        table = Table(title="the demo year")
        table.add_column("")
        table.add_column("count", justify="right")
        for name, value in (
            ("requests", stats.submitted),
            ("refused by the policy", stats.refused),
            ("released after review", stats.released),
            ("refused on review", stats.review_refused),
            ("withdrawn", stats.withdrawn),
            ("appeals", stats.appeals),
            ("notices sent", stats.notices),
            ("notices deferred", stats.deferred),
            ("ledger entries", svc.ledger.size()),
        ):
            table.add_row(name, str(value))
        err_console.print(table)
        err_console.print(_outcome_chart(svc))
    if do_serve:
        base = f"http://{host}:{port}/"
        click.echo("\nWhere to start (tokens and codes are the synthetic demo's own):")
        for who, where, what in where_to_start(svc, base):
            click.echo(f"  {who}: open {where}\n      {what}")
        click.echo("")
        click.echo(f"open {base}")
        _serve(svc, host, port, public_url=None)  # the default: http://HOST:PORT/
    else:
        click.echo(f"demo instance ready in {path}; run `carewall serve --db {path}`")
