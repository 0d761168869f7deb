"""Auto-lock: after `timeout_s` without keyboard or mouse input, and on suspend.

Idle time is measured on an injectable monotonic clock (tests pass a fake one), so a
wall-clock jump neither locks early nor postpones the lock. Qt reports suspend only on
some platforms (ApplicationSuspended); where it does, the app locks at once.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication

log = logging.getLogger(__name__)

_ACTIVITY = frozenset(
    {
        QEvent.Type.KeyPress,
        QEvent.Type.MouseButtonPress,
        QEvent.Type.MouseMove,
        QEvent.Type.Wheel,
        QEvent.Type.TouchBegin,
        QEvent.Type.InputMethod,
    }
)


class IdleWatcher(QObject):
    """Emits `lock_requested` once the idle time reaches the timeout (or on suspend)."""

    lock_requested = Signal(str)  # the reason: "idle" or "suspend"

    def __init__(
        self,
        timeout_s: float,
        clock: Callable[[], float] = time.monotonic,
        check_ms: int = 1000,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        self.timeout_s = timeout_s
        self._clock = clock
        self._last = clock()
        self._timer = QTimer(self)
        self._timer.setInterval(check_ms)
        self._timer.timeout.connect(self.check)
        self.paused = False
        """Set while something long holds the store (a task): the lock waits for it."""
        app = QGuiApplication.instance()
        app.installEventFilter(self)
        app.applicationStateChanged.connect(self._on_state)

    def start(self) -> None:
        self.touch()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    @property
    def active(self) -> bool:
        return self._timer.isActive()

    def touch(self) -> None:
        self._last = self._clock()

    def idle_s(self) -> float:
        return self._clock() - self._last

    def check(self) -> None:
        if self.active and not self.paused and self.idle_s() >= self.timeout_s:
            log.info("auto-lock after %.0f s idle", self.idle_s())
            self.stop()
            self.lock_requested.emit("idle")

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() in _ACTIVITY:
            self._last = self._clock()
        return False

    def _on_state(self, state: Qt.ApplicationState) -> None:
        if state == Qt.ApplicationState.ApplicationSuspended and self.active:
            log.info("auto-lock on suspend")
            self.stop()
            self.lock_requested.emit("suspend")
