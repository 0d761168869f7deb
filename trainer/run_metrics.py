"""The one trainer callback every run uses: it writes `metrics.jsonl` and measures tokens/s."""

from __future__ import annotations

import math
import time

from transformers import TrainerCallback

from trainer.run_folder import RunFolder


class MetricsCallback(TrainerCallback):
    """Appends every numeric log (losses, learning rate, reward components, margins) to
    the run folder (main process only) and measures training throughput one way for
    every trainer.

    Throughput is TRL's `num_tokens` (the non-padding tokens of all processes; for GRPO
    prompts and generated completions) gained between two training logs, over the wall
    time between them, validation excluded. The first training log is the baseline:
    SFT and DPO count from zero in each `train()` call, GRPO from the resumed state.
    """

    def __init__(self, folder: RunFolder | None) -> None:
        self.folder = folder
        self._tokens = 0.0
        self._seconds = 0.0
        self._last: tuple[float, float] | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        self._last = None

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = dict(logs or {})
        now = time.perf_counter()
        record = {"step": state.global_step, "epoch": round(state.epoch or 0.0, 4)}
        record.update(
            {
                k: v
                for k, v in logs.items()
                if k != "epoch" and isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            }
        )
        if "num_tokens" in logs and "loss" in logs:
            tokens = float(logs["num_tokens"])
            if self._last is not None and tokens > self._last[1] and now > self._last[0]:
                record["tokens_per_second"] = round((tokens - self._last[1]) / (now - self._last[0]), 1)
                self._tokens += tokens - self._last[1]
                self._seconds += now - self._last[0]
            self._last = (now, tokens)
        if "eval_loss" in logs and self._last is not None:
            # Validation time is not training time: restart the clock after it.
            self._last = (time.perf_counter(), self._last[1])
        if self.folder is not None and len(record) > 2:
            self.folder.log_metrics(record)

    def tokens_per_second(self) -> float:
        """Mean training throughput between logs (0.0 when fewer than two training logs)."""
        return self._tokens / self._seconds if self._seconds else 0.0
