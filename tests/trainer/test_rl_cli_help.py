"""`eval`, `grpo`, `dpo`, `self-train` and `loop` have help text for the command and every option."""

from __future__ import annotations

import argparse

import pytest

from trainer.cli import build_parser


@pytest.mark.parametrize("command", ["eval", "grpo", "dpo", "self-train", "loop"])
def test_every_option_has_help(command):
    subparsers = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert subparsers._choices_actions and any(c.dest == command and c.help for c in subparsers._choices_actions)
    parser = subparsers.choices[command]
    assert parser.description
    missing = [a.dest for a in parser._actions if not a.help]
    assert missing == []
