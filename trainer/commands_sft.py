"""`therapist-trainer import-gguf` and `sft`: a trainable base model, then fine-tuning."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from trainer.config import ConfigError, SFTSettings, add_config_arguments, config_from_args


def register(subparsers: argparse._SubParsersAction) -> None:
    gguf = subparsers.add_parser(
        "import-gguf",
        help="turn a GGUF model (default: the bundled SmolLM2) into a trainable Hugging Face folder",
        description="Dequantise a GGUF into float32 safetensors with a ChatML chat template, offline.",
    )
    gguf.add_argument("gguf", nargs="?", type=Path, help="the GGUF file (default: the bundled SmolLM2-135M-Instruct)")
    gguf.add_argument("-o", "--output-dir", required=True, type=Path, help="folder to write the model into")
    gguf.set_defaults(func=run_import_gguf)

    sft = subparsers.add_parser(
        "sft",
        help="supervised fine-tuning (LoRA by default) on normalised JSONL data",
        description="Fine-tune a base model on reply tokens only. Settings come from defaults, "
        "then --config FILE, then flags. Runs unchanged under `accelerate launch`.",
    )
    add_config_arguments(sft, SFTSettings)
    sft.set_defaults(func=run_sft_command)


def run_import_gguf(args: argparse.Namespace) -> int:
    from trainer.models import ModelError, bundled_gguf, import_gguf

    try:
        out = import_gguf(args.gguf or bundled_gguf(), args.output_dir)
    except ModelError as problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    print(f"wrote a trainable model to {out}")
    return 0


def run_sft_command(args: argparse.Namespace) -> int:
    from trainer.sft import SFTError, run_sft

    try:
        settings = config_from_args(SFTSettings, args)
        result = run_sft(settings)
    except (ConfigError, SFTError) as problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
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
