"""The doctests of the settings, reward, metric, preference, curriculum, GRPO and evaluation modules run with
the suite."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "trainer.rewards",
    "trainer.rewards.text",
    "trainer.rewards.lexical",
    "trainer.rewards.emotion",
    "trainer.rewards.strategy",
    "trainer.rewards.relevance",
    "trainer.rewards.safety",
    "trainer.rewards.length",
    "trainer.metrics",
    "trainer.behaviours",
    "trainer.curriculum",
    "trainer.preferences",
    "trainer.simulator",
    "trainer.judge",
    "trainer.analysis_eval",
    "trainer.risk_head",
    "trainer.blind_rating",
    "trainer.config",
    "trainer.grpo",
]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no doctests"
    assert result.failed == 0
