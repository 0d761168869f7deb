"""`therapist-trainer`: every research command, one subcommand module each.

Each module in COMMAND_MODULES defines `register(subparsers)`, which adds its parser
and sets `func(args) -> int`. Heavy imports (torch, transformers) happen inside the
command functions so `--help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

COMMAND_MODULES: tuple[str, ...] = ("trainer.commands_data", "trainer.commands_sft", "trainer.commands_eval", "trainer.commands_export", "trainer.commands_rl", "trainer.emotion_head", "trainer.analysis_eval", "trainer.risk_head", "trainer.adapter_export", "trainer.crisis_eval", "trainer.blind_rating")


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


if __name__ == "__main__":
    sys.exit(main())
