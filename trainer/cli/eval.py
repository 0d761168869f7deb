"""`therapist-trainer eval`: metrics, reward components and a report for one model."""

from __future__ import annotations

import argparse

from trainer.config import add_settings_command, config_from_args
from trainer.rewards import RewardUnavailable
from trainer.run import command


def register(subparsers: argparse._SubParsersAction) -> None:
    from trainer.evaluate import EvalSettings

    add_settings_command(
        subparsers,
        "eval",
        EvalSettings,
        run_eval_command,
        help="score a model's replies (BLEU, ROUGE, METEOR, distinct-n, emotion accuracy, rewards) and write a report",
        description="Generate replies for held-out examples with a Hugging Face folder or a GGUF, compare them "
        "with the reference replies, and write report.md (ending with a RESULT line), results.json and plots.",
    )


@command(RewardUnavailable, ValueError, FileNotFoundError)
def run_eval_command(args: argparse.Namespace) -> int:
    from trainer.evaluate import EvalSettings, run_eval

    result, report = run_eval(config_from_args(EvalSettings, args))
    print(f"report: {report}")
    print(result.result_line())
    return 0
