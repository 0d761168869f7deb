"""What the GUI needs from emotion and risk analysis, as one small interface.

`Analyzer(text, recent_turns) -> Analysis`. It runs on a thread of its own, before the
round's model call, so the crisis banner never waits for or depends on the model.
This module imports no Qt (the `selftest` command uses it headless).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Sequence

from therapist_app.core.dialogue_format import EmotionReading, Turn
from therapist_app.core.risk import RiskAssessment, RiskDetector

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Analysis:
    emotion: EmotionReading | None
    """The classifier's reading, or None when no classifier is available."""
    runner_up: EmotionReading | None
    risk: RiskAssessment


Analyzer = Callable[[str, Sequence[Turn]], Analysis]
AnalyzerFactory = Callable[[], Analyzer]


def risk_phrases(risk: RiskAssessment) -> list[str]:
    """The distinct phrases that raised the risk, in order of appearance."""
    seen: list[str] = []
    for trigger in sorted(risk.triggers, key=lambda t: t.start):
        if trigger.phrase not in seen:
            seen.append(trigger.phrase)
    return seen


EmotionReader = Callable[[str, Sequence[Turn]], tuple[EmotionReading | None, EmotionReading | None]]
"""(text, recent turns) -> (reading, runner-up): the slot for an emotion classifier."""


def make_analyzer(detector: RiskDetector, read_emotion: EmotionReader | None = None) -> Analyzer:
    """Risk first and always; the emotion reading is optional and its failure is
    logged, never allowed to stop the risk assessment from reaching the screen."""

    def analyze(text: str, recent: Sequence[Turn]) -> Analysis:
        risk = detector.assess(text)
        emotion = runner_up = None
        if read_emotion is not None:
            try:
                emotion, runner_up = read_emotion(text, recent)
            except Exception as error:  # a classifier fault leaves the chip for the therapist
                log.warning("emotion reading failed: %s", type(error).__name__)
        return Analysis(emotion, runner_up, risk)

    return analyze


def default_analyzer() -> Analyzer:
    """The deterministic risk detector on its patterns. The core has no emotion
    classifier yet: the chip starts empty and the therapist sets the emotion; the
    classifier plugs in here as `read_emotion` when the core ships one. The detector's
    optional embedding channel is not enabled: loading MiniLM took minutes on the
    project's busy 2-core machine, and the patterns are what the tests pin down."""
    log.info("emotion classifier not available: the therapist sets the emotion")
    return make_analyzer(RiskDetector())
