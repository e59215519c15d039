"""The package shares its import name with PyPI's ``watchdog`` (a file watcher that rl-games requires).

Installed into one environment, the two share the ``site-packages/watchdog`` folder. They coexist only if no
module here takes one of its names and nothing of ours needs ``watchdog/__init__.py``, which either may own.
Checked by hand in a venv with watchdog 7.1.0 from PyPI, both orders, regular and editable installs.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "watchdog"
# PyPI watchdog 7.1.0's top-level modules and packages (and 2.x's, which rl-games' ">=2.1.9" admits)
PYPI_WATCHDOG_MODULES = {"__main__", "events", "observers", "tricks", "utils", "version", "watchmedo"}
REPO = PACKAGE.parent


def test_no_module_takes_a_name_of_pypi_watchdog():
    ours = {p.stem for p in PACKAGE.glob("*.py")} | {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert "eventlog" in ours and not ours & PYPI_WATCHDOG_MODULES, ours & PYPI_WATCHDOG_MODULES


def test_nothing_imports_a_name_from_the_package_init():
    """``from watchdog import X`` only for submodules, and no ``watchdog.__version__``: the file may be PyPI's."""
    modules = {p.stem for p in PACKAGE.glob("*.py")} | {p.name for p in PACKAGE.iterdir() if p.is_dir()}
    bad = []
    for folder in ("watchdog", "openrl_ws", "bench", "tests", "examples"):
        for path in (REPO / folder).rglob("*.py"):
            tree = ast.parse(path.read_text(), str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.module == "watchdog" and node.level == 0:
                    bad += [f"{path}: {a.name}" for a in node.names if a.name not in modules]
                elif isinstance(node, ast.Attribute) and node.attr == "__version__" and \
                        isinstance(node.value, ast.Name) and node.value.id == "watchdog":
                    bad.append(f"{path}: watchdog.__version__")
    assert not bad, bad


def test_the_package_works_when_the_init_file_is_pypi_watchdogs(tmp_path):
    """The merged folder of a regular install where PyPI's watchdog was installed last: its ``__init__.py``
    (a licence header, nothing else) in place of ours. A real run still replays."""
    site = tmp_path / "site"
    shutil.copytree(PACKAGE, site / "watchdog", ignore=shutil.ignore_patterns("__pycache__"))
    (site / "watchdog" / "__init__.py").write_text("# Copyright the watchdog authors\n# Apache License 2.0\n")
    run = REPO / "tests" / "data" / "frameworks" / "rsl_rl" / "push_lite_fault"
    env = {**os.environ, "PYTHONPATH": str(site)}
    out = subprocess.run([sys.executable, "-c", "import sys, watchdog.cli; sys.exit(watchdog.cli.main())",
                          "replay", str(run), "--json"], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert out.returncode == 1 and '"verdict": "diverged"' in out.stdout, out.stderr[-2000:]
    check = subprocess.run([sys.executable, "-c", "import watchdog, watchdog.eventlog; print(watchdog.__file__)"],
                           capture_output=True, text=True, env=env, cwd=tmp_path)
    assert check.stdout.strip() == str(site / "watchdog" / "__init__.py"), check.stderr
