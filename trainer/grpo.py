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
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from therapist_app.core.dialogue_format import Example, fit_context, render_prompt
from trainer.config import default_of, setting
from trainer.data.records import file_sha256
from trainer.models import load_causal_lm, load_tokenizer
from trainer.rewards.settings import RewardSettings, reward_pack
from trainer.run import DataSettings, RLSettings, TrainError, prepare_run, save_outputs, train

log = logging.getLogger(__name__)

_UNSCORED = "All reward functions returned None"


class _WithholdCompletionText(logging.Filter):
    """TRL's GRPO logs the prompt and completion of a row no reward could score. Those
    are client words and the model's reply to them, which never go into a log
    (SECURITY.md): the record keeps its fact and loses the text."""

    def filter(self, record: logging.LogRecord) -> bool:
        if str(record.msg).startswith(_UNSCORED):
            record.msg, record.args = f"{_UNSCORED} for one completion (its text is withheld from the log)", ()
        return True


logging.getLogger("trl.trainer.grpo_trainer").addFilter(_WithholdCompletionText())


@dataclass(frozen=True)
class GRPOSettings(RewardSettings, DataSettings, RLSettings):
    output_dir: str = default_of(RLSettings, "output_dir", "runs/grpo")
    learning_rate: float = default_of(RLSettings, "learning_rate", 1e-5)
    beta: float = setting(0.04, "KL penalty against the reference model (0 skips the reference model)", at_least=0)
    num_generations: int = setting(4, "completions sampled per prompt (the group)", at_least=2)
    max_completion_length: int = setting(64, "most tokens per completion", at_least=1)
    temperature: float = setting(1.0, "sampling temperature", above=0)
    min_p: float = setting(0.0, "min-p sampling threshold (0 turns it off)", at_least=0, below=1)
    scale_rewards: str = setting("group", "TRL's advantage scaling: group, batch or none", ("group", "batch", "none"))
    trajectory_cache: int = setting(
        0, "normalise advantages over the last C generation batches (0: TRL's group statistics)", at_least=0
    )


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
    tokens_per_second: float
    peak_memory_gb: float | None


def prompt_rows(examples: Sequence[Example], count_tokens, budget: int) -> list[dict]:
    """GRPO rows: the rendered prompt and the columns the rewards read."""
    rows = []
    for example in examples:
        try:
            request = fit_context(example.request(), count_tokens, budget)
        except ValueError:
            continue
        rows.append(
            {
                "prompt": render_prompt(request),
                "client_words": example.client_words,
                "reference": example.reply,
                "emotion": example.emotion,
                "strategy": example.strategy,
            }
        )
    return rows


def cached_advantages(rewards_per_func, weights, cache: deque):
    """Advantages of one generation batch normalised over a cache of recent batches.

    `rewards_per_func` is (completions, rewards) with NaN where a reward did not apply;
    each completion's reward is the weighted sum of the ones that did (NaN when none
    did). The batch joins `cache` (a deque whose maxlen is the number of batches kept),
    and each advantage is `(r - mean) / (std + 1e-4)` over every reward in the cache,
    population std, NaN rewards left out of both and given advantage 0. Returns the
    advantages, the mean and the std.

    >>> import torch
    >>> cache = deque(maxlen=2)
    >>> advantages, mean, std = cached_advantages(torch.tensor([[1.0], [3.0]]), torch.tensor([1.0]), cache)
    >>> [round(a, 4) for a in advantages.tolist()], mean.item(), std.item()
    ([-0.9999, 0.9999], 2.0, 1.0)
    """
    import torch

    rewards = (rewards_per_func * weights.to(rewards_per_func.device).unsqueeze(0)).nansum(dim=1)
    rewards[torch.isnan(rewards_per_func).all(dim=1)] = torch.nan
    cache.append(rewards.detach())
    history = torch.cat(list(cache))
    mean, std = torch.nanmean(history), history[~torch.isnan(history)].std(unbiased=False)
    return torch.nan_to_num((rewards - mean) / (std + 1e-4), nan=0.0), mean, std


def trainer_class(cache_batches: int):
    """TRL's GRPOTrainer, or a subclass that normalises advantages over a cache of batches."""
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
            advantages, mean, std = cached_advantages(
                self._last_rewards_per_func, self.reward_weights, self._reward_cache
            )
            local = len(output["advantages"])
            start = self.accelerator.process_index * local
            output["advantages"] = advantages[start : start + local].to(output["advantages"].device)
            self._metrics["train"]["trajectory_cache/mean"].append(mean.item())
            self._metrics["train"]["trajectory_cache/std"].append(std.item())
            return output

    return TrajectoryCacheGRPOTrainer


def load_prompts(settings: GRPOSettings, tokenizer) -> tuple[list[dict], list[Path]]:
    """The train split's prompts that fit beside a completion, and the data files."""
    splits, files = settings.read_splits(("train",), settings.seed)
    count = lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])  # noqa: E731
    rows = prompt_rows(splits["train"], count, settings.max_length - settings.max_completion_length)
    if not rows:
        raise TrainError("no prompt fits max_length - max_completion_length: raise --max-length")
    return rows, files


def run_grpo(settings: GRPOSettings, callbacks: Sequence = ()) -> GRPOResult:
    import torch
    from datasets import Dataset
    from trl import GRPOConfig

    run = prepare_run(settings)
    tokenizer = load_tokenizer(settings.model)
    rows, files = load_prompts(settings, tokenizer)
    pack = reward_pack(settings)
    model = load_causal_lm(settings.model, dtype=torch.float32)
    run.start(settings, file_sha256(*files), prompts=len(rows), rewards=list(pack.names))
    args = GRPOConfig(
        per_device_train_batch_size=settings.batch_size * settings.num_generations,
        num_generations=settings.num_generations,
        max_completion_length=settings.max_completion_length,
        temperature=settings.temperature,
        min_p=settings.min_p or None,
        beta=settings.beta,
        scale_rewards=settings.scale_rewards,
        reward_weights=list(pack.weights),
        **run.training_arguments(settings),
    )
    trainer = trainer_class(settings.trajectory_cache)(
        reward_funcs=list(pack.funcs),
        args=args,
        train_dataset=Dataset.from_list(rows),
        **run.trainer_inputs(settings, model, tokenizer, callbacks),
    )
    stats = train(trainer, settings, run)
    history = [h for h in trainer.state.log_history if "reward" in h]
    names = [f"rewards/{n}/mean" for n in pack.names] + ["reward"]
    first = {k: history[0][k] for k in names if history and k in history[0]}
    last = {k: history[-1][k] for k in names if history and k in history[-1]}
    final_dir, merged_dir = save_outputs(trainer, tokenizer, run, settings)
    run.finish(trainer, stats, reward_first=first, reward_last=last)
    return GRPOResult(
        run.dir,
        final_dir,
        merged_dir,
        trainer.state.global_step,
        len(rows),
        first,
        last,
        stats.seconds,
        stats.tokens_per_second,
        stats.peak_memory_gb,
    )
