"""The Qt binding itself: PySide6 6.12.0's emit() dropped a reference to True on every
call, which aborts the interpreter after a few thousand signals (a day of tokens)."""

from __future__ import annotations

import sys

import pytest
from PySide6.QtCore import QObject, Signal

pytestmark = pytest.mark.gui


class _Emitter(QObject):
    text = Signal(str)
    flag = Signal(bool)


def test_emitting_signals_keeps_the_bool_singletons_alive(qtbot):
    emitter = _Emitter()
    received = []
    emitter.flag.connect(lambda value: received.append(type(value)))
    before = sys.getrefcount(True), sys.getrefcount(False)
    for _ in range(200):
        emitter.text.emit("token")
        emitter.flag.emit(False)
    assert received == [bool] * 200
    assert (sys.getrefcount(True), sys.getrefcount(False)) == before
