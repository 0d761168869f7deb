"""What the GUI needs from emotion and risk analysis, as one small interface.

`Analyzer(text, recent_turns) -> Analysis`. It runs on the engine thread, before the
round's model call, so the crisis banner never waits for or depends on the model.
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


def default_analyzer() -> Analyzer:
    """The core's emotion classifier and risk detector when installed; else the
    deterministic risk detector alone (emotion left for the therapist to set)."""
    try:
        from therapist_app.core.analysis import Analyzer as CoreAnalyzer
    except ImportError:
        CoreAnalyzer = None
    if CoreAnalyzer is not None:
        core = CoreAnalyzer.load()

        def analyze(text: str, recent: Sequence[Turn]) -> Analysis:
            result = core.analyze(text, recent)
            return Analysis(result.emotion, result.runner_up, result.risk)

        return analyze
    log.warning("no emotion classifier installed: risk detection only")
    detector = RiskDetector()

    def risk_only(text: str, recent: Sequence[Turn]) -> Analysis:
        return Analysis(None, None, detector.assess(text))

    return risk_only
