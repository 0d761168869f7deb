"""How far a model load has got, for whoever waits on it (the window's progress bar).

Loading runs on the engine's worker thread and passes through code that knows nothing
of Qt: the adapter merge, llama.cpp's weight loading, the context. Each reports here;
`reporting(callback)` decides, for the current thread, who hears it. Without a callback
every report is a no-op.

>>> heard = []
>>> with reporting(lambda stage, done: heard.append((stage, done))):
...     report("loading the model", 0.5)
>>> report("nobody listens", 1.0)
>>> heard
[('loading the model', 0.5)]
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Callable, Iterator

Callback = Callable[[str, float], None]

_listener: ContextVar[Callback | None] = ContextVar("load_progress", default=None)


@contextmanager
def reporting(callback: Callback) -> Iterator[None]:
    token = _listener.set(callback)
    try:
        yield
    finally:
        _listener.reset(token)


def report(stage: str, done: float) -> None:
    """`stage` in words ("loading the model"), `done` from 0 to 1."""
    callback = _listener.get()
    if callback is not None:
        callback(stage, min(max(done, 0.0), 1.0))


def listening() -> bool:
    return _listener.get() is not None
