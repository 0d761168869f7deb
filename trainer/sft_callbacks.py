"""The trainer callback that writes `metrics.jsonl`: loss, learning rate, tokens/s."""

from __future__ import annotations

import time

from transformers import TrainerCallback

from trainer.run_folder import RunFolder


class MetricsCallback(TrainerCallback):
    """Appends each log to the run folder (main process only) and measures tokens/s.

    Tokens are TRL's `num_tokens`, the non-padding tokens seen on all processes, so the
    rate is real training throughput, not padded width.
    """

    def __init__(self, folder: RunFolder | None) -> None:
        self.folder = folder
        self._tokens = 0.0
        self._seconds = 0.0
        self._last: tuple[float, float] | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        # TRL counts tokens from zero in every `train()` call, resumed ones included.
        self._last = (time.perf_counter(), 0.0)

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = dict(logs or {})
        now = time.perf_counter()
        record = {"step": state.global_step, "epoch": round(state.epoch or 0.0, 4)}
        if "num_tokens" in logs and "loss" in logs:
            tokens = float(logs["num_tokens"])
            if self._last is not None and tokens > self._last[1] and now > self._last[0]:
                rate = (tokens - self._last[1]) / (now - self._last[0])
                self._tokens += tokens - self._last[1]
                self._seconds += now - self._last[0]
                record["tokens_per_second"] = round(rate, 1)
            self._last = (now, tokens)
        for key in ("loss", "learning_rate", "grad_norm", "eval_loss", "mean_token_accuracy", "eval_mean_token_accuracy"):
            if key in logs:
                record[key] = logs[key]
        if "eval_loss" in logs and self._last is not None:
            # Validation time is not training time: restart the clock after it.
            self._last = (time.perf_counter(), self._last[1])
        if self.folder is not None and len(record) > 2:
            self.folder.log_metrics(record)

    def tokens_per_second(self) -> float:
        """Mean training throughput between logs (0.0 when fewer than two logs)."""
        return self._tokens / self._seconds if self._seconds else 0.0
