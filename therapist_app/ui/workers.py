"""Work that must not run on the GUI thread: the suggestion engine and one-shot tasks.

The engine is not thread-safe, so it lives on ONE worker thread for its whole life
(load, rounds, close); emotion and risk analysis has a thread of its own. The GUI
talks to both only through queued signals and the thread-safe `cancel()`; tokens come
back as signals and are painted by the receiver on a timer. One-shot tasks (unlocking the store, hashing a model file,
erasing a client, writing an export) run on Qt's thread pool and report back as
signals. No widget is touched off the GUI thread.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence

from PySide6.QtCore import QObject, QRunnable, QThread, QThreadPool, Signal, Slot

from therapist_app.core import load_progress
from therapist_app.core.best_of_n import DraftScorer
from therapist_app.core.dialogue_format import SuggestionRequest, Turn
from therapist_app.core.draft_round import SHOWN, DraftRound, LeadersChanged, RoundResult
from therapist_app.core.engine import EngineConfig, EngineInfo, TokenEvent
from therapist_app.core.model_file import ModelFileError
from therapist_app.core.store import StoreError
from therapist_app.ui.analysis import Analyzer, AnalyzerFactory

log = logging.getLogger(__name__)


class Engine(Protocol):
    """What the GUI needs from `core.engine.SuggestionEngine` (and tests' fake engine)."""

    info: EngineInfo
    config: EngineConfig

    def stream(
        self, request: SuggestionRequest, n: int = 3, strategies: Sequence[str] | None = None, seed: int | None = None
    ) -> Any: ...

    def prime(self, context: Sequence[Turn], draft: str = "") -> int: ...

    def reset_session(self) -> None: ...

    def close(self) -> None: ...


EngineFactory = Callable[[EngineConfig], Engine]
ScorerFactory = Callable[[], DraftScorer]
ModelGate = Callable[[EngineConfig], None]
"""Runs on the engine thread before a load; raises to refuse the model (policy)."""
# A regenerated round samples with seeds this far from the last round's, so its drafts
# are new ones rather than a replay.
REGENERATE_SEED_STEP = 1000


@dataclass(frozen=True)
class RoundTicket:
    """One suggestion round as the GUI tracks it; `cancel()` works from any thread,
    before the round has even started."""

    round_id: int
    cancel_event: threading.Event

    def cancel(self) -> None:
        self.cancel_event.set()

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()


def _describe(error: BaseException) -> str:
    """A message fit for the screen. The core's own errors name files and ids, never
    client text; anything else (a UnicodeError quoting its input, say) is reduced to
    its type."""
    if isinstance(error, (ModelFileError, StoreError)) or type(error) is ValueError:
        return str(error) or type(error).__name__
    return type(error).__name__


class EngineWorker(QObject):
    """Lives on the engine thread. Slots run there; signals are queued to the GUI."""

    loaded = Signal(object)  # EngineInfo
    load_failed = Signal(str)
    load_progress = Signal(str, float)  # stage in words, 0..1
    token = Signal(int, int, str)  # round_id, draft index, text piece
    round_started = Signal(int, list, list)  # round_id, [(strategy, text so far)] per draft, leaders
    leaders_changed = Signal(int, list)  # round_id, draft index shown in each slot
    round_finished = Signal(int, object)  # round_id, RoundResult
    round_failed = Signal(int, str)

    def __init__(self, factory: EngineFactory, scorer_factory: ScorerFactory) -> None:
        super().__init__()
        self._factory = factory
        self._scorer_factory = scorer_factory
        self._scorer: DraftScorer | None = None
        self._engine: Engine | None = None

    @Slot(object, object)
    def load(self, config: EngineConfig, gate: ModelGate | None) -> None:
        self._close_engine()
        started = time.perf_counter()
        try:
            if gate is not None:
                gate(config)
            with load_progress.reporting(self.load_progress.emit):
                self._engine = self._factory(config)
        except Exception as error:  # a bad model file must never take the app down
            log.warning("model load failed: %s", type(error).__name__)
            self.load_failed.emit(_describe(error))
            return
        log.info("model loaded on the worker in %.2fs", time.perf_counter() - started)
        self.loaded.emit(self._engine.info)

    @Slot(object, object, object, int)
    def run_round(self, ticket: RoundTicket, request: SuggestionRequest, risk: tuple[str, ...], attempt: int) -> None:
        """Decode the round's candidates, stream the leaders, deliver the ranking.
        `attempt` counts regenerations for the same client words (new seeds each)."""
        if self._engine is None:
            self.round_failed.emit(ticket.round_id, "no model is loaded")
            return
        try:
            if self._scorer is None:
                self._scorer = self._scorer_factory()
            seed = self._engine.config.seed + REGENERATE_SEED_STEP * attempt
            drafts = DraftRound(
                self._engine, request, self._scorer, risk, shown=SHOWN, seed=seed, sample_all=attempt > 0
            )
            self.round_started.emit(
                ticket.round_id, [(d.strategy, drafts.text(d.index)) for d in drafts.drafts], list(drafts.leaders)
            )
            if ticket.cancelled:
                drafts.cancel()
            for event in drafts:
                if ticket.cancelled:
                    drafts.cancel()
                if isinstance(event, LeadersChanged):
                    self.leaders_changed.emit(ticket.round_id, list(event.leaders))
                else:
                    self._emit_token(ticket, event)
            result: RoundResult = drafts.result
        except Exception as error:
            log.warning("suggestion round %d failed: %s", ticket.round_id, type(error).__name__)
            self.round_failed.emit(ticket.round_id, _describe(error))
            return
        self.round_finished.emit(ticket.round_id, result)

    def _emit_token(self, ticket: RoundTicket, event: TokenEvent) -> None:
        if not ticket.cancelled:
            self.token.emit(ticket.round_id, event.index, event.text)

    @Slot(object, str, object)
    def prime(self, context: tuple[Turn, ...], draft: str, still_wanted: Callable[[], bool]) -> None:
        # Drafts arrive while the therapist types; one overtaken by a newer draft (or
        # by a round) before this thread got to it is skipped, not decoded.
        if self._engine is None or not still_wanted():
            return
        try:
            self._engine.prime(context, draft)
        except Exception as error:  # priming only saves time; a round still works without it
            log.warning("priming the session cache failed: %s", type(error).__name__)

    @Slot()
    def reset_session(self) -> None:
        if self._engine is not None:
            self._engine.reset_session()

    @Slot()
    def shutdown(self) -> None:
        self._close_engine()

    def _close_engine(self) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None


class AnalysisWorker(QObject):
    """Lives on its own thread, so risk detection never waits behind a model load or a
    round: the crisis banner depends on the detector alone."""

    analysed = Signal(int, object)  # request id, Analysis
    analysis_failed = Signal(int, str)

    def __init__(self, analyzer_factory: AnalyzerFactory) -> None:
        super().__init__()
        self._analyzer_factory = analyzer_factory
        self._analyzer: Analyzer | None = None

    @Slot()
    def prepare(self) -> None:
        """Load the analyser before the first client words arrive: MiniLM and the two
        heads take a second or two, time the therapist spends unlocking and opening a
        session. A failure here is only logged: the first analysis tries again and
        reports it, with the words kept."""
        if self._analyzer is None:
            try:
                self._analyzer = self._analyzer_factory()
            except Exception as error:
                log.warning("analyser warm-up failed: %s", type(error).__name__)

    @Slot(int, str, object)
    def analyze(self, request_id: int, text: str, recent: tuple[Turn, ...]) -> None:
        started = time.perf_counter()
        try:
            if self._analyzer is None:
                self._analyzer = self._analyzer_factory()
            analysis = self._analyzer(text, recent)
        except Exception as error:
            log.warning("analysis %d failed: %s", request_id, type(error).__name__)
            self.analysis_failed.emit(request_id, _describe(error))
            return
        log.info("analysis %d took %.3fs (%d chars)", request_id, time.perf_counter() - started, len(text))
        self.analysed.emit(request_id, analysis)


class EngineClient(QObject):
    """The GUI thread's handle on the engine thread.

    Every call returns at once; results arrive as the worker's signals, re-emitted here
    for rounds that are still current (a stale round's late tokens are dropped).
    """

    loaded = Signal(object)
    load_failed = Signal(str)
    load_progress = Signal(str, float)  # stage in words, 0..1
    token = Signal(int, str)  # draft index, text piece
    round_started = Signal(list, list)  # [(strategy, text so far)] per draft, leaders
    leaders_changed = Signal(list)
    round_finished = Signal(object)  # RoundResult
    round_failed = Signal(str)
    analysed = Signal(object)  # Analysis of the latest request
    analysis_failed = Signal(str)

    _request_analysis = Signal(int, str, object)
    _request_analysis_warmup = Signal()
    _request_load = Signal(object, object)
    _request_round = Signal(object, object, object, int)
    _request_prime = Signal(object, str, object)
    _request_reset = Signal()
    _request_shutdown = Signal()

    def __init__(
        self,
        factory: EngineFactory,
        analyzer_factory: AnalyzerFactory,
        scorer_factory: ScorerFactory,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._thread = QThread()
        self._thread.setObjectName("engine")
        self._worker = EngineWorker(factory, scorer_factory)
        self._worker.moveToThread(self._thread)
        self._analysis_thread = QThread()
        self._analysis_thread.setObjectName("analysis")
        self._analysis = AnalysisWorker(analyzer_factory)
        self._analysis.moveToThread(self._analysis_thread)
        self._request_analysis.connect(self._analysis.analyze)
        self._request_analysis_warmup.connect(self._analysis.prepare)
        self._analysis.analysed.connect(self._on_analysed)
        self._analysis.analysis_failed.connect(self._on_analysis_failed)
        self._analysis_id = 0
        self._request_load.connect(self._worker.load)
        self._request_round.connect(self._worker.run_round)
        self._request_prime.connect(self._worker.prime)
        self._request_reset.connect(self._worker.reset_session)
        self._request_shutdown.connect(self._worker.shutdown)
        self._worker.loaded.connect(self._on_loaded)
        self._worker.load_failed.connect(self._on_load_failed)
        self._worker.load_progress.connect(self.load_progress)
        self._worker.token.connect(self._on_token)
        self._worker.round_started.connect(self._on_round_started)
        self._worker.leaders_changed.connect(self._on_leaders_changed)
        self._worker.round_finished.connect(self._on_round_finished)
        self._worker.round_failed.connect(self._on_round_failed)
        self._thread.start()
        self._analysis_thread.start()
        self._request_analysis_warmup.emit()
        self._next_id = 0
        self._prime_id = 0
        self._current: RoundTicket | None = None
        self.info: EngineInfo | None = None
        self.loading = False

    # ---- requests --------------------------------------------------------------

    def analyze(self, text: str, recent: tuple[Turn, ...]) -> None:
        """Emotion and risk for `text`; only the latest request's answer is delivered."""
        self._analysis_id += 1
        self._request_analysis.emit(self._analysis_id, text, recent)

    def forget_analysis(self) -> None:
        """Drop the answer to any analysis still queued (the screen was cleared)."""
        self._analysis_id += 1

    def load(self, config: EngineConfig, gate: ModelGate | None = None) -> None:
        self.cancel()
        self.loading = True
        self.info = None
        self._request_load.emit(config, gate)

    def start_round(self, request: SuggestionRequest, risk: Sequence[str] = (), attempt: int = 0) -> None:
        """Start a round of suggestions; a round still running is cancelled first.
        `risk` is the flagged categories of the client's words (a crisis-aware round);
        `attempt` counts regenerations for the same words (each samples anew)."""
        self.cancel()
        self._prime_id += 1  # the round decodes its own prompt: queued primes are moot
        self._next_id += 1
        self._current = RoundTicket(self._next_id, threading.Event())
        self._request_round.emit(self._current, request, tuple(risk), attempt)

    def cancel(self) -> None:
        if self._current is not None:
            self._current.cancel()

    @property
    def generating(self) -> bool:
        return self._current is not None

    def prime(self, context: tuple[Turn, ...], draft: str = "") -> None:
        """Decode the session so far, and `draft` (the client's words as typed so
        far), on the engine thread while the therapist and client talk, so the next
        round's first token comes sooner. Queued behind any round in progress; a
        prime still queued when a newer prime or a round is requested is dropped."""
        self._prime_id += 1
        prime_id = self._prime_id
        self._request_prime.emit(tuple(context), draft, lambda: prime_id == self._prime_id)

    def reset_session(self) -> None:
        self.cancel()
        self._request_reset.emit()

    def shutdown(self, timeout_ms: int = 10_000) -> None:
        """Cancel, close the engine on its own thread and stop both threads."""
        if not self._thread.isRunning():
            return
        self.cancel()
        self._current = None
        self.forget_analysis()
        self._request_shutdown.emit()
        for thread in (self._thread, self._analysis_thread):
            thread.quit()
            if not thread.wait(timeout_ms):
                log.warning("the %s thread did not stop within %d ms", thread.objectName(), timeout_ms)

    # ---- results (GUI thread) ----------------------------------------------------

    def _is_current(self, round_id: int) -> bool:
        return self._current is not None and self._current.round_id == round_id

    def _on_analysed(self, request_id: int, analysis) -> None:
        if request_id == self._analysis_id:
            self.analysed.emit(analysis)

    def _on_analysis_failed(self, request_id: int, message: str) -> None:
        if request_id == self._analysis_id:
            self.analysis_failed.emit(message)

    def _on_loaded(self, info: EngineInfo) -> None:
        self.loading = False
        self.info = info
        self.loaded.emit(info)

    def _on_load_failed(self, message: str) -> None:
        self.loading = False
        self.load_failed.emit(message)

    def _on_round_started(self, round_id: int, drafts: list, leaders: list) -> None:
        if self._is_current(round_id):
            self.round_started.emit(drafts, leaders)

    def _on_leaders_changed(self, round_id: int, leaders: list) -> None:
        if self._is_current(round_id):
            self.leaders_changed.emit(leaders)

    def _on_token(self, round_id: int, index: int, text: str) -> None:
        if self._is_current(round_id) and not self._current.cancelled:
            self.token.emit(index, text)

    def _on_round_finished(self, round_id: int, result: RoundResult) -> None:
        if self._is_current(round_id):
            self._current = None
            self.round_finished.emit(result)

    def _on_round_failed(self, round_id: int, message: str) -> None:
        if self._is_current(round_id):
            self._current = None
            self.round_failed.emit(message)


class _TaskSignals(QObject):
    done = Signal(int, object)
    failed = Signal(int, object)  # the exception


class _Task(QRunnable):
    def __init__(self, task_id: int, fn: Callable[[], Any], signals: _TaskSignals) -> None:
        super().__init__()
        self._id = task_id
        self._fn = fn
        self._signals = signals

    def run(self) -> None:
        try:
            result = self._fn()
        except Exception as error:  # delivered to the GUI as a signal, never raised there
            self._signals.failed.emit(self._id, error)
            return
        self._signals.done.emit(self._id, result)


class TaskRunner(QObject):
    """Runs one-shot blocking calls off the GUI thread (store unlock, hashing, erasure,
    export), one at a time. `busy` is true while one runs: the GUI keeps away from the
    store until then (the store is not thread-safe)."""

    busy_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._signals = _TaskSignals(self)
        self._signals.done.connect(self._on_done)
        self._signals.failed.connect(self._on_failed)
        self._handlers: dict[int, tuple[Callable, Callable]] = {}
        self._next_id = 0

    @property
    def busy(self) -> bool:
        return bool(self._handlers)

    def run(
        self, fn: Callable[[], Any], on_done: Callable[[Any], None], on_error: Callable[[BaseException], None]
    ) -> None:
        self._next_id += 1
        self._handlers[self._next_id] = (on_done, on_error)
        if len(self._handlers) == 1:
            self.busy_changed.emit(True)
        self._pool.start(_Task(self._next_id, fn, self._signals))

    def wait(self, timeout_ms: int = 30_000) -> bool:
        return self._pool.waitForDone(timeout_ms)

    def _finish(self, task_id: int) -> tuple[Callable, Callable]:
        handlers = self._handlers.pop(task_id)
        if not self._handlers:
            self.busy_changed.emit(False)
        return handlers

    @Slot(int, object)
    def _on_done(self, task_id: int, value: Any) -> None:
        self._finish(task_id)[0](value)

    @Slot(int, object)
    def _on_failed(self, task_id: int, error: BaseException) -> None:
        self._finish(task_id)[1](error)
