"""`therapist-trainer import-gguf` and `sft`: a trainable base model, then fine-tuning."""

from __future__ import annotations

import argparse
from pathlib import Path

from trainer.config import add_settings_command, config_from_args
from trainer.run import command
from trainer.sft import SFTSettings


def register(subparsers: argparse._SubParsersAction) -> None:
    gguf = subparsers.add_parser(
        "import-gguf",
        help="turn a GGUF model (default: the bundled SmolLM2) into a trainable Hugging Face folder",
        description="Dequantise a GGUF into float32 safetensors with a ChatML chat template, offline.",
    )
    gguf.add_argument("gguf", nargs="?", type=Path, help="the GGUF file (default: the bundled SmolLM2-135M-Instruct)")
    gguf.add_argument("-o", "--output-dir", required=True, type=Path, help="folder to write the model into")
    gguf.set_defaults(func=run_import_gguf)

    add_settings_command(
        subparsers,
        "sft",
        SFTSettings,
        run_sft_command,
        help="supervised fine-tuning (LoRA by default) on normalised JSONL data",
        description="Fine-tune a base model on reply tokens only. Settings come from defaults, "
        "then --config FILE, then flags. Runs unchanged under `accelerate launch`.",
    )


@command()
def run_import_gguf(args: argparse.Namespace) -> int:
    from trainer.models import bundled_gguf, import_gguf

    out = import_gguf(args.gguf or bundled_gguf(), args.output_dir)
    print(f"wrote a trainable model to {out}")
    return 0


@command()
def run_sft_command(args: argparse.Namespace) -> int:
    from trainer.sft import run_sft

    result = run_sft(config_from_args(SFTSettings, args))
    loss = (
        f"validation loss {result.first_eval_loss:.4f} -> {result.final_eval_loss:.4f}"
        if result.first_eval_loss is not None and result.final_eval_loss is not None
        else f"validation loss {result.final_eval_loss}"
    )
    print(
        f"trained {result.global_step} steps on {result.train_examples} examples "
        f"({result.tokens_per_second:.0f} tokens/s); {loss}; run folder {result.run_dir}"
    )
    return 0
