"""`therapist-trainer grpo`: TRL's GRPO with the reward pack.

Prompts are the train split's client turns, rendered by `dialogue_format`; the
dataset's other columns (client words, reference reply, emotion, strategy) reach every
reward as keyword arguments. TRL logs each reward component (`rewards/<name>/mean`);
the run folder keeps them in metrics.jsonl and plots them in reward_curves.png.

The trajectory-cache variant (after Psy-Interpreter) replaces the group-relative
advantage by one normalised with the mean and standard deviation of the weighted
rewards of the last C generation batches (the current one included), so a group whose
completions all score alike still learns whether it is better or worse than recent
batches, and one noisy group cannot blow up its advantages.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

from therapist_app.core.dialogue_format import Example, fit_context, render_prompt

from trainer.config import ConfigError, _f
from trainer.data.records import DataError, file_sha256
from trainer.rl_common import (
    RLSettings, hardware, is_main_process, lora_config, make_metrics_callback, plot_curves, reward_curves, run_directory,
)
from trainer.run_folder import RunFolder
from trainer.sft import trainer_arguments

log = logging.getLogger(__name__)


class GRPOError(RuntimeError):
    """A GRPO run that cannot start; the message says what to change."""


@dataclass(frozen=True)
class GRPOSettings(RLSettings):
    output_dir: str = _f("runs/grpo", "folder that holds one sub-folder per run")
    learning_rate: float = _f(1e-5, "peak learning rate")
    beta: float = _f(0.04, "KL penalty against the reference model (0 skips the reference model)")
    num_generations: int = _f(4, "completions sampled per prompt (the group)")
    max_completion_length: int = _f(64, "most tokens per completion")
    temperature: float = _f(1.0, "sampling temperature")
    min_p: float = _f(0.0, "min-p sampling threshold (0 turns it off)")
    scale_rewards: str = _f("group", "TRL's advantage scaling: group, batch or none", ("group", "batch", "none"))
    trajectory_cache: int = _f(0, "normalise advantages over the last C generation batches (0: TRL's group statistics)")
    validation_fraction: float = _f(0.1, "validation share of the split (prompts come from train)")
    test_fraction: float = _f(0.1, "test share of the split")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_generations < 2 or self.max_completion_length < 1 or self.trajectory_cache < 0:
            raise ConfigError("need num_generations >= 2, max_completion_length >= 1 and trajectory_cache >= 0")
        if self.temperature <= 0 or not 0 <= self.min_p < 1:
            raise ConfigError("need temperature > 0 and 0 <= min_p < 1")


@dataclass(frozen=True)
class GRPOResult:
    run_dir: Path
    final_dir: Path
    merged_dir: Path | None
    global_step: int
    prompts: int
    reward_first: dict[str, float]
    reward_last: dict[str, float]
    seconds: float
    completion_tokens_per_second: float | None
    peak_memory_gb: float | None


def prompt_rows(examples: Sequence[Example], count_tokens, budget: int) -> list[dict]:
    """GRPO rows: the rendered prompt and the columns the rewards read."""
    rows = []
    for example in examples:
        try:
            request = fit_context(example.request(), count_tokens, budget)
        except ValueError:
            continue
        rows.append({
            "prompt": render_prompt(request),
            "client_words": example.client_words,
            "reference": example.reply,
            "emotion": example.emotion,
            "strategy": example.strategy,
        })
    return rows


def _trainer_class(cache_batches: int):
    """TRL's GRPOTrainer, or a subclass that normalises advantages over a cache of batches."""
    import torch
    from trl import GRPOTrainer

    if not cache_batches:
        return GRPOTrainer

    class TrajectoryCacheGRPOTrainer(GRPOTrainer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._reward_cache: deque = deque(maxlen=cache_batches)
            self._last_rewards_per_func = None

        def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
            rewards = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
            self._last_rewards_per_func = rewards  # gathered over processes, as TRL normalises
            return rewards

        def _generate_and_score_completions(self, inputs):
            output = super()._generate_and_score_completions(inputs)
            if not self.model.training:
                return output
            per_func = self._last_rewards_per_func
            weights = self.reward_weights.to(per_func.device).unsqueeze(0)
            rewards = (per_func * weights).nansum(dim=1)
            rewards[torch.isnan(per_func).all(dim=1)] = torch.nan
            self._reward_cache.append(rewards.detach())
            history = torch.cat(list(self._reward_cache))
            mean, std = torch.nanmean(history), history[~torch.isnan(history)].std(unbiased=False)
            advantages = torch.nan_to_num((rewards - mean) / (std + 1e-4), nan=0.0)
            local = len(output["advantages"])
            start = self.accelerator.process_index * local
            output["advantages"] = advantages[start : start + local].to(output["advantages"].device)
            self._metrics["train"]["trajectory_cache/mean"].append(mean.item())
            self._metrics["train"]["trajectory_cache/std"].append(std.item())
            return output

    return TrajectoryCacheGRPOTrainer


def load_prompts(settings: GRPOSettings, tokenizer) -> tuple[list[dict], list[Path]]:
    from trainer.sft import load_splits

    train, _, files = load_splits(_split_settings(settings))
    count = lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])  # noqa: E731
    rows = prompt_rows(train, count, settings.max_length - settings.max_completion_length)
    if not rows:
        raise GRPOError("no prompt fits max_length - max_completion_length: raise --max-length")
    return rows, files


