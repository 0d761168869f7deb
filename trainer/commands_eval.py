"""`therapist-trainer eval`: metrics, reward components and a report for one model."""

from __future__ import annotations

import argparse
import sys

from trainer.config import ConfigError, add_config_arguments, config_from_args


def register(subparsers: argparse._SubParsersAction) -> None:
    from trainer.evaluate import EvalSettings

    parser = subparsers.add_parser(
        "eval",
        help="score a model's replies (BLEU, ROUGE, METEOR, distinct-n, emotion accuracy, rewards) and write a report",
        description="Generate replies for held-out examples with a Hugging Face folder or a GGUF, compare them "
        "with the reference replies, and write report.md (ending with a RESULT line), results.json and plots.",
    )
    add_config_arguments(parser, EvalSettings)
    parser.set_defaults(func=run_eval_command)


def run_eval_command(args: argparse.Namespace) -> int:
    from trainer.data.records import DataError
    from trainer.evaluate import EvalSettings, run_eval
    from trainer.models import ModelError
    from trainer.rewards import RewardUnavailable

    try:
        settings = config_from_args(EvalSettings, args)
        result, report = run_eval(settings)
    except (ConfigError, DataError, ModelError, RewardUnavailable, ValueError, FileNotFoundError) as problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    print(f"report: {report}")
    print(result.result_line())
    return 0
