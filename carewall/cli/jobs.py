"""``carewall jobs [list] | run``: long work done off the request path, and how far it got.

A release's notices are delivered by a job recorded with the release (see
:mod:`carewall.service.jobs`): a small one at once by the call that released, a large one
by the server's background worker. ``list`` shows each job's progress (ids, counts and
times only); ``run`` runs every queued job in this process, with progress bars, and
``run --follow`` keeps doing so as an extra worker beside the server.
"""

from __future__ import annotations

import json
import signal
import threading
from types import FrameType

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.progress_bar import ProgressBar
from rich.table import Table

from carewall.cli import err_console, main, out_console
from carewall.cli.options import db_option as _db
from carewall.cli.options import key_option as _key
from carewall.service import Service
from carewall.service.jobs import Sweep, drain, sweep_once
from carewall.service.jobstore import JobRecord, list_jobs

__all__ = ["jobs"]

_STATES = ("open", "queued", "running", "done", "all")


def _minute(time: str | None) -> str:
    return "—" if not time else time.replace("T", " ")[:19]


def _list(db: str | None, state: str, request_id: str | None, limit: int, as_json: bool) -> None:
    svc = Service.open(db)
    try:
        rows = list_jobs(
            svc.store, state=None if state == "all" else state, request_id=request_id, limit=limit
        )
    finally:
        svc.close()
    if as_json:
        for job in rows:
            click.echo(json.dumps(job.model_dump()))
        return
    shown = "" if state == "all" else f" {state}"
    table = Table(title=f"{len(rows)}{shown} job(s), newest first")
    table.add_column("job", justify="right", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    table.add_column("request id", no_wrap=True, min_width=21)
    table.add_column("state", no_wrap=True)
    table.add_column("progress", no_wrap=True, min_width=22)
    table.add_column("done", justify="right", no_wrap=True)
    table.add_column("started", no_wrap=True)
    table.add_column("last seen", no_wrap=True)
    table.add_column("tries", justify="right", no_wrap=True)
    table.add_column("last error", overflow="fold")
    for job in rows:
        table.add_row(
            str(job.id),
            job.kind,
            job.request_id or "—",
            job.state,
            ProgressBar(total=max(job.total, 1), completed=job.done, width=20),
            f"{job.done}/{job.total}",
            _minute(job.started_at),
            _minute(job.finished_at or job.heartbeat_at),
            str(job.attempts),
            job.error or "",
        )
    out_console.print(table)


@main.group(invoke_without_command=True)
@click.pass_context
def jobs(ctx: click.Context) -> None:
    """Background jobs (a large release's notices): list them with progress, or run them."""
    if ctx.invoked_subcommand is None:
        _list(None, "open", None, 50, False)


@jobs.command("list")
@_db
@click.option(
    "--state",
    type=click.Choice(_STATES),
    default="open",
    show_default=True,
    help="Which jobs: open (queued or running), one state, or all.",
)
@click.option("--request", "request_id", default=None, help="Only this request's jobs.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
def list_(db: str | None, state: str, request_id: str | None, limit: int, as_json: bool) -> None:
    """List jobs, newest first: what each is for, its state and its progress."""
    _list(db, state, request_id, limit, as_json)


class _Bars:
    """One progress bar per job this process runs (on stderr)."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[int, TaskID] = {}

    def __call__(self, job: JobRecord, sent: int) -> None:
        task = self.tasks.get(job.id)
        if task is None:
            label = f"job {job.id} ({job.kind} of {job.request_id or '—'})"
            task = self.progress.add_task(label, total=job.total, completed=job.done)
            self.tasks[job.id] = task
        self.progress.update(task, completed=min(job.total, job.done + sent))


@jobs.command("run")
@_db
@_key
@click.option(
    "--follow",
    is_flag=True,
    help="Keep running as a worker (every second: queued jobs, stale claims, stray "
    "notices) until interrupted.",
)
def run(db: str | None, key: str | None, follow: bool) -> None:
    """Run every queued job now, in this process, with progress (needs the log key).

    Each job is claimed once, so this is safe beside a running server or other workers.
    """
    svc = Service.open(db, key)
    stop = svc.job_policy.stop
    previous = signal.getsignal(signal.SIGTERM)

    def on_term(_sig: int, _frame: FrameType | None) -> None:
        stop.set()  # the job in hand stops after its current batch and is given back

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_term)
    total = Sweep()
    try:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=err_console,
            transient=False,
        ) as progress:
            bars = _Bars(progress)
            try:
                ran = drain(svc, on_progress=bars, stop=stop)
                total = Sweep(sent=ran.sent, jobs=ran.jobs)
                while follow and not stop.wait(svc.job_policy.tick):
                    once = sweep_once(svc, on_progress=bars)
                    total = Sweep(
                        total.freed + once.freed, total.sent + once.sent, total.jobs + once.jobs
                    )
            except KeyboardInterrupt:
                stop.set()
    finally:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, previous)
        svc.close()
    click.echo(f"jobs: {total.jobs} run, {total.sent} notice(s) sent")
