"""Crisis-risk detection that runs before, and independently of, any language model.

Two channels, either of which flags. Deterministic patterns (risk_patterns.py) find
crisis phrases and then read their context: negation in the same clause, a quotation
of someone else's words, a hypothetical or generic if-clause, a distant past, and
hyperbolic idioms (blanked before matching). A learned channel (a small head over
MiniLM features, assets/models/risk_head.safetensors, trained on authored batches of
risk turns and hard negatives by `therapist-trainer train-risk-head`) reads the turn,
its sentences, and the turn together with the client's previous ones, so a new
phrasing of a known kind of risk is caught without a new pattern (docs/risk.md gives
its leave-batch-out figures). The detector works without the embedder (patterns
only), so a missing model can never switch risk detection off.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from therapist_app.core.assets import asset_path
from therapist_app.core.dialogue_format import clean_text
from therapist_app.core.embedder import LayerMemo
from therapist_app.core.risk_patterns import (
    ADDRESSED_TO_ME,
    CATEGORIES,
    CLAUSE_BREAK,
    CONSEQUENT,
    COUNTERFACTUAL,
    DIAGNOSED,
    DISTANT_PAST,
    ELIDED_SUBJECT,
    FIRST_PERSON,
    FIRST_PERSON_SUBJECT,
    HYPERBOLE,
    HYPOTHETICAL,
    IF_WORD,
    IMMINENT,
    NEGATED_BELIEF,
    NEGATION,
    NEGATION_AFTER,
    NEGATION_CANCEL,
    NEW_SUBJECT,
    NONE,
    OWN_WORDS,
    PATTERNS,
    PRONOUN,
    QUOTED,
    REPORTED_QUESTION,
    RESOLVED,
    RETRACTED,
    RETURNING,
    RISK_LABELS,
    SENTENCE,
    STORY_FRAME,
    THREAT_TO_YOU,
    Pattern,
)
from therapist_app.core.text_head import HeadError, TextHead

log = logging.getLogger(__name__)

SEVERITIES = ("none", "low", "moderate", "high")
LayerEmbedFn = Callable[[Sequence[str]], np.ndarray]
HEAD_ASSET = "models/risk_head.safetensors"
# Used only when a head carries no operating point of its own (its metadata has one,
# chosen by `therapist-trainer train-risk-head` on held-out batches).
DEFAULT_THRESHOLD = 0.5
# A learned flag at or above this risk probability reads as moderate, below as low.
CONFIDENT = 0.8
# Client turns read together (the latest and the ones before it).
WINDOW = 3
# The window is read when a turn in it, read alone, reaches this share of the threshold.
WINDOW_TRACE = 0.5

__all__ = [
    "CATEGORIES",
    "RISK_LABELS",
    "SEVERITIES",
    "RiskAssessment",
    "RiskDetector",
    "Trigger",
    "learned_reading",
    "learned_units",
    "primary_label",
    "risk_of",
]


@dataclass(frozen=True)
class Trigger:
    """One phrase that raised (or, when `suppressed_by` is set, nearly raised) a risk."""

    category: str
    phrase: str
    start: int  # offsets into clean_text(input), the text the therapist sees
    end: int
    source: str  # "pattern" or "learned"
    severity: str
    suppressed_by: str | None = None  # negated, quoted, hypothetical, reported


@dataclass(frozen=True)
class RiskAssessment:
    categories: tuple[str, ...]  # flagged categories, most severe first
    severity: str
    triggers: tuple[Trigger, ...]
    suppressed: tuple[Trigger, ...] = ()
    embedding_used: bool = False

    @property
    def flagged(self) -> bool:
        return bool(self.categories)


def primary_label(assessment: RiskAssessment) -> str:
    """The single risk label an evaluation compares with: the most severe category or `none`."""
    return assessment.categories[0] if assessment.categories else NONE


def _mask_hyperbole(text: str) -> str:
    """Blank hyperbolic idioms, keeping every offset, so they can trigger nothing."""
    return HYPERBOLE.sub(lambda m: " " * len(m.group()), text)


def learned_units(masked: str) -> list[tuple[int, int]]:
    """What the learned channel reads of a turn (idioms blanked): the whole turn, and
    each sentence when there are several, so a risk buried in a long update is read on
    its own as well as in its setting.

    >>> learned_units("Work was fine. I bought rope.")
    [(0, 29), (0, 14), (15, 29)]
    """
    spans = [(a, b) for a, b in _sentence_spans(masked) if masked[a:b].strip()]
    whole = [(0, len(masked))] if masked.strip() else []
    return whole + (spans if len(spans) > 1 else [])


def risk_of(probabilities: np.ndarray) -> np.ndarray:
    """The risk probability of each row of the head's label probabilities: 1 - P(none).

    >>> risk_of(np.array([[0.1, 0.1, 0.0, 0.0, 0.8]])).round(3).tolist()
    [0.2]
    """
    return 1.0 - probabilities[..., RISK_LABELS.index(NONE)]


def learned_reading(text: str) -> tuple[str, list[tuple[int, int]]]:
    """A turn as the learned channel reads it: its cleaned words with idioms blanked, and
    `learned_units` of them (the trainer scores its heads on exactly this)."""
    masked = _mask_hyperbole(clean_text(text))
    return masked, learned_units(masked)


def _sentence_spans(text: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in SENTENCE.finditer(text) if m.group().strip()]


def _clause_start(sentence: str, offset: int) -> int:
    start = 0
    for brk in CLAUSE_BREAK.finditer(sentence, 0, offset):
        start = brk.end()
    return start


def _client_is_subject(sentence: str, core: int) -> bool:
    pronouns = PRONOUN.findall(sentence, 0, core)
    if not pronouns:
        return bool(ELIDED_SUBJECT.match(sentence))
    return bool(FIRST_PERSON.fullmatch(pronouns[-1]))


def _is_negated(prefix: str) -> bool:
    """A negation cue among the last eight words before the phrase, in its clause."""
    if NEGATION_CANCEL.search(prefix):
        return False
    window = " ".join(prefix.split()[-8:])
    cues = list(NEGATION.finditer(window))
    if not cues:
        return False
    # "When the baby won't stop crying I get this urge to...": when a subject follows
    # the cue, the cue negated an earlier clause, unless it negated a belief about what
    # follows ("I don't think I'd...", "not that I would...").
    last = cues[-1]
    if NEW_SUBJECT.search(window, last.end()):
        return bool(NEGATED_BELIEF.search(window, max(0, last.start() - 4)))
    return True


def _story_told(prefix: str) -> bool:
    """A story frame before the phrase, with no client subject after it."""
    frames = list(STORY_FRAME.finditer(prefix))
    return bool(frames) and not FIRST_PERSON_SUBJECT.search(prefix, frames[-1].end())


def _is_hypothetical(sentence: str, rel_start: int, rel_end: int, pattern: Pattern) -> bool:
    if HYPOTHETICAL.search(sentence):
        return True
    ifs = list(IF_WORD.finditer(sentence, 0, rel_start))
    if not ifs:
        return False
    from_if = sentence[ifs[-1].start() : rel_end]
    if CONSEQUENT.search(from_if):
        return False
    # "If she left me I'd kill myself" is a risk statement, not a thought experiment.
    if pattern.category == "suicide_selfharm" and COUNTERFACTUAL.search(from_if):
        return False
    return True


def _conditional(sentence: str) -> bool:
    """A thought experiment or an if-clause without a stated consequence."""
    return bool(HYPOTHETICAL.search(sentence)) or (bool(IF_WORD.search(sentence)) and not CONSEQUENT.search(sentence))


def _quote_containing(text: str, start: int) -> tuple[int, int] | None:
    for quote in QUOTED.finditer(text):
        if quote.start() < start < quote.end():
            return quote.start(), quote.end()
    return None


def _severity(base: str, text: str, sentence: str, rel_start: int, pattern: Pattern) -> str | None:
    """The trigger's severity, or None when it reports a third party's past or a past
    crisis the client says has ended."""
    # "Heart racing, but it passed" is history; an overdose or chest pain that "passed"
    # is not (paracetamol harms the liver after the sickness settles) unless a harmless
    # cause was found.
    if pattern.category == "substance_medical" and (
        DIAGNOSED.search(sentence) or (pattern.severity != "high" and RESOLVED.search(sentence))
    ):
        return None
    past = DISTANT_PAST.search(sentence)
    if past:
        subject = " ".join(sentence[:rel_start].split()[-2:])
        if pattern.third_party and not FIRST_PERSON_SUBJECT.search(subject):
            return None
        if RESOLVED.search(text):
            return None
        if not RETURNING.search(sentence):
            return "low"
    if IMMINENT.search(sentence):
        return "high"
    return base


class RiskDetector:
    """`assess(text, recent)` flags crisis language. With no embedder or head it runs on
    its patterns alone."""

    def __init__(
        self, embed_layers: LayerEmbedFn | None = None, head: TextHead | None = None, threshold: float | None = None
    ) -> None:
        if (embed_layers is None) != (head is None):
            raise ValueError("the learned channel needs both the embedder and the head")
        if head is not None and tuple(head.labels) != RISK_LABELS:
            raise HeadError(f"risk head labels {head.labels} are not {RISK_LABELS}")
        if embed_layers is not None and not isinstance(embed_layers, LayerMemo):
            embed_layers = LayerMemo(embed_layers)
        self._embed = embed_layers
        self._head = head
        self.threshold = (
            threshold
            if threshold is not None
            else (float(head.metadata.get("threshold", DEFAULT_THRESHOLD)) if head is not None else DEFAULT_THRESHOLD)
        )
        if not 0 < self.threshold < 1:
            raise ValueError(f"threshold must be within (0, 1), not {self.threshold}")

    @classmethod
    def load(cls, embed_layers: LayerEmbedFn, path: Path | None = None) -> "RiskDetector":
        """Patterns plus the shipped learned channel."""
        return cls(embed_layers, TextHead.load(path or asset_path(HEAD_ASSET), RISK_LABELS))

    @property
    def uses_embeddings(self) -> bool:
        return self._head is not None

    def assess(self, text: str, recent: Sequence[str] = ()) -> RiskAssessment:
        """Risk in the client's latest words; `recent` holds their earlier turns (oldest
        first), read together with these for risk spread over turns."""
        text = clean_text(text)
        masked = _mask_hyperbole(text)
        active, suppressed = self._pattern_triggers(text, masked)
        if self._head is not None:
            earlier = [_mask_hyperbole(clean_text(t)) for t in recent[-WINDOW + 1 :]]
            active += self._learned_triggers(text, masked, [t for t in earlier if t.strip()])
        return _summarise(active, suppressed, self._head is not None)

    def _pattern_triggers(self, text: str, masked: str) -> tuple[list[Trigger], list[Trigger]]:
        active: list[Trigger] = []
        suppressed: list[Trigger] = []
        for s_start, s_end in _sentence_spans(masked):
            sentence = masked[s_start:s_end]
            negated_here = False
            contrasts: list[tuple[Pattern, int, int]] = []
            for pattern in PATTERNS:
                for match in pattern.regex.finditer(sentence):
                    if pattern.after_negated:
                        contrasts.append((pattern, match.start(), match.end()))
                        continue
                    trigger = self._judge(text, sentence, s_start, match, pattern)
                    if trigger is None:
                        continue
                    if trigger.suppressed_by:
                        negated_here |= trigger.suppressed_by == "negated"
                        suppressed.append(trigger)
                    else:
                        active.append(trigger)
            if negated_here:
                active += [self._make(text, s_start, a, b, p, p.severity) for p, a, b in contrasts]
            self._quoted_threats(text, masked, s_start, s_end, active)
        return _dedupe(active), _dedupe(suppressed)

    def _make(
        self,
        text: str,
        s_start: int,
        rel_start: int,
        rel_end: int,
        pattern: Pattern,
        severity: str,
        suppressed_by: str | None = None,
    ) -> Trigger:
        start, end = s_start + rel_start, s_start + rel_end
        return Trigger(pattern.category, text[start:end], start, end, "pattern", severity, suppressed_by)

    def _judge(self, text: str, sentence: str, s_start: int, match: re.Match, pattern: Pattern) -> Trigger | None:
        rel_start, rel_end = match.span()
        # Patterns that start at the subject ("I ... hurt him") name their risky part
        # `core`; negation is looked for in everything before it ("I've never thought
        # about hurting anyone").
        core = match.start("core") if "core" in pattern.regex.groupindex else rel_start
        clause_start = _clause_start(sentence, core)
        prefix = sentence[clause_start:core]
        if pattern.first_person and not _client_is_subject(sentence, core):
            return None
        severity = _severity(pattern.severity, text, sentence, rel_start, pattern)
        if severity is None:
            return self._make(text, s_start, rel_start, rel_end, pattern, "low", "reported")
        quote = _quote_containing(text, s_start + rel_start)
        if quote is not None and not OWN_WORDS.search(text[max(0, quote[0] - 60) : quote[0]]):
            return self._make(text, s_start, rel_start, rel_end, pattern, severity, "quoted")
        if REPORTED_QUESTION.search(prefix) or _story_told(sentence[:core]):
            return self._make(text, s_start, rel_start, rel_end, pattern, severity, "reported")
        # A retraction ("but I didn't mean it") takes back a threat, never the client's
        # own wish to die: "I want to die, just joking" stays flagged.
        retracted = pattern.category != "suicide_selfharm" and RETRACTED.match(sentence[rel_end:])
        if _is_negated(prefix) or (not prefix.strip() and NEGATION_AFTER.match(sentence[rel_end:])) or retracted:
            return self._make(text, s_start, rel_start, rel_end, pattern, severity, "negated")
        if _is_hypothetical(sentence, rel_start, rel_end, pattern):
            return self._make(text, s_start, rel_start, rel_end, pattern, severity, "hypothetical")
        return self._make(text, s_start, rel_start, rel_end, pattern, severity)

    def _quoted_threats(self, text: str, masked: str, s_start: int, s_end: int, active: list[Trigger]) -> None:
        """A quotation addressed to the client that threatens them is an abuse disclosure:
        'he told me "I'll kill you if you leave"'."""
        for quote in QUOTED.finditer(masked, s_start, s_end):
            if not ADDRESSED_TO_ME.search(masked[max(s_start, quote.start() - 60) : quote.start()]):
                continue
            threat = THREAT_TO_YOU.search(quote.group())
            if threat:
                start, end = quote.start() + threat.start(), quote.start() + threat.end()
                active.append(Trigger("abuse", text[start:end], start, end, "pattern", "moderate"))

    def _learned_triggers(self, text: str, masked: str, earlier: list[str]) -> list[Trigger]:
        """The turn, each of its sentences when it has several, and the turn read with the
        client's previous turns: a unit whose risk probability (1 - P(none)) reaches the
        threshold flags its most likely category. The window counts only when no earlier
        turn reaches the threshold alone (that one was flagged when it was said)."""
        spans = learned_units(masked)
        if not spans:
            return []
        # One MiniLM pass reads the turn and its sentences (pooled from the same pass);
        # the earlier turns' rows were remembered when they were said.
        probabilities = self._head.probabilities(self._embed.spans(masked, spans[1:]))
        risk = risk_of(probabilities)
        best = int(np.argmax(risk))
        if risk[best] >= self.threshold:
            a, b = spans[best]
            return [self._learned(text, a, b, probabilities[best], risk[best])]
        if not earlier:
            return []
        before = risk_of(self._head.probabilities(self._embed(earlier)))
        # The window is a pass of its own over the joined turns (pooling their rows
        # loses what they say together: "I counted the pills." + "Sometime tonight"
        # reads 0.97 joined, 0.13 pooled), so it is read only when some turn in it
        # already carries a trace of risk: everyday talk keeps the one-pass budget.
        if before.max() >= self.threshold or max(before.max(), risk[best]) < self.threshold * WINDOW_TRACE:
            return []
        window = self._head.probabilities(self._embed([" ".join(earlier + [masked])]))[0]
        window_risk = float(risk_of(window))
        if window_risk < self.threshold:
            return []
        return [self._learned(text, 0, len(text), window, window_risk)]

    @staticmethod
    def _learned(text: str, start: int, end: int, probabilities: np.ndarray, risk: float) -> Trigger:
        category = CATEGORIES[int(np.argmax(probabilities[: len(CATEGORIES)]))]
        phrase = text[start:end].strip()
        start = text.index(phrase, start) if phrase and phrase in text[start:] else start
        return Trigger(
            category, phrase, start, start + len(phrase), "learned", "moderate" if risk >= CONFIDENT else "low"
        )


def _dedupe(triggers: list[Trigger]) -> list[Trigger]:
    """One trigger per category and span; overlapping spans keep the longest."""
    kept: list[Trigger] = []
    for trigger in sorted(triggers, key=lambda t: (t.start, -(t.end - t.start))):
        if any(
            k.category == trigger.category
            and k.start <= trigger.start
            and trigger.end <= k.end
            and k.suppressed_by == trigger.suppressed_by
            for k in kept
        ):
            continue
        kept.append(trigger)
    return kept


def _summarise(active: list[Trigger], suppressed: list[Trigger], embedding_used: bool) -> RiskAssessment:
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    worst: dict[str, str] = {}
    for trigger in active:
        if rank[trigger.severity] > rank[worst.get(trigger.category, "none")]:
            worst[trigger.category] = trigger.severity
    categories = tuple(sorted(worst, key=lambda c: (-rank[worst[c]], CATEGORIES.index(c))))
    severity = worst[categories[0]] if categories else "none"
    return RiskAssessment(categories, severity, tuple(active), tuple(suppressed), embedding_used)


_PATTERNS_ONLY = RiskDetector()
