"""`therapist-app`: opens the window when a display is there, else runs the headless demo.

Each subcommand group lives in its own module with a `register(subparsers)` function
that adds its parser and sets `func(args) -> int`.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

# Modules that define subcommands, in the order `--help` lists them.
COMMAND_MODULES = (
    "therapist_app.cli.suggest",
    "therapist_app.cli.store",
    "therapist_app.cli.selftest",
    "therapist_app.cli.models",
)


class PrintVersions(argparse.Action):
    """`--version`: the native libraries are probed only when asked (it loads them)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest, nargs=0, default=default, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        from therapist_app.versions import version_text

        print(version_text())
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="therapist-app",
        description="Local, private reply suggestions for therapists. With no command, "
        "opens the app window (or runs the demo where no display is available).",
    )
    parser.add_argument(
        "--version",
        action=PrintVersions,
        help="show the version of the app, llama.cpp, SQLCipher and Qt, then exit",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log timings at INFO level")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def has_display() -> bool:
    if sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.command is None:
        if has_display():
            from therapist_app.ui.app import run_app

            return run_app()
        print("No display found: running the headless demo instead of the window.")
        args = parser.parse_args(["demo"])
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
