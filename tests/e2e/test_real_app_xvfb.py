"""The real app on a real (virtual) X display with the bundled model: one suggestion
cycle, a screenshot, and the GUI thread measured while the model generates."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.gui]


@pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="needs Xvfb (apt-get install xvfb xauth)")
def test_one_suggestion_cycle_on_the_bundled_model(tmp_path, bundled_model):
    screenshot = tmp_path / "cycle.png"
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "DISPLAY")}
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run(
        [
            "xvfb-run",
            "-a",
            "-s",
            "-screen 0 1280x800x24",
            sys.executable,
            str(REPO / "packaging" / "smoke_gui.py"),
            "--screenshot",
            str(screenshot),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["platform"] == "xcb"
    assert report["stored_decisions"] == ["accepted", "not_chosen", "not_chosen"]
    assert [s["finish"] in ("stop", "length") for s in report["suggestions"]] == [True] * 3
    assert report["crisis_banner"] is True
    # The GUI kept painting while llama.cpp decoded on its worker thread.
    assert report["gui_ticks_while_generating"] >= 5
    assert report["longest_gui_gap_ms"] < 500
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
