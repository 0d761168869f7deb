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
from collections import OrderedDict
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from therapist_app.core.dialogue_format import Turn
from therapist_app.core.embedder import DIMENSION, EmbedderUnavailable, default_embedder
from therapist_app.core.emotion import EmotionClassifier, EmotionHeadError, EmotionResult
from therapist_app.core.risk import RiskAssessment, RiskDetector
from therapist_app.core.text_head import HeadError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AnalysisResult:
    risk: RiskAssessment
    emotion: EmotionResult | None  # None when no classifier could be loaded or it failed
    elapsed_ms: float


class LayerMemo:
    """`embed_layers` that remembers the last `size` distinct texts."""

    def __init__(self, embed_layers, size: int = 512) -> None:
        self._embed = embed_layers
        self._known: OrderedDict[str, np.ndarray] = OrderedDict()
        self._size = size

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self._known))
        if missing:
            for text, vector in zip(missing, self._embed(missing)):
                self._known[text] = vector
        for text in texts:
            self._known.move_to_end(text)
        while len(self._known) > self._size:
            self._known.popitem(last=False)
        if not texts:
            return np.zeros((0, 6, DIMENSION), np.float32)
        return np.stack([self._known[t] for t in texts])


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
            memo = LayerMemo(default_embedder().embed_layers)
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
