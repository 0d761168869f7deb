"""The client's emotion: MiniLM layer features, a small trained head, and a reading of the
whole conversation so far.

The head (assets/models/emotion_head.safetensors, `core/text_head.py`) is trained by
`therapist-trainer train-emotion-head` on authored client turns written in independent
batches, and its temperature is fitted on batches it was not trained on, so its
probabilities are calibrated (docs/emotions.md). The reading weighs each of the client's
recent turns by how much feeling it carries (greetings and logistics read as neutral
and weigh little), so small talk does not drown what was said before; a clear change
of feeling (the latest turns agreeing on another feeling) is followed. Below `UNCERTAIN_BELOW` the reading is shown as
uncertain and the suggestion engine is not told an emotion. A therapist's correction
always wins (`effective_emotion`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from therapist_app.core.assets import asset_path
from therapist_app.core.dialogue_format import EmotionReading, Turn, clean_text
from therapist_app.core.embedder import LayerMemo, default_embedder
from therapist_app.core.taxonomy import check_emotion, emotions
from therapist_app.core.text_head import HeadError, TextHead

log = logging.getLogger(__name__)

HEAD_ASSET = "models/emotion_head.safetensors"
NEUTRAL = "neutral"
# The probabilities are calibrated, so a reading below one half is more likely wrong
# than right: the chip says "uncertain" and the engine is not told an emotion.
UNCERTAIN_BELOW = 0.5
# Client turns read per call: the reading is of the conversation's recent part. Turns
# are not discounted by age within it: on the authored support chats of batches c01 and
# c02, any discount (0.97 to 0.5 per turn) lowered conversation accuracy, because the
# feeling a client came with is told early and the closing turns are thanks
# (docs/emotions.md).
MAX_TURNS = 12
# A change of feeling is clear when the latest CHANGE_TURNS turns each read the same
# other feeling at CHANGE_CONFIDENCE or more; the reading is then of those turns.
CHANGE_TURNS = 2
CHANGE_CONFIDENCE = 0.5
# What a turn with no feeling at all still weighs, so all-neutral talk reads neutral.
FLOOR = 0.05

LayerEmbedFn = Callable[[Sequence[str]], np.ndarray]

EmotionHeadError = HeadError


@dataclass(frozen=True)
class EmotionResult:
    label: str
    confidence: float
    runner_up: str
    runner_up_confidence: float

    @property
    def uncertain(self) -> bool:
        return self.confidence < UNCERTAIN_BELOW

    def reading(self) -> EmotionReading:
        return EmotionReading(self.label, round(self.confidence, 4))

    def runner_up_reading(self) -> EmotionReading:
        return EmotionReading(self.runner_up, round(self.runner_up_confidence, 4))


def read_conversation(probabilities: Sequence[dict[str, float]]) -> dict[str, float]:
    """One distribution for a conversation from each client turn's (oldest first): their
    mean weighted by the feeling each turn carries (1 - P(neutral), plus a little so
    that all-neutral talk still reads as neutral), or, after a clear change of feeling,
    the mean of the turns that show it. One turn reads as itself, so its calibrated
    probabilities reach the chip unchanged.

    >>> read_conversation([{"grief": 0.8, "neutral": 0.2}])
    {'grief': 0.8, 'neutral': 0.2}
    >>> loss, greeting = {"grief": 0.9, "hope": 0.0, "neutral": 0.1}, {"grief": 0.05, "hope": 0.0, "neutral": 0.95}
    >>> r = read_conversation([loss, greeting])
    >>> max(r, key=r.get)  # a greeting after a loss does not erase the loss
    'grief'
    >>> grief, hope = {"grief": 0.9, "hope": 0.0, "neutral": 0.1}, {"grief": 0.1, "hope": 0.8, "neutral": 0.1}
    >>> max(r := read_conversation([grief, grief, hope]), key=r.get)  # one hopeful turn is not yet a change
    'grief'
    >>> read_conversation([grief, grief, hope, hope])["hope"]  # two are
    0.8
    """
    if not probabilities:
        raise ValueError("there are no client turns to read")
    latest = [max(p, key=p.get) for p in probabilities[-CHANGE_TURNS:]]
    changed = (
        len(probabilities) > CHANGE_TURNS
        and len(set(latest)) == 1
        and latest[0] != NEUTRAL
        and all(p[latest[0]] >= CHANGE_CONFIDENCE for p in probabilities[-CHANGE_TURNS:])
    )
    if changed:
        overall = _weighted_mean(probabilities)
        if max(overall, key=overall.get) != latest[0]:
            return _weighted_mean(probabilities[-CHANGE_TURNS:])
        return overall
    return _weighted_mean(probabilities)


def _weighted_mean(probabilities: Sequence[dict[str, float]]) -> dict[str, float]:
    labels = list(probabilities[-1])
    weights = np.array([1.0 - p.get(NEUTRAL, 0.0) + FLOOR for p in probabilities])
    weights /= weights.sum()
    return {label: float(sum(w * p[label] for w, p in zip(weights, probabilities))) for label in labels}


def _client_texts(turns: str | Sequence[Turn] | Sequence[str]) -> list[str]:
    """The client's words, oldest first, from text, plain strings or dialogue turns."""
    if isinstance(turns, str):
        items = [turns]
    else:
        items = [t if isinstance(t, str) else t.text for t in turns if isinstance(t, str) or t.speaker == "client"]
    return [text for text in (clean_text(t) for t in items) if text]


