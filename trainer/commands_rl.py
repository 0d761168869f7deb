"""`therapist-trainer grpo`, `dpo` and `self-train`: reinforcement and preference learning."""

from __future__ import annotations

import argparse
import sys

from trainer.config import ConfigError, add_config_arguments, config_from_args


def register(subparsers: argparse._SubParsersAction) -> None:
    from trainer.dpo import DPOSettings
    from trainer.grpo import GRPOSettings
    from trainer.self_training import SelfTrainSettings

    grpo = subparsers.add_parser(
        "grpo",
        help="GRPO with the reward pack (optionally trajectory-cache advantages)",
        description="Sample groups of replies for the train split's prompts, score them with the weighted reward "
        "pack and update the policy with TRL's GRPO. Each reward component is logged to the run folder.",
    )
    add_config_arguments(grpo, GRPOSettings)
    grpo.set_defaults(func=run_grpo_command)

    dpo = subparsers.add_parser(
        "dpo",
        help="DPO (plus an NLL term on the chosen reply) on app decisions and/or simulated sessions",
        description="Build preference pairs from a de-identified app export (kept over turned-down suggestions) "
        "and/or from simulated sessions with a client simulator (best vs worst trajectory, scenario groups "
        "picked by a UCB curriculum), then train with TRL's DPOTrainer.",
    )
    add_config_arguments(dpo, DPOSettings)
    dpo.set_defaults(func=run_dpo_command)

    self_train = subparsers.add_parser(
        "self-train",
        help="keep the model's own valid, confidently rewarded replies as new SFT data",
        description="Generate replies for the data's client turns, keep those that are valid and whose reward "
        "ensemble confidence reaches the threshold, and record every decision with its reason.",
    )
    add_config_arguments(self_train, SelfTrainSettings)
    self_train.set_defaults(func=run_self_train_command)


def _fail(problem: Exception) -> int:
    print(f"error: {problem}", file=sys.stderr)
    return 2


def run_grpo_command(args: argparse.Namespace) -> int:
    from trainer.grpo import GRPOError, GRPOSettings, run_grpo

    try:
        result = run_grpo(config_from_args(GRPOSettings, args))
    except (ConfigError, GRPOError) as problem:
        return _fail(problem)
    moved = ", ".join(f"{k.removeprefix('rewards/').removesuffix('/mean')} {result.reward_first[k]:.3f} -> "
                      f"{result.reward_last.get(k, float('nan')):.3f}" for k in result.reward_first)
    print(f"trained {result.global_step} steps on {result.prompts} prompts in {result.seconds:.0f}s; {moved}; "
          f"run folder {result.run_dir}")
    return 0


def run_dpo_command(args: argparse.Namespace) -> int:
    from trainer.dpo import DPOError, DPOSettings, run_dpo

    try:
        result = run_dpo(config_from_args(DPOSettings, args))
    except (ConfigError, DPOError) as problem:
        return _fail(problem)
    print(f"trained {result.global_step} steps on {result.app_pairs} app and {result.simulated_pairs} simulated "
          f"pairs; chosen-vs-rejected log-prob margin {result.margin_before:.3f} -> {result.margin_after:.3f}; "
          f"run folder {result.run_dir}")
    return 0


def run_self_train_command(args: argparse.Namespace) -> int:
    from trainer.data.records import DataError
    from trainer.models import ModelError
    from trainer.self_training import SelfTrainSettings, run_self_training

    try:
        output, record, decisions = run_self_training(config_from_args(SelfTrainSettings, args))
    except (ConfigError, DataError, ModelError, ValueError) as problem:
        return _fail(problem)
    kept = sum(d.kept for d in decisions)
    print(f"kept {kept} of {len(decisions)} replies in {output}; decisions in {record}")
    return 0
