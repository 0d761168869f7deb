"""`therapist-trainer grpo`, `dpo` and `self-train`: reinforcement and preference learning."""

from __future__ import annotations

import argparse
import json

from trainer.config import add_settings_command, config_from_args
from trainer.rewards import RewardUnavailable
from trainer.run import command


def register(subparsers: argparse._SubParsersAction) -> None:
    from trainer.dpo import DPOSettings
    from trainer.grpo import GRPOSettings
    from trainer.self_training import SelfTrainSettings

    add_settings_command(
        subparsers,
        "grpo",
        GRPOSettings,
        run_grpo_command,
        help="GRPO with the reward pack (optionally trajectory-cache advantages)",
        description="Sample groups of replies for the train split's prompts, score them with the weighted reward "
        "pack and update the policy with TRL's GRPO. Each reward component is logged to the run folder.",
    )
    add_settings_command(
        subparsers,
        "dpo",
        DPOSettings,
        run_dpo_command,
        help="DPO (plus an NLL term on the chosen reply) on app decisions and/or simulated sessions",
        description="Build preference pairs from a de-identified app export (kept over turned-down suggestions) "
        "and/or from simulated sessions with a client simulator (best vs worst trajectory, scenario groups "
        "picked by a UCB curriculum), then train with TRL's DPOTrainer.",
    )
    add_settings_command(
        subparsers,
        "self-train",
        SelfTrainSettings,
        run_self_train_command,
        help="keep the model's own valid, confidently rewarded replies as new SFT data (N rounds with --sft-steps)",
        description="Generate replies for the data's client turns, keep those that are valid and whose reward "
        "ensemble confidence reaches the threshold, and record every decision with its reason. With --sft-steps, "
        "fine-tune on what was kept and repeat for --rounds rounds, each generating with the model the round "
        "before trained; rounds.json records each round.",
    )


@command(RewardUnavailable)
def run_grpo_command(args: argparse.Namespace) -> int:
    from trainer.grpo import GRPOSettings, run_grpo

    result = run_grpo(config_from_args(GRPOSettings, args))
    moved = ", ".join(
        f"{k.removeprefix('rewards/').removesuffix('/mean')} {result.reward_first[k]:.3f} -> "
        f"{result.reward_last.get(k, float('nan')):.3f}"
        for k in result.reward_first
    )
    print(
        f"trained {result.global_step} steps on {result.prompts} prompts in {result.seconds:.0f}s "
        f"({result.tokens_per_second:.0f} tokens/s); {moved}; run folder {result.run_dir}"
    )
    return 0


@command(RewardUnavailable, ValueError)  # a malformed personas file
def run_dpo_command(args: argparse.Namespace) -> int:
    from trainer.dpo import DPOSettings, run_dpo

    result = run_dpo(config_from_args(DPOSettings, args))
    print(
        f"trained {result.global_step} steps on {result.app_pairs} app and {result.simulated_pairs} simulated "
        f"pairs; chosen-vs-rejected log-prob margin {result.margin_before:.3f} -> {result.margin_after:.3f}; "
        f"run folder {result.run_dir}"
    )
    return 0


@command(RewardUnavailable, ValueError)  # no model given
def run_self_train_command(args: argparse.Namespace) -> int:
    from trainer.self_training import SelfTrainSettings, run_self_training

    settings = config_from_args(SelfTrainSettings, args)
    output, record, decisions = run_self_training(settings)
    if settings.sft_steps:
        rounds = json.loads(output.with_name("rounds.json").read_text(encoding="utf-8"))["rounds"]
        for entry in rounds:
            trained = entry.get("sft") or {}
            print(
                f"round {entry['round']}: kept {entry['kept']} of {entry['prompts']} (mean confidence "
                f"{entry['mean_confidence']:.3f})"
                + (
                    f"; SFT {trained['global_step']} steps, validation loss {trained['validation_loss']:.4f}"
                    if trained
                    else ""
                )
            )
        print(f"record of every round: {output.with_name('rounds.json')}")
    kept = sum(d.kept for d in decisions)
    print(f"kept {kept} of {len(decisions)} replies in {output}; decisions in {record}")
    return 0
