"""Emotion alignment: does the reply acknowledge the client's emotion appropriately?

Two readings are combined. An authored reflection-of-feeling check (a feeling word of
the client's emotion family inside a reflective frame such as "it sounds like"; a
dismissive phrase scores zero) and, where an emotion classifier is available, the
probability the classifier gives the client's emotion when it reads the reply (a reply
that reflects sadness reads as sad; one that ignores it does not). The client's emotion
is the annotated one, else what the classifier reads in the client's words.
"""

from __future__ import annotations

import re
from typing import Callable, Sequence

from therapist_app.core.taxonomy import emotions

from trainer.rewards.resources import LazyReward
from trainer.rewards.text import column, replies

# Callable over texts -> one {emotion id: probability} per text.
EmotionProbabilities = Callable[[Sequence[str]], list[dict[str, float]]]

# Written for this project: words a counsellor would use to name each feeling back.
FEELING_WORDS: dict[str, tuple[str, ...]] = {
    "anxiety": ("anxious", "anxiety", "worried", "worry", "worrying", "nervous", "on edge", "uneasy", "tense", "dread", "unsettled", "uncertain", "panicky"),
    "depression": ("low", "down", "flat", "empty", "hopeless", "heavy", "exhausted", "drained", "numb", "worn out", "stuck", "tired"),
    "sadness": ("sad", "sadness", "hurt", "hurting", "heartbroken", "upset", "tearful", "disappointed", "painful", "down"),
    "anger": ("angry", "anger", "frustrated", "frustrating", "furious", "annoyed", "irritated", "resentful", "fed up", "unfair", "mad"),
    "fear": ("afraid", "scared", "frightened", "frightening", "fear", "terrified", "unsafe", "threatened", "alarming"),
    "shame": ("ashamed", "shame", "embarrassed", "humiliated", "exposed", "judged", "not good enough", "small"),
    "guilt": ("guilt", "guilty", "regret", "blame", "blaming", "responsible", "wish you had"),
    "disgust": ("disgust", "disgusted", "repulsed", "revolted", "sickened", "gross"),
    "loneliness": ("lonely", "loneliness", "alone", "isolated", "disconnected", "left out", "on your own", "unseen"),
    "grief": ("grief", "grieving", "loss", "miss", "missing", "mourning", "gone"),
    "stress": ("stressed", "stress", "overwhelmed", "overwhelming", "pressure", "stretched", "too much", "swamped", "juggling"),
    "hope": ("hope", "hopeful", "relief", "relieved", "proud", "lighter", "encouraged", "optimistic", "progress", "glad"),
    "neutral": (),
}
REFLECTIVE_FRAMES = re.compile(
    r"\b(sounds? like|it sounds|that sounds|i hear|i can hear|it seems|you seem|seems like|"
    r"you feel|you're feeling|you are feeling|you've been feeling|you felt|must (?:feel|be)|"
    r"makes sense|understandabl[ey]|i imagine|i can imagine)\b"
)
DISMISSIVE = re.compile(
    r"\b(calm down|don'?t worry|cheer up|get over it|just relax|stop feeling|you shouldn'?t feel|"
    r"bright side|not a big deal|no big deal|could be worse|overreacting|toughen up|snap out of it|"
    r"stop being)\b"
)


def _mentions(text: str, phrases: Sequence[str]) -> bool:
    return any(re.search(r"\b" + re.escape(p) + r"\b", text) for p in phrases)


def reflection_of_feeling(reply: str, emotion: str | None) -> float:
    """The authored check, 0..1: 1.0 names the client's feeling in a reflective frame,
    0.6 names it plainly, 0.3 has only the frame, 0.0 neither or a dismissive phrase.
    For `neutral` (or no emotion) any reflective frame counts as acknowledgement.

    >>> reflection_of_feeling("It sounds like you feel really alone at the moment.", "loneliness")
    1.0
    >>> reflection_of_feeling("Loneliness can be hard.", "loneliness")
    0.6
    >>> reflection_of_feeling("Don't worry, you'll be fine.", "anxiety")
    0.0
    >>> reflection_of_feeling("What did you have for lunch?", "grief")
    0.0
    """
    text = reply.lower()
    if not text or DISMISSIVE.search(text):
        return 0.0
    framed = bool(REFLECTIVE_FRAMES.search(text))
    if emotion in (None, "neutral"):
        return 1.0 if framed else 0.3
    if emotion not in FEELING_WORDS:
        raise ValueError(f"unknown emotion {emotion!r}; expected one of {', '.join(emotions())}")
    named = _mentions(text, FEELING_WORDS[emotion])
    return 1.0 if named and framed else 0.6 if named else 0.3 if framed else 0.0


class EmotionAlignment(LazyReward):
    """`emotion_alignment(completions, emotion=..., client_words=...)`.

    Score = (1 - classifier_weight) * reflection check + classifier_weight * P(client's
    emotion | reply). Without a classifier the score is the reflection check alone.
    A row with neither an annotated emotion nor a classifier to read one gets None.
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
