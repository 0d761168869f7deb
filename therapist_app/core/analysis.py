"""One call for the app: crisis risk first, then the client's emotion.

Risk runs first and cannot be stopped by the emotion side: if the embedding model or the
risk head is missing the detector runs on its patterns alone, and if the emotion reader
fails the result carries no emotion but still carries the risk. Every text is embedded
once (all MiniLM layers in one pass) and shared by both: a session's earlier turns are
remembered, so a new turn costs the embedding of its own words.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Sequence

from therapist_app.core.dialogue_format import Turn
from therapist_app.core.embedder import EmbedderUnavailable, LayerMemo, default_embedder
from therapist_app.core.emotion import EmotionClassifier, EmotionHeadError, EmotionResult
from therapist_app.core.risk import RiskAssessment, RiskDetector
from therapist_app.core.text_head import HeadError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AnalysisResult:
    risk: RiskAssessment
    emotion: EmotionResult | None  # None when no classifier could be loaded or it failed
    elapsed_ms: float


class Analyzer:
    """`analyse(text, recent_turns)` -> risk and emotion for the client's latest words."""

    def __init__(self, detector: RiskDetector, classifier: EmotionClassifier | None) -> None:
        self.detector = detector
        self.classifier = classifier

    @classmethod
    def load(cls) -> "Analyzer":
        """MiniLM, the risk head and the emotion head; degrades to patterns-only risk
        and no emotion when the model or a head is missing."""
        try:
            memo = LayerMemo.of(default_embedder())  # shared by both heads
        except EmbedderUnavailable as missing:
            log.warning("embedding model unavailable (%s): risk runs on patterns only, no emotion", missing)
            return cls(RiskDetector(), None)
        try:
            detector = RiskDetector.load(memo)
        except (HeadError, FileNotFoundError) as problem:
            log.warning("risk head unavailable (%s): risk runs on patterns only", problem)
            detector = RiskDetector()
        try:
            classifier = EmotionClassifier.load(memo)
        except (EmotionHeadError, FileNotFoundError) as problem:
            log.warning("emotion head unavailable: %s", problem)
            classifier = None
        return cls(detector, classifier)

    def analyse(self, text: str, recent: Sequence[Turn] = ()) -> AnalysisResult:
        started = time.perf_counter()
        earlier = [t.text for t in recent if t.speaker == "client"]
        risk = self.detector.assess(text, earlier)
        emotion = None
        if self.classifier is not None:
            try:
                emotion = self.classifier.classify(earlier + [text])
            except ValueError:
                emotion = None  # nothing but whitespace to read
            except Exception as error:  # the risk result must reach the screen regardless
                log.warning("emotion reading failed: %s", type(error).__name__)
        elapsed = (time.perf_counter() - started) * 1000
        log.info("analysis took %.1f ms (%d chars, risk %s)", elapsed, len(text), risk.severity)
        return AnalysisResult(risk, emotion, elapsed)
