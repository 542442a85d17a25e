"""The CLI imports only what a command uses (a structural test: no timing).

``carewall decide`` and ``carewall --help`` must not import the web stack, the database
layer, DuckDB or pydantic (``decide`` reads requests with the pydantic-free reader); and
the index that lets ``--help`` list commands without importing them must name every
command the modules really register, with the same help line.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest

import carewall.cli as cli

HEAVY = (
    "fastapi",
    "starlette",
    "sqlalchemy",
    "alembic",
    "uvicorn",
    "duckdb",
    "psycopg",
    "jinja2",
    "rich",
    "pydantic",
    "pydantic_core",
)
REQUEST = {
    "reference": "MPS-2026-000123",
    "requester": "met-police",
    "holder": "whittington-health",
    "purpose": "prevention_detection_of_crime",
    "legal_basis": "dpa2018_sch2_p1_para2_crime",
    "offence": "theft_act_1968_s1",
    "subjects": [{"ref": "9434765919", "is_child": False, "is_victim_or_witness": False}],
    "categories": ["name", "address"],
}


def _after(args: list[str], report: str) -> tuple[Any, str]:
    """Run ``carewall ARGS`` in a fresh interpreter, then the Python expression ``report``
    there: its value (a literal) and the command's standard output."""
    code = (
        "import sys\n"
        "from carewall.cli import main\n"
        "try:\n"
        f"    main({args!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        f"sys.stderr.write(repr({report}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    return ast.literal_eval(proc.stderr.strip().splitlines()[-1]), proc.stdout


def _heavy_modules_after(args: list[str]) -> tuple[list[str], str]:
    loaded, out = _after(args, f"sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r})")
    return list(loaded), out


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["policy", "--help"]])
def test_light_commands_import_no_heavy_module(args: list[str]) -> None:
    loaded, _ = _heavy_modules_after(args)
    assert loaded == []


def test_decide_imports_no_heavy_module(tmp_path: Path) -> None:
    path = tmp_path / "request.json"
    path.write_text(json.dumps(REQUEST))
    loaded, out = _heavy_modules_after(["decide", str(path)])
    assert json.loads(out)["outcome"] == "review"
    assert loaded == []


def test_decide_reads_its_packaged_files_without_importlib_resources(tmp_path: Path) -> None:
    # A tenth of decide's start-up was importlib.resources (and the zipfile, tempfile and
    # shutil it brings) for reading three files beside the modules.
    path = tmp_path / "request.json"
    path.write_text(json.dumps(REQUEST))
    loaded, out = _after(
        ["decide", str(path)], "sorted(m for m in sys.modules if m.startswith('importlib.res'))"
    )
    assert json.loads(out)["outcome"] == "review"
    assert loaded == []


def test_decide_leaves_cedars_syntax_tree_unrun_and_it_still_works(tmp_path: Path) -> None:
    # cedarpy.pst (fifty dataclasses carewall never reads) was decide's largest import.
    # The tuple is read left to right: the module's type after decide, then a call that
    # needs it, then its type after that call.
    path = tmp_path / "request.json"
    path.write_text(json.dumps(REQUEST))
    seen, out = _after(
        ["decide", str(path)],
        "(type(sys.modules['cedarpy.pst']).__name__, "
        "type(__import__('cedarpy').policies_to_pst('permit(principal, action, resource);'))"
        ".__module__, type(sys.modules['cedarpy.pst']).__name__)",
    )
    assert json.loads(out)["outcome"] == "review"
    assert seen == ("_LazyModule", "cedarpy.pst", "module")


def test_reading_an_existing_ledger_loads_no_migrations_or_web_stack(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'log.db'}"
    entry = '{"kind":"policy","time":"2026-01-01T00:00:00Z","v":1}\n'
    append = ["ledger", "append", "--db", db, "--key", str(tmp_path / "log.key"), "-"]
    subprocess.run(
        [sys.executable, "-c", "from carewall.cli import main; main()", *append],
        input=entry,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    loaded, _ = _heavy_modules_after(["ledger", "verify", "--db", db])
    assert "alembic" not in loaded and "fastapi" not in loaded and "pydantic" not in loaded
    assert "sqlalchemy" in loaded  # it did open the database


def test_a_service_command_still_loads_its_module() -> None:
    loaded, _ = _heavy_modules_after(["serve", "--help"])
    assert "sqlalchemy" in loaded  # the check above can see a heavy import


def test_the_index_names_every_command_with_its_help() -> None:
    cli.load_all()
    real = {
        name: (cmd.callback.__module__.rsplit(".", 1)[1] if cmd.callback else "", cmd)
        for name, cmd in cli.main.commands.items()
    }
    assert set(real) == set(cli._INDEX)
    for name, (module, cmd) in real.items():
        index_module, help_line = cli._INDEX[name]
        assert index_module == module, name
        if cmd.hidden:
            assert help_line is None, name
            continue
        stand_in = click.Command(name, help=help_line)
        for limit in (30, 45, 60, 80, 200):
            assert stand_in.get_short_help_str(limit) == cmd.get_short_help_str(limit), name


def test_help_lists_the_same_commands_as_the_loaded_group() -> None:
    from click.testing import CliRunner

    cli.load_all()
    listed = CliRunner().invoke(cli.main, ["--help"]).output
    for name, cmd in cli.main.commands.items():
        assert (name in listed) != cmd.hidden


def test_the_outside_auditor_imports_no_database_or_web_stack(tmp_path: Path) -> None:
    # The auditor is the outsider: it reads a log over HTTP with the pure cores, and has no
    # use for the service's database layer or its web stack (a third of its start-up was
    # SQLAlchemy, through carewall.ledger's package imports).
    from audit_serving import Server, make_log, running
    from audit_support import LogBuilder

    log_entries = LogBuilder().init().entries
    log = make_log(tmp_path, "log", tmp_path / "log.key", log_entries)
    with running(Server()) as server:
        server.serve(log)
        loaded, out = _heavy_modules_after(
            ["audit", server.url, "--key", log.vkey, "--no-statistics"]
        )
    assert f"Checked {len(log_entries)} entries" in out, out[-500:]
    assert set(loaded) <= {"rich"}, loaded
