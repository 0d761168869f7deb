"""Emotion alignment: does the reply acknowledge the client's emotion appropriately?

Two readings are combined. An authored reflection-of-feeling check (a feeling word of
the client's emotion family inside a reflective frame such as "it sounds like"; a
dismissive phrase scores zero) and, where an emotion classifier is available, the
probability the classifier gives the client's emotion when it reads the reply (a reply
that reflects sadness reads as sad; one that ignores it does not). The client's emotion
is the annotated one, else what the classifier reads in the client's words.
"""

from __future__ import annotations

from typing import Callable, Sequence

from therapist_app.core.scoring.quality import FEELING_WORDS, reflection_of_feeling
from trainer.rewards.resources import LazyReward
from trainer.rewards.text import column, replies

# Callable over texts -> one {emotion id: probability} per text.
EmotionProbabilities = Callable[[Sequence[str]], list[dict[str, float]]]

__all__ = ["FEELING_WORDS", "EmotionAlignment", "reflection_of_feeling"]


class EmotionAlignment(LazyReward):
    """`emotion_alignment(completions, emotion=..., client_words=...)`.

    Score = (1 - classifier_weight) * reflection check + classifier_weight * P(client's
    emotion | reply). Without a classifier the score is the reflection check alone.
    A row with neither an annotated emotion nor a classifier to read one gets None.

    >>> EmotionAlignment(classifier=None)(["It sounds like you feel really alone.", "Okay."],
    ...                                   emotion=["loneliness", None])
    [1.0, None]
    """

    name = "emotion_alignment"

    def __init__(self, classifier: EmotionProbabilities | str | None = "auto", classifier_weight: float = 0.5) -> None:
        if not 0.0 <= classifier_weight <= 1.0:
            raise ValueError(f"classifier_weight must be within 0..1, not {classifier_weight}")
        if not (classifier is None or callable(classifier) or classifier == "auto"):
            raise ValueError("classifier must be a callable, 'auto' (the app's classifier if installed) or None")
        super().__init__(classifier=classifier)
        self.classifier_weight = classifier_weight

    def _load(self, name: str, spec):
        from trainer.rewards.resources import load_emotion_classifier

        return load_emotion_classifier(optional=True) if spec == "auto" else spec

    def __call__(self, completions, emotion=None, client_words=None, **kwargs) -> list[float | None]:
        texts = replies(completions)
        targets = column({"emotion": emotion}, "emotion", len(texts))
        clients = column({"client_words": client_words}, "client_words", len(texts))
        classify = self.resource("classifier")
        if classify is not None:
            unknown = [i for i, t in enumerate(targets) if t is None and clients[i]]
            if unknown:
                read = classify([clients[i] for i in unknown])
                for i, probs in zip(unknown, read):
                    targets[i] = max(probs, key=probs.get)
            reply_probs = classify(texts)
        scores: list[float | None] = []
        for i, (text, target) in enumerate(zip(texts, targets)):
            if target is None:
                scores.append(None)
                continue
            score = reflection_of_feeling(text, target)
            if classify is not None and text:
                score = (1 - self.classifier_weight) * score + self.classifier_weight * reply_probs[i].get(target, 0.0)
            scores.append(score)
        return scores
