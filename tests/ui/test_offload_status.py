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
        engine.info = replace(engine.info, placement=placement, device=placement.device,
                              n_gpu_layers=placement.n_gpu_layers)
        return engine

    window = make_window(engine_factory=engine_factory).window
    unlock(qtbot, window)
    sentence = "GPU load failed (out of GPU memory); running on the CPU"
    assert window.device_label.text() == "Device: CPU (GPU failed)"
    assert window.device_label.toolTip() == sentence
    qtbot.waitUntil(lambda: sentence in window.statusBar().currentMessage(), timeout=5000)
    assert window.statusBar().currentMessage() == f"Model ready: Fake model. {sentence}."