def _split_settings(settings: GRPOSettings):
    """The SFT settings whose split this run's prompts come from (same data, seed and fractions)."""
    from trainer.config import SFTSettings

    return SFTSettings(model=settings.model, data=settings.data, seed=settings.seed,
                       validation_fraction=settings.validation_fraction, test_fraction=settings.test_fraction)


def run_grpo(settings: GRPOSettings, callbacks: Sequence = ()) -> GRPOResult:
    import time

    import torch
    from datasets import Dataset
    from trl import GRPOConfig

    from trainer.models import ModelError, load_causal_lm, load_tokenizer
    from trainer.rewards.settings import reward_pack
    from trainer.sft import SFTError

    use_cpu, bf16, threads = hardware(settings)
    try:
        tokenizer = load_tokenizer(settings.model)
        rows, files = load_prompts(settings, tokenizer)
        model = load_causal_lm(settings.model, dtype=torch.float32)
        pack = reward_pack(settings)
    except (ModelError, DataError, SFTError, ValueError) as problem:
        raise GRPOError(str(problem)) from None
    run_dir = run_directory(settings)
    folder = RunFolder(run_dir)
    if is_main_process():
        folder.start(replace(settings, run_name=run_dir.name), file_sha256(*files),
                     {"prompts": len(rows), "rewards": list(pack.names),
                      "device": "cpu" if use_cpu else torch.cuda.get_device_name(), "torch_threads": threads,
                      "bf16": bf16})
    args = GRPOConfig(
        per_device_train_batch_size=settings.batch_size * settings.num_generations,
        num_generations=settings.num_generations,
        max_completion_length=settings.max_completion_length,
        temperature=settings.temperature,
        min_p=settings.min_p or None,
        beta=settings.beta,
        scale_rewards=settings.scale_rewards,
        reward_weights=list(pack.weights),
        **trainer_arguments(settings, run_dir, use_cpu, bf16),
    )
    trainer_class = _trainer_class(settings.trajectory_cache)
    trainer = trainer_class(
        model=model,
        reward_funcs=list(pack.funcs),
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=lora_config(settings),
        callbacks=[make_metrics_callback(folder if is_main_process() else None), *callbacks],
    )
    if not use_cpu:
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    peak = None if use_cpu else torch.cuda.max_memory_allocated() / 2**30
    history = [h for h in trainer.state.log_history if "reward" in h]
    names = [f"rewards/{n}/mean" for n in pack.names] + ["reward"]
    first = {k: history[0][k] for k in names if history and k in history[0]}
    last = {k: history[-1][k] for k in names if history and k in history[-1]}
    tokens = sum(h.get("completions/mean_length", 0) * settings.batch_size * settings.num_generations
                 * settings.grad_accum * settings.logging_steps for h in history)
    final_dir, merged_dir = run_dir / "final", None
    trainer.save_model(str(final_dir))
    if is_main_process():
        tokenizer.save_pretrained(final_dir)
        if settings.finetune == "lora" and settings.merge_lora:
            merged_dir = run_dir / "merged"
            trainer.accelerator.unwrap_model(trainer.model).merge_and_unload().save_pretrained(merged_dir, safe_serialization=True)
            tokenizer.save_pretrained(merged_dir)
        plot_curves(reward_curves([run_dir]), run_dir / "reward_curves.png")
        folder.finish({"global_step": trainer.state.global_step, "reward_first": first, "reward_last": last,
                       "train_seconds": round(seconds, 2),
                       "completion_tokens_per_second": round(tokens / seconds, 1) if seconds else None,
                       "peak_gpu_memory_gb": round(peak, 2) if peak else None})
    return GRPOResult(run_dir, final_dir, merged_dir, trainer.state.global_step, len(rows), first, last, seconds,
                      tokens / seconds if seconds else None, peak)
