"""`therapist-trainer loop`: the therapist's decisions in the store to a registered, better model."""

from __future__ import annotations

import argparse
import sys

from trainer.config import add_settings_command, config_from_args
from trainer.rewards import RewardUnavailable
from trainer.run import command


def register(subparsers: argparse._SubParsersAction) -> None:
    from trainer.loop import LoopSettings

    add_settings_command(
        subparsers,
        "loop",
        LoopSettings,
        run_loop_command,
        help="export the store's decisions, pair them, train DPO (+NLL), export GGUF and register it",
        description="The closed loop in one command: the store's de-identified training export, preference pairs "
        "per suggestion round (used replies over turned-down drafts), DPO plus an NLL term from --model, a verified "
        "GGUF export, and `therapist-app models add` into the same store. Every stage's counts and files go to "
        "loop.json in the loop folder (output_dir/run_name); a failing stage is named and the exit code is non-zero.",
    )


@command(RewardUnavailable)
def run_loop_command(args: argparse.Namespace) -> int:
    from trainer.loop import LoopFailed, LoopSettings, run_loop

    try:
        result = run_loop(config_from_args(LoopSettings, args))
    except LoopFailed as failure:
        print(f"error: {failure}", file=sys.stderr)
        return failure.exit_code
    for line in describe(result.stages):
        print(line)
    print(f"loop folder {result.folder} (record: loop.json)")
    return 0


def describe(stages: dict) -> list[str]:
    """One line per stage: its counts and where its files went."""
    export, pairs, dpo, gguf, registered = (stages.get(s, {}) for s in ("export", "pairs", "dpo", "gguf", "register"))
    return [
        f"export: {export.get('skipped') or str(export.get('rows')) + ' de-identified rows'} -> {export.get('file')}",
        f"pairs: {pairs.get('pairs')} from {pairs.get('rounds')} rounds (decisions {pairs.get('decisions')}; "
        f"{pairs.get('rounds_without_kept')} rounds with nothing used, {pairs.get('rounds_without_turned_down')} "
        f"with nothing turned down) -> {pairs.get('file')}",
        f"dpo: {dpo.get('global_step')} steps on {dpo.get('app_pairs')} app and {dpo.get('simulated_pairs')} "
        f"simulated pairs; log-prob margin {dpo.get('logprob_margin_before')} -> {dpo.get('logprob_margin_after')} "
        f"-> {dpo.get('run_dir')}",
        f"gguf: top-1 agreement {gguf.get('top1_agreement')} over {gguf.get('positions_compared')} positions, "
        f"sha256 {str(gguf.get('sha256'))[:16]}... -> {gguf.get('file')}",
        "register: "
        + (registered.get("skipped") or f"model {registered.get('model_id')} in {registered.get('store')}"),
    ]
