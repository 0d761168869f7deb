"""The first start on a fresh profile, as a new user meets it (issue 22's targets).

    .venv/bin/python bench/first_start.py [--runs 3]

Each run gets a new HOME and XDG folders (no settings, store or cache), then:
- `demo`: `therapist-app demo` from process start to the first round's suggestions
  (target <= 3 s on 2 cores) and to the model being ready;
- `window`: the real main window offscreen, from process start to the window shown
  (target <= 10 s), and through creating a profile (production KDF) to the model being
  loaded and the workspace ready.
The same is then run again on the now warm profile, as the reference in the same
command. Ends with `RESULT demo_first_round_s=.. demo_model_ready_s=.. window_shown_s=..
window_ready_s=.. fresh_vs_warm=..` (medians over runs; fresh_vs_warm compares the
fresh and warm demo first rounds).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APP = Path(sys.executable).with_name("therapist-app")
WINDOW_DRIVER = r"""
import sys, time
from PySide6.QtCore import QSettings, QTimer
from therapist_app.ui.app import create_application, real_engine
from therapist_app.ui.analysis import default_analyzer
from therapist_app.ui.main_window import AppContext, MainWindow
from therapist_app.ui.settings import AppSettings
from therapist_app.core.policy import load_policy
from pathlib import Path

app = create_application(["therapist-app"])
context = AppContext(store_path=Path(sys.argv[1]), policy=load_policy(),
                     settings=AppSettings(QSettings()), engine_factory=real_engine,
                     analyzer_factory=default_analyzer)
window = MainWindow(context)
window.show()
app.processEvents()
print(f"shown {time.time()}", flush=True)
page = window.first_run
page.passphrase.setText("lantern orchard bicycle")
page.confirm.setText("lantern orchard bicycle")
page.create_button.click()

def poll():
    if window.pages.currentWidget() is window.workspace and window.engine.info is not None:
        print(f"ready {time.time()}", flush=True)
        window.close()
        app.quit()
    else:
        QTimer.singleShot(20, poll)

QTimer.singleShot(20, poll)
app.exec()
"""


def profile_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XDG_")}
    env.update(
        HOME=str(home),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_DATA_HOME=str(home / ".local/share"),
        XDG_CONFIG_HOME=str(home / ".config"),
        QT_QPA_PLATFORM="offscreen",
    )
    return env


def time_demo(home: Path) -> tuple[float, float]:
    started = time.time()
    proc = subprocess.Popen(
        [str(APP), "demo"], env=profile_env(home), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    model = first = None
    for line in proc.stdout:
        if model is None and line.startswith("Model:"):
            model = time.time() - started
        if re.match(r"\s+turn 1:", line):
            first = time.time() - started
            proc.kill()
            break
    proc.wait()
    if first is None or model is None:
        raise SystemExit("the demo did not finish its first round")
    return first, model


def time_window(home: Path) -> tuple[float, float]:
    started = time.time()
    done = subprocess.run(
        [sys.executable, "-c", WINDOW_DRIVER, str(home / "store.db")],
        env=profile_env(home),
        capture_output=True,
        text=True,
        timeout=300,
    )
    events = dict(line.split() for line in done.stdout.splitlines() if line[:5] in ("shown", "ready"))
    if "ready" not in events:
        raise SystemExit(f"the window did not get ready: {done.stderr[-2000:]}")
    return float(events["shown"]) - started, float(events["ready"]) - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    fresh_demo, fresh_model, warm_demo, shown, ready = [], [], [], [], []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory() as scratch:
            home = Path(scratch)
            first, model = time_demo(home)
            fresh_demo.append(first)
            fresh_model.append(model)
            warm_demo.append(time_demo(home)[0])
        with tempfile.TemporaryDirectory() as scratch:
            window_shown, window_ready = time_window(Path(scratch))
            shown.append(window_shown)
            ready.append(window_ready)
        print(
            f"run {run + 1}: demo first round {first:.2f} s (warm {warm_demo[-1]:.2f} s), "
            f"window shown {window_shown:.2f} s, ready {window_ready:.2f} s",
            flush=True,
        )
    med = statistics.median
    print(
        f"RESULT demo_first_round_s={med(fresh_demo):.2f} demo_model_ready_s={med(fresh_model):.2f} "
        f"window_shown_s={med(shown):.2f} window_ready_s={med(ready):.2f} "
        f"fresh_vs_warm={med(fresh_demo) / med(warm_demo):.3f}"
    )


if __name__ == "__main__":
    main()
