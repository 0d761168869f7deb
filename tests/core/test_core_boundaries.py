"""therapist_app.core must import neither Qt nor torch: the app stays light and headless."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import therapist_app.core


def test_core_modules_import_without_qt_or_torch():
    modules = [m.name for m in pkgutil.walk_packages(therapist_app.core.__path__, "therapist_app.core.")]
    assert len(modules) >= 5
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'torch', 'transformers', 'trainer'))\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_import_linter_contract_holds():
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())",
        ],
        capture_output=True,
        text=True,
    )
    assert "KEPT" in done.stdout and done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
