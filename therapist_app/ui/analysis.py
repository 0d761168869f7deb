"""What the GUI needs from emotion and risk analysis, as one small interface.

`Analyzer(text, recent_turns) -> Analysis`. It runs on a thread of its own, before the
round's model call, so the crisis banner never waits for or depends on the model.
This module imports no Qt (the `selftest` command uses it headless).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from therapist_app.core.analysis import Analyzer as CoreAnalyzer
from therapist_app.core.dialogue_format import EmotionReading, Turn
from therapist_app.core.risk import RiskAssessment


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


def adapt(core: CoreAnalyzer) -> Analyzer:
    """The GUI's view of the core analyser: risk first and always (the core's rule),
    the emotion as a reading plus its runner-up when a classifier is loaded."""

    def analyze(text: str, recent: Sequence[Turn]) -> Analysis:
        result = core.analyse(text, recent)
        emotion = result.emotion
        if emotion is None:
            return Analysis(None, None, result.risk)
        return Analysis(emotion.reading(), emotion.runner_up_reading(), result.risk)

    return analyze


def default_analyzer() -> Analyzer:
    """MiniLM-based emotion and risk from the core; patterns-only risk and no emotion
    when the embedding model is missing (the core logs why)."""
    return adapt(CoreAnalyzer.load())
