"""The app's own preferences (QSettings): display and model choices only.

Never client text, codes, file names of exports or anything else from a session:
that lives in the encrypted store alone.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from PySide6.QtCore import QSettings

from therapist_app.core.engine import EngineConfig
from therapist_app.core.llama_runtime import SamplingParams
from therapist_app.core.model_file import resolve_choice

CONTEXT_SIZES = (1024, 2048, 4096, 8192)


@dataclass(frozen=True)
class ModelSettings:
    model_path: str | None = None
    """None: the bundled model with its tuned adapter; `model_file.UNTUNED`: without it."""
    n_gpu_layers: int | None = None
    """None: automatic (as many as fit the free GPU memory on a GPU build, none on CPU)."""
    n_ctx: int = 2048
    temperature: float = 0.7

    def __post_init__(self) -> None:
        if self.n_ctx not in CONTEXT_SIZES:
            raise ValueError(f"context size must be one of {CONTEXT_SIZES}")
        if not 0.0 <= self.temperature <= 2.0:
            raise ValueError("temperature must be within 0..2")
        if self.n_gpu_layers is not None and self.n_gpu_layers < 0:
            raise ValueError("GPU layers must be >= 0, or automatic")

    def engine_config(self) -> EngineConfig:
        model_path, adapter_path = resolve_choice(self.model_path)
        return EngineConfig(
            model_path=model_path,
            adapter_path=adapter_path,
            n_ctx=self.n_ctx,
            n_gpu_layers=self.n_gpu_layers,
            sampling=replace(SamplingParams(), temperature=self.temperature),
        )


class AppSettings:
    def __init__(self, qsettings: QSettings) -> None:
        self._q = qsettings

    def model(self) -> ModelSettings:
        q = self._q
        layers = q.value("model/n_gpu_layers", -1, int)
        try:
            return ModelSettings(
                model_path=q.value("model/path", "", str) or None,
                n_gpu_layers=None if layers < 0 else layers,
                n_ctx=q.value("model/n_ctx", 2048, int),
                temperature=q.value("model/temperature", 0.7, float),
            )
        except ValueError:
            return ModelSettings()

    def set_model(self, settings: ModelSettings) -> None:
        q = self._q
        q.setValue("model/path", settings.model_path or "")
        q.setValue("model/n_gpu_layers", -1 if settings.n_gpu_layers is None else settings.n_gpu_layers)
        q.setValue("model/n_ctx", settings.n_ctx)
        q.setValue("model/temperature", settings.temperature)
        q.sync()

    def model_folders(self) -> tuple[str, ...]:
        """Folders the user named for the model manager to search besides the other
        apps' usual ones (core/model_discovery.py)."""
        return tuple(str(f) for f in self._q.value("model/extra_folders", [], list) if str(f).strip())

    def set_model_folders(self, folders: tuple[str, ...]) -> None:
        self._q.setValue("model/extra_folders", list(folders))
        self._q.sync()

    def font_step(self) -> int:
        return self._q.value("view/font_step", 0, int)

    def set_font_step(self, step: int) -> None:
        self._q.setValue("view/font_step", step)
