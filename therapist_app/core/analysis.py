"""One call for the app: crisis risk first, then the client's emotion.

Risk runs first and cannot be stopped by the emotion side: if the embedding model is
missing the detector runs on its patterns alone, and if the emotion classifier fails
the result carries no emotion but still carries the risk. Each text is embedded once
per call and shared by both channels (a one-sentence utterance is the common case).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import platformdirs

from therapist_app.core.dialogue_format import Turn
from therapist_app.core.embedder import EmbedderUnavailable, default_embedder, model_version
from therapist_app.core.emotion import EmotionClassifier, EmotionHead, EmotionHeadError, EmotionResult
from therapist_app.core.policy import APP_NAME
from therapist_app.core.risk import RiskAssessment, RiskDetector, cached_anchor_vectors

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AnalysisResult:
    risk: RiskAssessment
    emotion: EmotionResult | None  # None when no classifier could be loaded or it failed
    elapsed_ms: float


class _MemoEmbed:
    """Embeds each distinct text once within one `analyse` call."""

    def __init__(self, embed) -> None:
        self._embed = embed
        self._cache: dict[str, np.ndarray] = {}

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            for text, vector in zip(missing, self._embed(missing)):
                self._cache[text] = vector
        return np.stack([self._cache[t] for t in texts]) if texts else np.zeros((0, 384), np.float32)

    def clear(self) -> None:
        self._cache.clear()


class Analyzer:
    """`analyse(text, recent_turns)` -> risk and emotion for the client's latest words."""

    def __init__(self, detector: RiskDetector, classifier: EmotionClassifier | None,
                 memo: _MemoEmbed | None = None) -> None:
        self.detector = detector
        self.classifier = classifier
        self._memo = memo

    @classmethod
    def load(cls, cache_dir: Path | None = None) -> "Analyzer":
        """MiniLM, the risk anchors and the emotion head; degrades to patterns-only risk
        and no emotion when the model or head is missing."""
        cache_dir = cache_dir or platformdirs.user_cache_path(APP_NAME)
        try:
            memo = _MemoEmbed(default_embedder().embed)
        except EmbedderUnavailable as missing:
            log.warning("embedding model unavailable (%s): risk runs on patterns only, no emotion", missing)
            return cls(RiskDetector(), None)
        vectors = cached_anchor_vectors(memo, model_version(), cache_dir)
        detector = RiskDetector(memo, anchor_vectors=vectors)
        memo.clear()
        try:
            classifier = EmotionClassifier(memo, EmotionHead.load())
        except (EmotionHeadError, FileNotFoundError) as problem:
            log.warning("emotion head unavailable: %s", problem)
            classifier = None
        return cls(detector, classifier, memo)

    def analyse(self, text: str, recent: Sequence[Turn] = ()) -> AnalysisResult:
        started = time.perf_counter()
        if self._memo is not None:
            self._memo.clear()
        risk = self.detector.assess(text)
        emotion = None
        if self.classifier is not None:
            turns = [t for t in recent if t.speaker == "client"] + [Turn("client", text)]
            try:
                emotion = self.classifier.classify(turns)
            except ValueError:
                emotion = None  # nothing but whitespace to read
            except Exception as error:  # the risk result must reach the screen regardless
                log.warning("emotion reading failed: %s", type(error).__name__)
        elapsed = (time.perf_counter() - started) * 1000
        log.info("analysis took %.1f ms (%d chars, risk %s)", elapsed, len(text), risk.severity)
        return AnalysisResult(risk, emotion, elapsed)
