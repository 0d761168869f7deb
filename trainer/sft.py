"""Supervised fine-tuning with TRL's `SFTTrainer`, loss on the reply tokens only.

Examples become text only through `dialogue_format.training_example`; prompts that do
not fit `max_length` lose their oldest context turns (`dialogue_format.fit_context`)
instead of having the reply cut off. The data is tokenized here, prompt and reply
separately as inference sees them, so TRL trains on exactly those tokens with a
completion mask. Everything else (run folder, device, LoRA, saving, records) is the run
layer's (`trainer.run`), so the same code runs on one CPU, one GPU, or under
`accelerate launch` (DDP, FSDP, DeepSpeed) with no change.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from therapist_app.core.dialogue_format import Example, fit_context, training_example
from trainer.config import default_of, setting
from trainer.data.records import file_sha256
from trainer.models import load_causal_lm, load_tokenizer
from trainer.run import DataSettings, Run, TrainError, TrainSettings, prepare_run, save_outputs, train

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SFTSettings(DataSettings, TrainSettings):
    output_dir: str = default_of(TrainSettings, "output_dir", "runs/sft")
    packing: str = setting(
        "auto",
        "pack several examples per row: auto (only where attention keeps packed examples "
        "apart, i.e. flash attention on CUDA), on or off",
        ("auto", "on", "off"),
    )
    group_by_length: bool = setting(True, "batch examples of similar length together to cut padding")
    eval_steps: int = setting(
        50, "validate every N updates (and always at the end); 0 means only at the end", at_least=0
    )
    eval_on_start: bool = setting(False, "also validate before the first update (a baseline for the loss curve)")


@dataclass(frozen=True)
class SFTResult:
    run_dir: Path
    final_dir: Path
    merged_dir: Path | None
    global_step: int
    train_examples: int
    validation_examples: int
    dropped_examples: int
    first_eval_loss: float | None
    final_eval_loss: float | None
    tokens_per_second: float


def tokenize_examples(
    examples: Sequence[Example], encode: Callable[[str], list[int]], max_length: int
) -> tuple[list[dict], int]:
    """Rows of `input_ids`, `completion_mask` and `length`; and how many examples did not fit.

    The prompt drops its oldest context turns until prompt and reply fit `max_length`;
    an example whose latest words and reply alone do not fit is dropped.
    """
    rows, dropped = [], 0
    for example in examples:
        completion_ids = encode(training_example(example)["completion"])
        budget = max_length - len(completion_ids)
        try:
            if budget < 1:
                raise ValueError("the reply alone exceeds max_length")
            request = fit_context(example.request(), lambda text: len(encode(text)), budget)
        except ValueError:
            dropped += 1
            continue
        pair = training_example(request, example.reply)
        prompt_ids = encode(pair["prompt"])
        ids = prompt_ids + completion_ids
        rows.append(
            {
                "input_ids": ids,
                "completion_mask": [0] * len(prompt_ids) + [1] * len(completion_ids),
                "length": len(ids),
            }
        )
    return rows, dropped


def _packing(settings: SFTSettings, run: Run) -> tuple[bool, dict]:
    """Whether to pack examples into full rows, and the model options that keep packed
    examples from attending to each other (flash attention 2, on CUDA, where installed)."""
    from transformers.utils import is_flash_attn_2_available

    flash = not run.use_cpu and is_flash_attn_2_available()
    packing = flash if settings.packing == "auto" else settings.packing == "on"
    return packing, ({"attn_implementation": "flash_attention_2"} if packing and flash else {})


def run_sft(settings: SFTSettings, callbacks: Sequence = ()) -> SFTResult:
    """Train as `settings` say; `callbacks` are extra transformers TrainerCallbacks."""
    import torch
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    run = prepare_run(settings)
    packing, attention = _packing(settings, run)
    tokenizer = load_tokenizer(settings.model)
    splits, files = settings.read_splits(("train", "validation"), settings.seed)

    def encode(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    train_rows, dropped_train = tokenize_examples(splits["train"], encode, settings.max_length)
    eval_rows, dropped_eval = tokenize_examples(splits["validation"], encode, settings.max_length)
    if not train_rows or not eval_rows:
        raise TrainError(
            f"after fitting examples to max_length {settings.max_length}, the "
            f"{'train' if not train_rows else 'validation'} split is empty: raise --max-length"
        )
    run.start(
        settings,
        file_sha256(*files),
        train_examples=len(train_rows),
        validation_examples=len(eval_rows),
        dropped_too_long=dropped_train + dropped_eval,
        packing=packing,
    )
    log.info(
        "sft: %d train / %d validation examples (%d too long), run folder %s",
        len(train_rows),
        len(eval_rows),
        dropped_train + dropped_eval,
        run.dir,
    )

    model = load_causal_lm(settings.model, dtype=torch.float32, **attention)
    args = SFTConfig(
        per_device_train_batch_size=settings.batch_size,
        per_device_eval_batch_size=settings.batch_size,
        max_length=settings.max_length,
        packing=packing,
        completion_only_loss=True,
        train_sampling_strategy="group_by_length" if settings.group_by_length and not packing else "random",
        eval_strategy="steps" if settings.eval_steps else "no",
        eval_steps=settings.eval_steps or None,
        eval_on_start=settings.eval_on_start,
        **run.training_arguments(settings),
    )
    trainer = SFTTrainer(
        args=args,
        train_dataset=Dataset.from_list(train_rows),
        eval_dataset=Dataset.from_list(eval_rows),
        **run.trainer_inputs(settings, model, tokenizer, callbacks),
    )
    stats = train(trainer, settings, run)
    step = trainer.state.global_step
    evaluated = [h["eval_loss"] for h in trainer.state.log_history if "eval_loss" in h and h.get("step") == step]
    final_eval_loss = evaluated[-1] if evaluated else trainer.evaluate()["eval_loss"]
    final_dir, merged_dir = save_outputs(trainer, tokenizer, run, settings)
    evals = [r["eval_loss"] for r in run.folder.metrics() if "eval_loss" in r] if run.is_main else []
    run.finish(trainer, stats, final_eval_loss=final_eval_loss)
    return SFTResult(
        run_dir=run.dir,
        final_dir=final_dir,
        merged_dir=merged_dir,
        global_step=step,
        train_examples=len(train_rows),
        validation_examples=len(eval_rows),
        dropped_examples=dropped_train + dropped_eval,
        first_eval_loss=evals[0] if evals else None,
        final_eval_loss=final_eval_loss,
        tokens_per_second=stats.tokens_per_second,
    )
