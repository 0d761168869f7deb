"""Models the rewards borrow from the app (emotion classifier, MiniLM, risk detector),
loaded lazily so a reward stays a small picklable object.

A reward built with the string "auto" loads the app's component on first use and
drops it when pickled (TRL and `accelerate` may copy reward functions to workers); a
callable passed in is used as given, which is how tests inject fakes.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

log = logging.getLogger(__name__)


class RewardUnavailable(RuntimeError):
    """A model a reward needs is not installed; the message says which and how to get it."""


class LazyReward:
    """Base for parametrised rewards: `__name__` for TRL's logs, lazy resources, picklable."""

    name = "reward"

    def __init__(self, **specs: Any) -> None:
        self._specs = specs
        self._loaded: dict[str, Any] = {}
        self.__name__ = self.name

    def _load(self, name: str, spec: Any) -> Any:
        return spec

    def resource(self, name: str) -> Any:
        if name not in self._loaded:
            self._loaded[name] = self._load(name, self._specs[name])
        return self._loaded[name]

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_loaded"] = {}
        return state

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.__name__})"


def load_embedder():
    """MiniLM sentence embeddings (NumPy, no torch): texts -> unit vectors."""
    from therapist_app.core.embedder import EmbedderUnavailable, default_embedder

    try:
        return default_embedder().embed
    except EmbedderUnavailable as missing:
        raise RewardUnavailable(f"the relevance reward needs MiniLM: {missing}") from None


def load_risk_detector():
    """The app's deterministic crisis-language detector (patterns; no model needed)."""
    from therapist_app.core.risk import RiskDetector

    return RiskDetector()


def load_emotion_classifier(optional: bool = False):
    """The app's emotion classifier as texts -> [{emotion id: probability}], or None when
    `optional` and it is not installed."""
    try:
        module = importlib.import_module("therapist_app.core.emotion")
        classifier = module.default_classifier()
    except (ImportError, AttributeError, RuntimeError, OSError) as missing:
        if optional:
            log.warning(
                "emotion classifier unavailable (%s); emotion rewards use the authored check only",
                type(missing).__name__,
            )
            return None
        raise RewardUnavailable(f"the emotion classifier is not available: {missing}") from None

    def probabilities(texts):
        return [dict(p) for p in classifier.probabilities(list(texts))]

    return probabilities
