"""Training throughput of `therapist-trainer sft` against plain TRL, in one process.

Both runs train the same model (default: the bundled SmolLM2, imported once into
.cache/) with the same LoRA adapters on the same seed-corpus examples for the same
number of optimiser steps. Plain TRL gets `SFTConfig`'s defaults (only output_dir,
max_steps, report_to, the batch size and, without CUDA, use_cpu are set) and the prompt/completion strings
from `dialogue_format.training_example`; ours runs through `trainer.sft.run_sft`.
Throughput is non-padding tokens per second of `train()` wall time, counted the same
way for both from the batches each trainer actually fed the model.

    python bench/train_sft.py [--model FOLDER] [--steps 8] [--repeats 1]

Prints one line per run and ends with `RESULT vs_trl=<ours / plain TRL>`.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from transformers import TrainerCallback  # noqa: E402

from therapist_app.core.dialogue_format import training_example  # noqa: E402
from trainer.data.records import read_jsonl  # noqa: E402
from trainer.data.split import SplitFractions, split_examples  # noqa: E402
from trainer.sft import SFTSettings  # noqa: E402

SEED = ROOT / "assets" / "seed_corpus.jsonl"


class Throughput(TrainerCallback):
    """Counts the non-padding tokens of every training batch and times `train()`."""

    def __init__(self) -> None:
        self.tokens = 0
        self.seconds = 0.0
        self._start = 0.0

    def on_train_begin(self, args, state, control, **kwargs):
        self._start = time.perf_counter()

    def on_train_end(self, args, state, control, **kwargs):
        self.seconds = time.perf_counter() - self._start

    def count(self, batch) -> None:
        mask = batch.get("attention_mask")
        self.tokens += int(mask.sum()) if mask is not None else int(batch["input_ids"].numel())

    @property
    def rate(self) -> float:
        return self.tokens / self.seconds


def counting(trainer_cls, meter: Throughput):
    """The trainer class with its training step counting tokens into `meter`."""

    class Counting(trainer_cls):
        def training_step(self, model, inputs, *args, **kwargs):
            meter.count(inputs)
            return super().training_step(model, inputs, *args, **kwargs)

    return Counting


def default_model() -> str:
    from trainer.models import bundled_gguf, import_gguf

    folder = ROOT / ".cache" / "bench" / "smollm2-135m"
    if not (folder / "model.safetensors").is_file():
        import_gguf(bundled_gguf(), folder)
    return str(folder)


def run_plain_trl(model_dir: str, steps: int, batch_size: int, out: Path) -> Throughput:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    train = split_examples(read_jsonl(SEED).examples, SplitFractions(), seed=0)["train"]
    rows = [training_example(e) for e in train]
    settings = SFTSettings()
    meter = Throughput()
    trainer = counting(SFTTrainer, meter)(
        model=model_dir,
        # use_cpu is the one extra setting plain TRL needs on a CPU-only machine: its
        # bf16 default otherwise refuses to start there.
        args=SFTConfig(
            output_dir=str(out),
            max_steps=steps,
            per_device_train_batch_size=batch_size,
            report_to="none",
            use_cpu=not torch.cuda.is_available(),
        ),
        train_dataset=Dataset.from_list(rows),
        processing_class=AutoTokenizer.from_pretrained(model_dir),
        peft_config=LoraConfig(
            r=settings.lora_r,
            lora_alpha=settings.lora_alpha,
            lora_dropout=settings.lora_dropout,
            target_modules="all-linear",
            task_type="CAUSAL_LM",
        ),
        callbacks=[meter],
    )
    trainer.train()
    return meter


def run_ours(model_dir: str, steps: int, batch_size: int, out: Path) -> Throughput:
    import trl

    from trainer import sft

    meter = Throughput()
    settings = SFTSettings(
        model=model_dir,
        output_dir=str(out),
        run_name="ours",
        max_steps=steps,
        batch_size=batch_size,
        eval_steps=0,
        save_steps=10_000,
        merge_lora=False,
        logging_steps=steps,
    )
    original = trl.SFTTrainer
    trl.SFTTrainer = counting(original, meter)
    try:
        sft.run_sft(settings, callbacks=[meter])
    finally:
        trl.SFTTrainer = original
    return meter


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a Hugging Face model folder (default: the bundled SmolLM2, imported)")
    parser.add_argument("--steps", type=int, default=8, help="optimiser steps per run")
    parser.add_argument("--batch-size", type=int, default=8, help="examples per step for both (TRL's default is 8)")
    parser.add_argument("--repeats", type=int, default=1, help="alternating pairs of runs; the best of each counts")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    model_dir = args.model or default_model()
    best = {"trl": 0.0, "ours": 0.0}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            for name, run in (("trl", run_plain_trl), ("ours", run_ours)):
                meter = run(model_dir, args.steps, args.batch_size, Path(tmp) / f"{name}-{repeat}")
                print(
                    f"{name:5s} run {repeat + 1}: {meter.tokens} tokens in {meter.seconds:.1f} s "
                    f"= {meter.rate:.1f} tokens/s",
                    flush=True,
                )
                best[name] = max(best[name], meter.rate)
    print(f"plain TRL {best['trl']:.1f} tokens/s, ours {best['ours']:.1f} tokens/s")
    print(f"RESULT vs_trl={best['ours'] / best['trl']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
