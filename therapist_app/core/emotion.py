"""The client's emotion: MiniLM sentence embeddings and a small trained softmax head.

The head (assets/emotion_head.json) is a multinomial logistic regression over the 13
taxonomy ids, trained by `therapist-trainer train-emotion-head` on the authored set
assets/emotion_utterances.jsonl. The classifier reads the client's most recent turns,
the latest weighing most, and returns a label, its confidence and the runner-up. A
therapist's correction always wins over the classifier (`effective_emotion`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from therapist_app.core.assets import asset_path
from therapist_app.core.dialogue_format import EmotionReading, Turn, clean_text
from therapist_app.core.embedder import MODEL_ID, default_embedder
from therapist_app.core.taxonomy import check_emotion, emotions

log = logging.getLogger(__name__)

HEAD_ASSET = "emotion_head.json"
# Weights of the client's turns, latest first: the latest words matter most, earlier
# ones steady the reading when the latest turn is short ("yeah", "I suppose").
RECENCY_WEIGHTS = (1.0, 0.5, 0.25)

EmbedFn = Callable[[Sequence[str]], np.ndarray]


class EmotionHeadError(ValueError):
    """The head file is missing fields, mismatches the taxonomy or the embedding model."""


@dataclass(frozen=True)
class EmotionResult:
    label: str
    confidence: float
    runner_up: str
    runner_up_confidence: float

    def reading(self) -> EmotionReading:
        return EmotionReading(self.label, round(self.confidence, 4))

    def runner_up_reading(self) -> EmotionReading:
        return EmotionReading(self.runner_up, round(self.runner_up_confidence, 4))


@dataclass(frozen=True)
class EmotionHead:
    labels: tuple[str, ...]
    weights: np.ndarray  # [labels, dimension]
    bias: np.ndarray  # [labels]
    embedding_model: str
    metadata: dict

    @classmethod
    def from_dict(cls, record: dict) -> "EmotionHead":
        try:
            labels = tuple(record["labels"])
            weights = np.asarray(record["weights"], dtype=np.float32)
            bias = np.asarray(record["bias"], dtype=np.float32)
            model = record["embedding_model"]
        except KeyError as missing:
            raise EmotionHeadError(f"emotion head lacks field {missing}") from None
        if set(labels) != set(emotions()):
            raise EmotionHeadError(
                f"emotion head labels {sorted(labels)} differ from the taxonomy {sorted(emotions())}"
            )
        if weights.shape != (len(labels), weights.shape[-1]) or bias.shape != (len(labels),):
            raise EmotionHeadError(f"emotion head weights have shape {weights.shape}, bias {bias.shape}")
        if not model.startswith(MODEL_ID):
            raise EmotionHeadError(f"emotion head was trained on {model!r}, not {MODEL_ID}")
        metadata = {k: v for k, v in record.items() if k not in ("weights", "bias")}
        return cls(labels, weights, bias, model, metadata)

    @classmethod
    def load(cls, path: Path | None = None) -> "EmotionHead":
        path = path or asset_path(HEAD_ASSET)
        try:
            record = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise EmotionHeadError(f"cannot read the emotion head {path}: {error}") from None
        return cls.from_dict(record)

    def probabilities(self, vectors: np.ndarray) -> np.ndarray:
        logits = vectors @ self.weights.T + self.bias
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)


def _client_texts(turns: str | Sequence[Turn] | Sequence[str]) -> list[str]:
    """The client's words, oldest first, from text, plain strings or dialogue turns."""
    if isinstance(turns, str):
        items = [turns]
    else:
        items = [t if isinstance(t, str) else t.text
                 for t in turns if isinstance(t, str) or t.speaker == "client"]
    return [text for text in (clean_text(t) for t in items) if text]


class EmotionClassifier:
    """`classify(turns or text) -> EmotionResult` over the client's recent turns."""

    def __init__(self, embed: EmbedFn, head: EmotionHead) -> None:
        self.embed = embed
        self.head = head

    def probabilities(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """Per text, every label's probability (for rewards and evaluation)."""
        cleaned = [clean_text(t) for t in texts]
        probs = self.head.probabilities(np.asarray(self.embed(cleaned), dtype=np.float32))
        return [dict(zip(self.head.labels, map(float, row))) for row in probs]

    def classify(self, turns: str | Sequence[Turn] | Sequence[str],
                 weights: Sequence[float] = RECENCY_WEIGHTS) -> EmotionResult:
        texts = _client_texts(turns)
        if not texts:
            raise ValueError("there are no client words to read an emotion from")
        recent = texts[::-1][: len(weights)]  # latest first
        probs = self.head.probabilities(np.asarray(self.embed(recent), dtype=np.float32))
        w = np.asarray(weights[: len(recent)], dtype=np.float32)
        mixed = (probs * w[:, None]).sum(axis=0) / w.sum()
        first, second = np.argsort(mixed)[::-1][:2]
        return EmotionResult(
            self.head.labels[first], float(mixed[first]),
            self.head.labels[second], float(mixed[second]),
        )


def effective_emotion(detected: EmotionResult | EmotionReading | None,
                      corrected: str | None) -> EmotionReading | None:
    """The emotion the suggestion engine uses: the therapist's correction when there is
    one (at full confidence), else the classifier's reading.

    >>> effective_emotion(EmotionReading("anxiety", 0.6), "grief")
    EmotionReading(label='grief', confidence=1.0)
    >>> effective_emotion(EmotionReading("anxiety", 0.6), None)
    EmotionReading(label='anxiety', confidence=0.6)
    """
    if corrected is not None:
        return EmotionReading(check_emotion(corrected), 1.0)
    if isinstance(detected, EmotionResult):
        return detected.reading()
    return detected


@cache
def default_classifier() -> EmotionClassifier:
    """The bundled MiniLM and the shipped head, loaded once per process."""
    return EmotionClassifier(default_embedder().embed, EmotionHead.load())
