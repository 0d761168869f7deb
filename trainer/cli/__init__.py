"""`therapist-trainer`: every research command, one subcommand module each.

Each module in COMMAND_MODULES defines `register(subparsers)`, which adds its parser
and sets `func(args) -> int` (wrapped by `trainer.run.command`, which turns expected
failures into `error: ...` and an exit code). Heavy imports (torch, transformers)
happen inside the command functions so `--help` stays fast. `python -m trainer.cli`
runs it too (what `accelerate launch -m trainer.cli` needs).
"""

from __future__ import annotations

import argparse
import importlib
import logging

COMMAND_MODULES: tuple[str, ...] = (
    "trainer.cli.data",
    "trainer.cli.sft",
    "trainer.cli.eval",
    "trainer.cli.export",
    "trainer.cli.rl",
    "trainer.cli.loop",
    "trainer.emotion_head",
    "trainer.analysis_eval",
    "trainer.risk_head",
    "trainer.export.adapter",
    "trainer.crisis_eval",
    "trainer.blind_rating",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="therapist-trainer",
        description="Train, evaluate and export the therapist assistant's models.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return args.func(args)
