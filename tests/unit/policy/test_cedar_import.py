"""cedarpy imported with its syntax tree module deferred (carewall.policy.cedar).

The deferring import is tried on a throwaway package on disk, in a fresh interpreter each
time (it acts only on a first import); tests/integration/test_cli_imports.py checks cedarpy
itself after a real ``decide``.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PACKAGE = {
    "__init__.py": "RAN.append('package')\nfrom heavypkg import tree\nLIGHT = 1\n",
    "tree.py": "RAN.append('tree')\nNODES = 50\n",
}


def _run(tmp_path: Path, body: str, files: dict[str, str] = PACKAGE) -> list[str]:
    """Run ``body`` in a fresh interpreter beside ``heavypkg``; the lines it prints."""
    pkg = tmp_path / "heavypkg"
    pkg.mkdir(exist_ok=True)
    for name, text in files.items():
        (pkg / name).write_text(text)
    prelude = (
        "import builtins, sys\n"
        f"sys.path.insert(0, {str(tmp_path)!r})\n"
        "builtins.RAN = []\n"
        "from carewall.policy.cedar import import_deferring\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(body)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def test_the_deferred_submodule_runs_only_when_first_read(tmp_path: Path) -> None:
    out = _run(
        tmp_path,
        """
        print(import_deferring("heavypkg", "tree"))
        import heavypkg
        print(RAN, heavypkg.LIGHT)
        print(heavypkg.tree.NODES, RAN)
        import heavypkg.tree
        print(heavypkg.tree is sys.modules["heavypkg.tree"])
        """,
    )
    assert out == ["True", "['package'] 1", "50 ['package', 'tree']", "True"]


def test_a_package_imported_already_is_left_as_it_is(tmp_path: Path) -> None:
    out = _run(
        tmp_path,
        """
        import heavypkg
        print(import_deferring("heavypkg", "tree"), RAN)
        """,
    )
    assert out == ["False ['package', 'tree']"]


@pytest.mark.parametrize("package", ["no_such_package_here", "json.decoder"])
def test_what_is_not_a_top_level_package_on_the_path_is_not_touched(
    tmp_path: Path, package: str
) -> None:
    out = _run(tmp_path, f"print(import_deferring({package!r}, 'tree'))\n")
    assert out == ["False"]


def test_a_package_that_fails_to_import_leaves_nothing_behind(tmp_path: Path) -> None:
    broken = {**PACKAGE, "__init__.py": "from heavypkg import tree\nraise RuntimeError('no')\n"}
    out = _run(
        tmp_path,
        """
        try:
            import_deferring("heavypkg", "tree")
        except RuntimeError as e:
            print("raised", e)
        print(sorted(m for m in sys.modules if m.startswith("heavypkg")), RAN)
        """,
        broken,
    )
    assert out == ["raised no", "[] []"]
