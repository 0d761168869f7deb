"""Smoke test of the real app on a real display (run it under Xvfb):

    xvfb-run -a -s "-screen 0 1280x800x24" .venv/bin/python packaging/smoke_gui.py \
        --screenshot docs/screenshots/suggestion_cycle.png

Starts the window with the production pieces (Argon2id KDF at its default cost, the
bundled SmolLM2 GGUF through llama.cpp, the installed analyzer) on a fresh store in a
temporary folder, walks one suggestion cycle the way a therapist would (first-run
profile, new client and session, the client's words, three streamed suggestions,
crisis acknowledgement, accept with the "1" key), saves a screenshot of the screen, and
prints one JSON line of what it measured. Exit status 0 only if every step happened.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

CLIENT_WORDS = (
    "I haven't slept properly in weeks and work keeps piling up. Sometimes I "
    "think everyone would be better off without me."
)


def wait_until(app: QApplication, condition, timeout_s: float, what: str) -> float:
    started = time.perf_counter()
    while not condition():
        if time.perf_counter() - started > timeout_s:
            raise TimeoutError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        app.processEvents()
        time.sleep(0.005)
    return time.perf_counter() - started


def walk(screenshot: Path, data_dir: Path) -> dict:
    os.environ["XDG_CONFIG_HOME"] = str(data_dir / "config")  # no system/user policy leaks in
    from therapist_app.core.policy import load_policy
    from therapist_app.ui.analysis import default_analyzer
    from therapist_app.ui.app import create_application, real_engine
    from therapist_app.ui.main_window import AppContext, MainWindow
    from therapist_app.ui.settings import AppSettings

    app = create_application(sys.argv[:1])
    context = AppContext(
        store_path=data_dir / "store.db",
        policy=load_policy(data_dir / "none.toml", data_dir / "none-user.toml"),
        settings=AppSettings(QSettings(str(data_dir / "settings.ini"), QSettings.Format.IniFormat)),
        engine_factory=real_engine,
        analyzer_factory=default_analyzer,
    )
    window = MainWindow(context)
    window.setGeometry(app.primaryScreen().availableGeometry())
    window.show()
    window.activateWindow()
    report: dict = {"platform": app.platformName()}
    wait_until(app, window.isActiveWindow, 10, "the window to be active")

    page = window.first_run
    QTest.keyClicks(page.passphrase, "quiet river lantern morning")
    QTest.keyClicks(page.confirm, "quiet river lantern morning")
    page.create_button.click()
    report["unlock_s"] = round(
        wait_until(app, lambda: window.pages.currentWidget() is window.workspace, 60, "the new store"), 2
    )
    report["model_load_s"] = round(
        wait_until(
            app,
            lambda: window.engine.info is not None or window.model_label.text().endswith("not loaded"),
            180,
            "the model",
        ),
        2,
    )
    if window.engine.info is None:
        raise RuntimeError(window.statusBar().currentMessage() or "the model did not load")
    report["model"] = window.engine.info.model_name
    report["device"] = window.engine.info.device

    QTest.keyClicks(window.clients.new_code, "C-017")
    window.clients.add_button.click()
    window.clients.new_session_button.click()

    ticks = []
    heartbeat = QTimer()
    heartbeat.setInterval(20)
    heartbeat.timeout.connect(lambda: ticks.append(time.perf_counter()))
    first_tokens: list[float] = []
    controller = window.controller
    controller.suggestions_updated.connect(
        lambda: first_tokens.append(time.perf_counter()) if not first_tokens else None
    )
    window.input.setFocus()
    QTest.keyClicks(window.input, CLIENT_WORDS)
    heartbeat.start()
    submitted = time.perf_counter()
    QTest.keyClick(window.input, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    wait_until(app, lambda: controller.generating, 60, "generation to start")
    generation_started = time.perf_counter()
    wait_until(
        app,
        lambda: not controller.generating and controller.slots and all(s.finish_reason for s in controller.slots),
        180,
        "three suggestions",
    )
    finished = time.perf_counter()
    heartbeat.stop()
    during = [t for t in ticks if generation_started <= t <= finished]
    gaps = [b - a for a, b in zip(during, during[1:])]
    report["first_token_s"] = round(first_tokens[0] - submitted, 3) if first_tokens else None
    report["round_s"] = round(finished - submitted, 2)
    report["gui_ticks_while_generating"] = len(during)
    report["longest_gui_gap_ms"] = round(max(gaps) * 1000, 1) if gaps else None
    report["suggestions"] = [
        {"strategy": s.strategy, "chars": len(s.text), "finish": s.finish_reason} for s in controller.slots
    ]
    report["speed"] = window.speed_label.text()
    report["crisis_banner"] = window.banner.isVisible()
    report["emotion_chip"] = window.emotion_chip.text()

    if controller.crisis_pending:
        QTest.keyClick(
            window.suggestions, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
        )
        wait_until(app, lambda: not controller.crisis_pending, 5, "Ctrl+Shift+A to acknowledge the crisis warning")
    chosen = next(i for i, s in enumerate(controller.slots) if s.decidable)
    window.suggestions.setFocus()
    QTest.keyClick(window.suggestions, Qt.Key.Key_1 + chosen)
    wait_until(
        app,
        lambda: controller.utterances and controller.utterances[-1].speaker == "therapist",
        10,
        "the accepted reply in the transcript",
    )
    stored = window.store.session_transcript(controller.session.id)
    report["stored_decisions"] = [d.decision for d in stored.decisions]
    report["transcript_turns"] = [u.speaker for u in stored.utterances]
    for _ in range(20):
        app.processEvents()
        time.sleep(0.01)
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    image = app.primaryScreen().grabWindow(0)  # the X screen itself, not a widget render
    if not image.save(str(screenshot), "PNG"):
        raise RuntimeError(f"could not save {screenshot}")
    report["screenshot"] = str(screenshot)
    window.close()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--screenshot", type=Path, required=True, help="PNG file to write")
    args = parser.parse_args(argv)
    if os.environ.get("QT_QPA_PLATFORM", "xcb") != "xcb" or not os.environ.get("DISPLAY"):
        print("run this under an X display (xvfb-run) with QT_QPA_PLATFORM unset or xcb", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="therapist-smoke-") as folder:
        report = walk(args.screenshot.resolve(), Path(folder))
    print(json.dumps(report))
    # The used draft is accepted; the two left open are recorded as not chosen.
    checks = {
        "decisions": report["stored_decisions"] == ["accepted", "not_chosen", "not_chosen"],
        "transcript": report["transcript_turns"] == ["client", "therapist"],
        "three suggestions": len(report["suggestions"]) == 3,
    }
    failed = [name for name, ok in checks.items() if not ok]
    if failed:
        print(f"smoke failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
