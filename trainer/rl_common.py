"""What GRPO and DPO share: training settings, LoRA, the metrics callback, reward curves."""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Sequence

from trainer.config import ConfigError, _f
from trainer.rewards.settings import RewardSettings
from trainer.run_folder import RunFolder


@dataclass(frozen=True)
class RLSettings(RewardSettings):
    model: str = _f("", "policy to train: a Hugging Face folder (e.g. an SFT run's merged/ folder)")
    data: str = _f("assets/seed_corpus.jsonl", "normalised JSONL: prompts (GRPO) come from its train split")
    output_dir: str = _f("runs/rl", "folder that holds one sub-folder per run")
    run_name: str = _f("", "name of this run's folder; empty means a timestamp")
    finetune: str = _f("lora", "lora (adapters through peft) or full (every weight)", ("lora", "full"))
    lora_r: int = _f(16, "LoRA rank")
    lora_alpha: int = _f(32, "LoRA scaling numerator")
    lora_dropout: float = _f(0.05, "dropout on the LoRA branch")
    learning_rate: float = _f(5e-6, "peak learning rate")
    beta: float = _f(0.1, "strength of the KL / reference-model term")
    batch_size: int = _f(4, "examples (prompts for GRPO, pairs for DPO) per device per step")
    grad_accum: int = _f(1, "steps whose gradients add up before an optimiser update")
    epochs: float = _f(1.0, "passes over the data (ignored when max_steps > 0)")
    max_steps: int = _f(-1, "optimiser updates to run; -1 means use epochs")
    max_length: int = _f(512, "longest prompt plus reply in tokens")
    seed: int = _f(0, "seed for the split, sampling and initialisation")
    device: str = _f("auto", "auto (CUDA when present), cpu or cuda", ("auto", "cpu", "cuda"))
    bf16: str = _f("auto", "bfloat16 mixed precision: auto, on or off", ("auto", "on", "off"))
    gradient_checkpointing: bool = _f(False, "recompute activations in the backward pass to save memory")
    logging_steps: int = _f(1, "log losses and rewards every N updates")
    save_steps: int = _f(100, "save a checkpoint every N updates (and at the end)")
    merge_lora: bool = _f(True, "also save the LoRA-merged full model (what GGUF export needs)")
    num_threads: int = _f(0, "CPU threads for torch; 0 means one per available core")

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("lora_r", "lora_alpha", "batch_size", "grad_accum", "max_length", "logging_steps", "save_steps"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, not {getattr(self, name)}")
        if self.max_steps == 0 or self.max_steps < -1:
            raise ConfigError("max_steps must be -1 (use epochs) or at least 1")
        if self.max_steps == -1 and self.epochs <= 0:
            raise ConfigError("epochs must be above 0 when max_steps is -1")
        if not 0 < self.learning_rate < 1 or self.beta < 0 or not 0 <= self.lora_dropout < 1 or self.num_threads < 0:
            raise ConfigError("need 0 < learning_rate < 1, beta >= 0, 0 <= lora_dropout < 1, num_threads >= 0")


def run_directory(settings: RLSettings) -> Path:
    return Path(settings.output_dir) / (settings.run_name or time.strftime("%Y%m%d-%H%M%S", time.gmtime()))


def hardware(settings: RLSettings) -> tuple[bool, bool, int]:
    """(use_cpu, bf16, threads), by the same rules as SFT."""
    from trainer.sft import resolve_device, set_threads

    threads = set_threads(settings.num_threads)
    use_cpu, bf16, _ = resolve_device(SimpleNamespace(device=settings.device, bf16=settings.bf16, packing="off"))
    return use_cpu, bf16, threads


def lora_config(settings: RLSettings):
    if settings.finetune != "lora":
        return None
    from peft import LoraConfig

    return LoraConfig(r=settings.lora_r, lora_alpha=settings.lora_alpha, lora_dropout=settings.lora_dropout,
                      target_modules="all-linear", task_type="CAUSAL_LM")


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def make_metrics_callback(folder: RunFolder | None):
    from transformers import TrainerCallback

    class RLMetricsCallback(TrainerCallback):
        """Appends every numeric log (losses, each reward component, margins) to metrics.jsonl."""

        def on_log(self, args, state, control, logs=None, **kwargs):
            if folder is None or not logs:
                return
            record = {"step": state.global_step}
            record.update({k: v for k, v in logs.items() if isinstance(v, (int, float)) and math.isfinite(v)})
            if len(record) > 1:
                folder.log_metrics(record)

    return RLMetricsCallback()


def reward_curves(runs: Sequence[Path]) -> dict[str, list[tuple[int, float]]]:
    """`rewards/<name>/mean` and the total `reward` per step from each run's metrics.jsonl."""
    curves: dict[str, list[tuple[int, float]]] = {}
    for run in runs:
        path = Path(run) / "metrics.jsonl"
        if not path.is_file():
            raise ValueError(f"{run} has no metrics.jsonl (not a training run folder)")
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            for key, value in row.items():
                if key == "reward" or (key.startswith("rewards/") and key.endswith("/mean")):
                    label = key.removeprefix("rewards/").removesuffix("/mean")
                    label = f"{Path(run).name}: {label}" if len(runs) > 1 else label
                    curves.setdefault(label, []).append((row["step"], value))
    return curves


def plot_curves(curves: dict[str, list[tuple[int, float]]], path: Path, ylabel: str = "mean reward") -> Path | None:
    if not curves:
        return None
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(7, 4), dpi=100)
    for label, points in curves.items():
        axes.plot(*zip(*points), label=label)
    axes.set_xlabel("step")
    axes.set_ylabel(ylabel)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path)
    pyplot.close(figure)
    return path
