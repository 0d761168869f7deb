"""`therapist-app selftest`: one non-interactive session end to end, for installs and CI.

Clinic IT (and the package smoke test) run it on a fresh machine to prove the install
is whole: the clinic policy loads, an encrypted store is created in a throw-away
folder under a passphrase generated in memory, the language model and the emotion and
risk analysis load, the model writes one suggestion, the decision is recorded, the
export obeys the policy, the store is checked, locked and reopened, and (where Qt can
start) the main window opens and closes. The user's real store, settings
and keychain are never touched, and no client text exists: the words are authored.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from therapist_app.cli import has_display
from therapist_app.core.dialogue_format import EmotionReading, SuggestionRequest
from therapist_app.core.engine import EngineConfig, SuggestionEngine
from therapist_app.core.model_file import ModelFileError, resolve_choice
from therapist_app.core.policy import Policy, PolicyError, load_policy, system_policy_path, user_policy_path
from therapist_app.core.store import ExportRefused, Store, StoreError, StoreLocked

# The window's analysis adapter (it imports no Qt): the selftest runs exactly the emotion
# and risk analysis the app runs, with or without the emotion classifier installed.
from therapist_app.ui.analysis import Analyzer, default_analyzer

# Authored by the project, never client data: an ordinary turn for the suggestion and
# an unambiguous crisis sentence the risk detector must flag.
CLIENT_WORDS = "I've been really on edge this week and I can't sleep before work."
CLIENT_EMOTION = "stress"
CRISIS_WORDS = "I don't want to be alive anymore. I've been thinking about ending my life."
SELFTEST_CLIENT = "SELFTEST-1"


class SelftestFailed(Exception):
    """A step did not do what the product promises; the message names the step."""


@dataclass(frozen=True)
class SelftestOptions:
    model_path: Path | None
    """GGUF to suggest with; None is the bundled model."""
    n_threads: int | None
    max_tokens: int
    gui: str
    """'auto' (open the window unless Qt is not installed), 'require' or 'skip'."""


class Reporter:
    """Prints one line per step with its duration, since the command started."""

    def __init__(self, out: Callable[[str], None]) -> None:
        self._out = out
        self.started = time.perf_counter()

    def say(self, line: str) -> None:
        self._out(f"selftest: {line}")

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    @contextmanager
    def step(self, name: str) -> Iterator[list[str]]:
        details: list[str] = []
        began = time.perf_counter()
        try:
            yield details
        except SelftestFailed:
            raise
        except Exception as error:
            raise SelftestFailed(f"{name}: {type(error).__name__}: {error}") from error
        took = time.perf_counter() - began
        extra = f" - {'; '.join(details)}" if details else ""
        self.say(f"{name} ok ({took:.2f} s){extra}")


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise SelftestFailed(message)


def _describe_policy_file(path: Path) -> str:
    return f"{path} ({'present' if path.is_file() else 'absent'})"


def _print_now(line: str) -> None:
    # Flushed line by line: the smoke test times the "ready" line through a pipe.
    print(line, flush=True)


def run_selftest(options: SelftestOptions, data_dir: Path, out: Callable[[str], None] = _print_now) -> float:
    """Run every step in `data_dir` (which must be empty); returns the seconds taken.

    Raises SelftestFailed naming the first step that failed.
    """
    report = Reporter(out)
    with report.step("policy") as notes:
        policy = load_policy()
        notes += [
            f"system {_describe_policy_file(system_policy_path())}",
            f"user {_describe_policy_file(user_policy_path())}",
        ]

    db = data_dir / "selftest.db"
    passphrase = secrets.token_urlsafe(24)
    with ExitStack() as unlocked:
        with report.step("create encrypted store") as notes:
            store = Store.create(db, passphrase)
            unlocked.callback(store.lock)
            notes.append(f"store id {store.store_id}")

        with report.step("load language model") as notes:
            model_path, adapter_path = resolve_choice(options.model_path)
            engine = unlocked.enter_context(
                SuggestionEngine(
                    EngineConfig(
                        model_path=model_path,
                        adapter_path=adapter_path,
                        n_threads=options.n_threads,
                        max_tokens=options.max_tokens,
                    )
                )
            )
            notes.append(f"{engine.info.model_name} on {engine.info.device}, {engine.info.n_threads} threads")

        with report.step("load emotion and risk analysis") as notes:
            analyze = default_analyzer()
            crisis = analyze(CRISIS_WORDS, ()).risk
            _check(crisis.flagged, "risk detection: an authored crisis sentence was not flagged")
            notes.append(f"crisis sentence flagged as {crisis.categories[0]} ({crisis.severity})")

        report.say(f"ready after {report.elapsed():.2f} s")

        with report.step("one suggestion") as notes:
            _suggest_and_decide(store, engine, analyze, notes)

        with report.step("export (as policy allows)") as notes:
            notes.append(_export(store, policy, data_dir / "export.jsonl"))

        with report.step("integrity check") as notes:
            integrity = store.integrity_check()
            _check(integrity.ok, f"integrity check found {len(integrity.problems)} problems")

    with report.step("lock and reopen"):
        _check(store.locked, "the store did not lock")
        try:
            store.list_clients()
        except StoreLocked:
            pass
        else:
            raise SelftestFailed("a locked store still answered a query")
        with Store.open(db, passphrase) as reopened:
            client = reopened.list_clients()[0]
            session = reopened.sessions(client.id)[0]
            decisions = reopened.session_transcript(session.id).decisions
            _check(len(decisions) == 1, f"expected 1 recorded decision, found {len(decisions)}")

    _gui_step(options.gui, data_dir, report)
    return report.elapsed()


def _suggest_and_decide(store: Store, engine: SuggestionEngine, analyze: Analyzer, notes: list[str]) -> None:
    client = store.add_client(SELFTEST_CLIENT)
    session = store.start_session(client.id)
    analysis = analyze(CLIENT_WORDS, ())
    # The classifier's reading when there is one; else the therapist's, as in the app.
    emotion = analysis.emotion or EmotionReading(CLIENT_EMOTION)
    utterance = store.append_utterance(
        session.id,
        "client",
        CLIENT_WORDS,
        emotion=emotion.label,
        confidence=emotion.confidence,
        risk_flags=analysis.risk.categories,
    )
    request = SuggestionRequest(CLIENT_WORDS, (), emotion)
    result = engine.complete(request, n=1)
    suggestion = result.suggestions[0]
    _check(
        suggestion.n_tokens > 0 and bool(suggestion.text.strip()),
        f"the model produced no usable reply (finish: {suggestion.finish_reason})",
    )
    record = store.add_suggestion(
        utterance.id, engine.info.model_name, suggestion.strategy, suggestion.text, result.stats.total_s * 1000
    )
    store.decide(record.id, "accepted")
    store.end_session(session.id)
    notes.append(
        f"emotion {emotion.label}, {suggestion.n_tokens} tokens, first after "
        f"{result.stats.ttft_s * 1000:.0f} ms, round {result.stats.total_s:.2f} s, "
        "accepted and recorded"
    )


def _export(store: Store, policy: Policy, destination: Path) -> str:
    if not policy.export_allowed:
        try:
            store.export_training(destination, policy)
        except ExportRefused:
            return "refused, as the policy says (export_allowed = false)"
        raise SelftestFailed("export: the policy forbids export but the store exported")
    count = store.export_training(destination, policy)
    _check(count == 1, f"export: expected 1 decision, wrote {count}")
    return "1 de-identified decision written"


def _gui_step(mode: str, data_dir: Path, report: Reporter) -> None:
    """Open and close the main window offscreen-capable, without a store or a model."""
    if mode == "skip":
        return
    if not has_display():
        # Without a display Qt's default platform aborts the process; the window can
        # still be built and laid out offscreen.
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    try:
        from PySide6.QtCore import QSettings
        from PySide6.QtWidgets import QApplication

        from therapist_app.ui.app import create_application, real_engine
        from therapist_app.ui.dialogs import AboutDialog
        from therapist_app.ui.main_window import AppContext, MainWindow
        from therapist_app.ui.settings import AppSettings
    except ImportError as error:
        # Only a missing Qt is a reason to skip; any other import error is a broken build.
        qt_missing = (error.name or "").split(".")[0] in ("PySide6", "shiboken6")
        if mode == "require" or not qt_missing:
            raise SelftestFailed(f"gui: the window cannot be imported ({error})") from None
        report.say(f"gui skipped (Qt is not installed: {error})")
        return
    with report.step("open and close the main window") as notes:
        app = create_application(["therapist-app"])
        settings = QSettings(str(data_dir / "gui-settings.ini"), QSettings.Format.IniFormat)
        context = AppContext(
            store_path=data_dir / "gui-store.db",
            policy=load_policy(),
            settings=AppSettings(settings),
            engine_factory=real_engine,
            analyzer_factory=default_analyzer,
        )
        window = MainWindow(context)
        window.show()
        about = AboutDialog(window)
        about.show()
        app.processEvents()
        about.close()
        window.close()
        app.processEvents()
        notes.append(f"platform {QApplication.platformName()}")


def run(args: argparse.Namespace) -> int:
    options = SelftestOptions(args.model, args.threads, args.max_tokens, args.gui)
    try:
        if args.data_dir is not None:
            args.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            _check(not any(args.data_dir.iterdir()), f"--data-dir {args.data_dir} is not empty")
            took = run_selftest(options, args.data_dir)
        else:
            with tempfile.TemporaryDirectory(prefix="therapist-selftest-") as tmp:
                took = run_selftest(options, Path(tmp))
    except (SelftestFailed, StoreError, PolicyError, ModelFileError) as error:
        print(f"selftest: FAILED: {error}", file=sys.stderr)
        return 1
    print(f"selftest: passed in {took:.2f} s")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "selftest",
        help="run one session end to end in a throw-away folder (checks an install)",
        description="Create an encrypted store in a temporary folder, load the model "
        "and the emotion and risk analysis, write one suggestion and record its decision, export as "
        "the clinic policy allows, check, lock and reopen the store, then open and close "
        "the window where Qt can start. Exit status 0 means the install works. Your own "
        "store, settings and keychain are not touched.",
    )
    parser.add_argument("--model", type=Path, help="GGUF model file (default: the bundled SmolLM2)")
    parser.add_argument("--threads", type=int, help="CPU threads (default: available cores)")
    parser.add_argument("--max-tokens", type=int, default=32, help="most tokens in the one suggestion (default 32)")
    parser.add_argument(
        "--gui",
        choices=("auto", "require", "skip"),
        default="auto",
        help="open the main window: auto (when Qt is installed), require, or "
        "skip (default auto; set QT_QPA_PLATFORM=offscreen without a display)",
    )
    parser.add_argument(
        "--data-dir", type=Path, help="an empty folder to work in (default: a temporary folder, deleted after)"
    )
    parser.set_defaults(func=run)
