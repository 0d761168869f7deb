"""Supervised fine-tuning with TRL's `SFTTrainer`, loss on the reply tokens only.

Examples become text only through `dialogue_format.training_example`; prompts that do
not fit `max_length` lose their oldest context turns (`dialogue_format.fit_context`)
instead of having the reply cut off. The data is tokenized here, prompt and reply
separately as inference sees them, so TRL trains on exactly those tokens with a
completion mask. The same code runs on one CPU, one GPU, or under `accelerate launch`
(DDP, FSDP, DeepSpeed) with no change.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

from therapist_app.core.assets import asset_path
from therapist_app.core.dialogue_format import Example, fit_context, training_example

from trainer.config import SFTSettings
from trainer.data.records import DataError, file_sha256, read_jsonl
from trainer.data.split import SplitFractions, split_examples
from trainer.models import ModelError, load_causal_lm, load_tokenizer
from trainer.run_folder import RunFolder

log = logging.getLogger(__name__)


class SFTError(RuntimeError):
    """A training run that cannot start or had to stop; the message says what to change."""


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


# ---- data -----------------------------------------------------------------------


def load_splits(settings: SFTSettings) -> tuple[list[Example], list[Example], list[Path]]:
    """Train and validation examples (reply-bearing only) and the files they came from."""
    source = Path(settings.data) if settings.data else asset_path("seed_corpus.jsonl")
    if source.is_dir():
        files = [source / "train.jsonl", source / "validation.jsonl"]
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise SFTError(f"{source} lacks {', '.join(missing)}: make them with `therapist-trainer split`")
        train, validation = (_read_split(f) for f in files)
    elif source.is_file():
        files = [source]
        fractions = SplitFractions(
            1 - settings.validation_fraction - settings.test_fraction,
            settings.validation_fraction,
            settings.test_fraction,
        )
        splits = split_examples(read_jsonl(source).examples, fractions, settings.seed)
        train, validation = splits["train"], splits["validation"]
    else:
        raise SFTError(f"no such data file or folder: {source}")
    train = [e for e in train if e.reply]
    validation = [e for e in validation if e.reply]
    for name, part in (("train", train), ("validation", validation)):
        if not part:
            raise SFTError(
                f"the {name} split is empty (no examples with a reply): add data, or for one file "
                "raise validation_fraction so at least one conversation lands in each split"
            )
    return train, validation, files


def _read_split(path: Path) -> list[Example]:
    try:
        return list(read_jsonl(path).examples)
    except DataError as problem:
        if problem.errors:
            raise
        raise SFTError(f"the {path.stem} split is empty: {path} has no examples") from None


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
        rows.append({
            "input_ids": ids,
            "completion_mask": [0] * len(prompt_ids) + [1] * len(completion_ids),
            "length": len(ids),
        })
    return rows, dropped


# ---- hardware ---------------------------------------------------------------------


def _local_world_size() -> int:
    return max(1, int(os.environ.get("LOCAL_WORLD_SIZE", os.environ.get("WORLD_SIZE", "1"))))


def set_threads(requested: int) -> int:
    """torch CPU threads: as asked, else the cores this process may use, shared among local ranks."""
    import torch

    if requested:
        threads = requested
    else:
        available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        threads = max(1, available // _local_world_size())
    torch.set_num_threads(threads)
    return threads


def trainer_arguments(settings, run_dir: Path, use_cpu: bool, bf16: bool, save_total_limit: int = 2) -> dict:
    """The TrainingArguments fields SFT, GRPO and DPO set alike from their settings
    (SFTSettings and RLSettings share these field names)."""
    return dict(
        output_dir=str(run_dir),
        gradient_accumulation_steps=settings.grad_accum,
        learning_rate=settings.learning_rate,
        num_train_epochs=settings.epochs,
        max_steps=settings.max_steps,
        seed=settings.seed,
        use_cpu=use_cpu,
        bf16=bf16,
        gradient_checkpointing=settings.gradient_checkpointing,
        logging_steps=settings.logging_steps,
        save_steps=settings.save_steps,
        save_total_limit=save_total_limit,
        report_to="none",
        dataloader_pin_memory=not use_cpu,
    )


def resolve_device(settings: SFTSettings) -> tuple[bool, bool, bool]:
    """(use_cpu, bf16, packing) for these settings on this machine."""
    import torch

    cuda = torch.cuda.is_available()
    if settings.device == "cuda" and not cuda:
        raise SFTError(
            f"CUDA was requested but is not available (torch {torch.__version__}, built for "
            f"CUDA {torch.version.cuda or 'none'}): install a CUDA build of torch (docs/training.md) "
            "or pass --device cpu"
        )
    use_cpu = settings.device == "cpu" or not cuda
    if settings.bf16 == "on":
        if not use_cpu and not torch.cuda.is_bf16_supported():
            raise SFTError("bf16 was requested but this GPU does not support it: pass --bf16 off")
        bf16 = True
    else:
        # On CPU, float32 is the default: bf16 autocast pays off only on CPUs with bf16
        # matrix units, so it is opt-in there (--bf16 on).
        bf16 = settings.bf16 == "auto" and not use_cpu and torch.cuda.is_bf16_supported()
    if settings.packing == "auto":
        from transformers.utils import is_flash_attn_2_available

        packing = not use_cpu and is_flash_attn_2_available()
    else:
        packing = settings.packing == "on"
    return use_cpu, bf16, packing


# ---- the run ----------------------------------------------------------------------


def _run_name(settings: SFTSettings) -> str:
    if settings.run_name:
        return settings.run_name
    name = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # Every rank must write to the same folder: rank 0's clock decides.
        from accelerate import PartialState
        from accelerate.utils import broadcast_object_list

        PartialState()
        name = broadcast_object_list([name])[0]
    return name


def _checkpoint_to_resume(settings: SFTSettings, run_dir: Path) -> str | None:
    if not settings.resume:
        return None
    if settings.resume in ("latest", "auto"):
        if not settings.run_name:
            raise SFTError(f"--resume {settings.resume} needs --run-name: the run whose folder holds the checkpoints")
        checkpoints = sorted(run_dir.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]))
        if not checkpoints:
            if settings.resume == "auto":
                return None
            raise SFTError(f"no checkpoint to resume in {run_dir}")
        return str(checkpoints[-1])
    if not Path(settings.resume, "trainer_state.json").is_file():
        raise SFTError(f"{settings.resume} is not a checkpoint folder (no trainer_state.json)")
    return settings.resume


def _oom_advice(settings: SFTSettings) -> str:
    advice = [
        f"--batch-size {max(1, settings.batch_size // 2)} --grad-accum {settings.grad_accum * 2}",
        f"--max-length {max(64, settings.max_length // 2)}",
    ]
    if not settings.gradient_checkpointing:
        advice.append("--gradient-checkpointing")
    if settings.finetune == "full":
        advice.append("--finetune lora")
    if settings.bf16 != "on":
        advice.append("--bf16 on (on a GPU that supports it)")
    return "out of memory: lower the memory use with " + ", ".join(advice)


def run_sft(settings: SFTSettings, callbacks: Sequence = ()) -> SFTResult:
    """Train as `settings` say; `callbacks` are extra transformers TrainerCallbacks."""
    import torch
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from trainer.sft_callbacks import MetricsCallback

    threads = set_threads(settings.num_threads)
    use_cpu, bf16, packing = resolve_device(settings)
    try:
        tokenizer = load_tokenizer(settings.model)
    except ModelError as problem:
        raise SFTError(str(problem)) from None
    try:
        train, validation, files = load_splits(settings)
    except DataError as problem:
        raise SFTError(str(problem)) from None

    def encode(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    train_rows, dropped_train = tokenize_examples(train, encode, settings.max_length)
    eval_rows, dropped_eval = tokenize_examples(validation, encode, settings.max_length)
    if not train_rows or not eval_rows:
        raise SFTError(
            f"after fitting examples to max_length {settings.max_length}, the "
            f"{'train' if not train_rows else 'validation'} split is empty: raise --max-length"
        )

    run_dir = Path(settings.output_dir) / _run_name(settings)
    resume_from = _checkpoint_to_resume(settings, run_dir)
    folder = RunFolder(run_dir)
    is_main = int(os.environ.get("RANK", "0")) == 0
    if is_main:
        folder.start(
            replace(settings, run_name=run_dir.name),
            file_sha256(*files),
            {
                "train_examples": len(train_rows),
                "validation_examples": len(eval_rows),
                "dropped_too_long": dropped_train + dropped_eval,
                "device": "cpu" if use_cpu else torch.cuda.get_device_name(),
                "world_size": int(os.environ.get("WORLD_SIZE", "1")),
                "torch_threads": threads,
                "bf16": bf16,
                "packing": packing,
                "resumed_from": resume_from,
            },
        )
    log.info(
        "sft: %d train / %d validation examples (%d too long), run folder %s",
        len(train_rows), len(eval_rows), dropped_train + dropped_eval, run_dir,
    )

    model_kwargs = {}
    if packing and not use_cpu:
        from transformers.utils import is_flash_attn_2_available

        if is_flash_attn_2_available():
            model_kwargs["attn_implementation"] = "flash_attention_2"
    try:
        model = load_causal_lm(settings.model, dtype=torch.float32, **model_kwargs)
    except ModelError as problem:
        raise SFTError(str(problem)) from None

    peft_config = None
    if settings.finetune == "lora":
        from peft import LoraConfig

        targets = settings.lora_target_modules
        layers = model.config.num_hidden_layers
        top = {}
        if settings.lora_top_layers:
            if settings.lora_top_layers > layers:
                raise SFTError(f"lora_top_layers is {settings.lora_top_layers}; the model has {layers} layers")
            top = {"layers_to_transform": list(range(layers - settings.lora_top_layers, layers)),
                   "layers_pattern": "layers"}
            if targets == "all-linear":  # peft needs the names to pick layers
                targets = ",".join(sorted({name.rsplit(".", 1)[-1] for name, module in model.named_modules()
                                           if isinstance(module, torch.nn.Linear) and ".layers." in name}))
        peft_config = LoraConfig(
            r=settings.lora_r,
            lora_alpha=settings.lora_alpha,
            lora_dropout=settings.lora_dropout,
            target_modules=targets if targets == "all-linear" else [t.strip() for t in targets.split(",")],
            task_type="CAUSAL_LM",
            **top,
        )

    args = SFTConfig(
        per_device_train_batch_size=settings.batch_size,
        per_device_eval_batch_size=settings.batch_size,
        lr_scheduler_type=settings.lr_scheduler,
        warmup_steps=settings.warmup_ratio,
        weight_decay=settings.weight_decay,
        data_seed=settings.seed,
        max_length=settings.max_length,
        packing=packing,
        completion_only_loss=True,
        train_sampling_strategy="group_by_length" if settings.group_by_length and not packing else "random",
        logging_first_step=True,
        eval_strategy="steps" if settings.eval_steps else "no",
        eval_steps=settings.eval_steps or None,
        eval_on_start=settings.eval_on_start,
        save_strategy="steps",
        # Every trainable weight takes part in each step; searching for unused ones
        # costs an extra graph traversal per step under DDP.
        ddp_find_unused_parameters=False,
        **trainer_arguments(settings, run_dir, use_cpu, bf16, settings.save_total_limit),
    )
    metrics = MetricsCallback(folder if is_main else None)
    try:
        trainer = SFTTrainer(
            model=model,
            args=args,
            train_dataset=Dataset.from_list(train_rows),
            eval_dataset=Dataset.from_list(eval_rows),
            processing_class=tokenizer,
            peft_config=peft_config,
            callbacks=[metrics, *callbacks],
        )
        trainer.train(resume_from_checkpoint=resume_from)
        step = trainer.state.global_step
        evaluated = [h["eval_loss"] for h in trainer.state.log_history if "eval_loss" in h and h.get("step") == step]
        final_eval_loss = evaluated[-1] if evaluated else trainer.evaluate()["eval_loss"]
    except torch.OutOfMemoryError:
        raise SFTError(_oom_advice(settings)) from None
    except RuntimeError as failure:
        if "out of memory" in str(failure).lower() or "can't allocate memory" in str(failure).lower():
            raise SFTError(_oom_advice(settings)) from None
        raise

    final_dir, merged_dir = run_dir / "final", None
    trainer.save_model(str(final_dir))
    if is_main:
        tokenizer.save_pretrained(final_dir)
        if peft_config is not None and settings.merge_lora:
            merged_dir = run_dir / "merged"
            merged = trainer.accelerator.unwrap_model(trainer.model).merge_and_unload()
            merged.save_pretrained(merged_dir, safe_serialization=True)
            tokenizer.save_pretrained(merged_dir)
    evals = [r["eval_loss"] for r in folder.metrics() if "eval_loss" in r] if is_main else []
    result = SFTResult(
        run_dir=run_dir,
        final_dir=final_dir,
        merged_dir=merged_dir,
        global_step=trainer.state.global_step,
        train_examples=len(train_rows),
        validation_examples=len(eval_rows),
        dropped_examples=dropped_train + dropped_eval,
        first_eval_loss=evals[0] if evals else None,
        final_eval_loss=final_eval_loss,
        tokens_per_second=metrics.tokens_per_second(),
    )
    if is_main:
        folder.plot_loss()
        folder.finish({
            "global_step": result.global_step,
            "final_eval_loss": result.final_eval_loss,
            "train_tokens_per_second": round(result.tokens_per_second, 1),
        })
    return result
