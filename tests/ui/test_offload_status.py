"""The status bar says where the model runs, and that the GPU was given up when it was."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.ui.conftest import unlock
from tests.ui.fakes import FakeEngine, FakeScript
from therapist_app.core.offload import GpuLoadFailed, Plan, load_placed

pytestmark = pytest.mark.gui


def _gpu_gave_out(layers: int) -> str:
    if layers:
        raise GpuLoadFailed("out of GPU memory", True, "cudaMalloc failed: out of memory")
    return "loaded"


def test_status_bar_shows_the_cpu_fallback(qtbot, make_window):
    # The engine's own fallback (core/offload.py) decides; the fake engine only carries it.
    _, placement = load_placed(Plan("cuda", 31, 31, "fit", free_bytes=6_100_000_000), _gpu_gave_out)

    def engine_factory(config):
        engine = FakeEngine(config, FakeScript())
        engine.info = replace(
            engine.info, placement=placement, device=placement.device, n_gpu_layers=placement.n_gpu_layers
        )
        return engine

    window = make_window(engine_factory=engine_factory).window
    unlock(qtbot, window)
    sentence = "GPU load failed (out of GPU memory); running on the CPU"
    assert window.device_label.text() == "Device: CPU (GPU failed)"
    assert window.device_label.toolTip() == sentence
    qtbot.waitUntil(lambda: sentence in window.statusBar().currentMessage(), timeout=5000)
    assert window.statusBar().currentMessage() == f"Model ready: Fake model. {sentence}."


def test_a_model_load_shows_a_moving_progress_bar_that_goes_when_done(qtbot, make_window):
    from therapist_app.core import load_progress

    def slow_engine(config):
        for step in (0.25, 0.5, 1.0):
            load_progress.report("loading the model", step)
        return FakeEngine(config, FakeScript())

    h = make_window(engine_factory=slow_engine)
    window = h.window
    seen = []
    window.engine.load_progress.connect(lambda stage, done: seen.append((stage, done, window.load_bar.isVisible())))
    unlock(qtbot, window)
    assert [(stage, done) for stage, done, _ in seen] == [
        ("loading the model", 0.25),
        ("loading the model", 0.5),
        ("loading the model", 1.0),
    ]
    assert not window.load_bar.isVisible() and window.model_label.text() == "Model: Fake model"
