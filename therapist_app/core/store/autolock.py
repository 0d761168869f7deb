"""The auto-lock hook: lock the store after `timeout_s` without activity, or on suspend.

The GUI calls `touch()` on user activity and `check()` from a timer (every few
seconds); `suspend()` from the OS sleep signal. Idle time is measured with
`time.monotonic`, so a wall-clock jump neither locks early nor postpones the lock.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

from therapist_app.core.store.store import Store

log = logging.getLogger(__name__)


class AutoLock:
    def __init__(self, store: Store, timeout_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        self.store = store
        self.timeout_s = timeout_s
        self._clock = clock
        self._last_activity = clock()

    def touch(self) -> None:
        """Record user activity (a key press, a click)."""
        self._last_activity = self._clock()

    def idle_s(self) -> float:
        return self._clock() - self._last_activity

    def check(self) -> bool:
        """Lock if idle for `timeout_s` or longer; returns whether the store is locked."""
        if not self.store.locked and self.idle_s() >= self.timeout_s:
            log.info("auto-lock after %.0f s idle", self.idle_s())
            self.store.lock()
        return self.store.locked

    def suspend(self) -> None:
        """The machine is going to sleep: lock now."""
        self.store.lock()