class EmotionClassifier:
    """`classify(turns or text) -> EmotionResult` over the client's recent turns.

    Each distinct text's embedding is kept (a few hundred, `LayerMemo`, shared with the
    risk detector when the analyser passes its own), so a session's earlier turns are
    not embedded again on every new one.
    """

    def __init__(self, embed_layers: LayerEmbedFn, head: TextHead, remember: int = 512) -> None:
        if set(head.labels) != set(emotions()):
            raise HeadError(f"emotion head labels {sorted(head.labels)} differ from the taxonomy")
        self.embed_layers = embed_layers if isinstance(embed_layers, LayerMemo) else LayerMemo(embed_layers, remember)
        self.head = head

    @classmethod
    def load(cls, embed_layers: LayerEmbedFn, path: Path | None = None) -> "EmotionClassifier":
        return cls(embed_layers, TextHead.load(path or asset_path(HEAD_ASSET), tuple(emotions())))

    def probabilities(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """Per text, every label's calibrated probability (for rewards and evaluation)."""
        if not texts:
            return []
        probs = self.head.probabilities(np.asarray(self.embed_layers([clean_text(t) for t in texts])))
        return [dict(zip(self.head.labels, map(float, row))) for row in probs]

    def read(self, turns: str | Sequence[Turn] | Sequence[str]) -> dict[str, float]:
        """The conversation reading (`read_conversation`) of the client's recent turns."""
        texts = _client_texts(turns)[-MAX_TURNS:]
        if not texts:
            raise ValueError("there are no client words to read an emotion from")
        return read_conversation(self.probabilities(texts))

    def classify(self, turns: str | Sequence[Turn] | Sequence[str]) -> EmotionResult:
        reading = self.read(turns)
        first, second = sorted(reading, key=reading.get, reverse=True)[:2]
        return EmotionResult(first, reading[first], second, reading[second])


def effective_emotion(detected: EmotionResult | EmotionReading | None, corrected: str | None) -> EmotionReading | None:
    """The emotion the suggestion engine uses: the therapist's correction when there is
    one (at full confidence), else the classifier's reading unless it is uncertain.

    >>> effective_emotion(EmotionReading("anxiety", 0.6), "grief")
    EmotionReading(label='grief', confidence=1.0)
    >>> effective_emotion(EmotionReading("anxiety", 0.6), None)
    EmotionReading(label='anxiety', confidence=0.6)
    >>> effective_emotion(EmotionReading("anxiety", 0.3), None) is None
    True
    """
    if corrected is not None:
        return EmotionReading(check_emotion(corrected), 1.0)
    reading = detected.reading() if isinstance(detected, EmotionResult) else detected
    if reading is None or reading.confidence < UNCERTAIN_BELOW:
        return None
    return reading


@cache
def default_classifier() -> EmotionClassifier:
    """The bundled MiniLM and the shipped head, loaded once per process."""
    return EmotionClassifier.load(default_embedder().embed_layers)
