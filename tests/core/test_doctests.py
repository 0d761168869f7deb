"""The doctests of the core modules run with the suite: they are the specification of
the format, the scoring and the safety rules."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "therapist_app.core.dialogue_format",
    "therapist_app.core.taxonomy",
    "therapist_app.core.text_input",
    "therapist_app.core.engine",
    "therapist_app.core.emotion",
    "therapist_app.core.deidentify",
    "therapist_app.core.scoring.text",
    "therapist_app.core.scoring.quality",
    "therapist_app.core.scoring.safety",
    "therapist_app.core.best_of_n",
    "therapist_app.core.draft_round",
    "therapist_app.core.crisis_responses",
    "therapist_app.core.text_head",
    "therapist_app.core.embedder",
    "therapist_app.core.offload",
    "therapist_app.core.load_progress",
]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no doctests"
    assert result.failed == 0
