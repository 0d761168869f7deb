"""Crisis-risk detection that runs before, and independently of, any language model.

Two channels. Deterministic patterns (risk_patterns.py) find crisis phrases and then
read their context: negation in the same clause, a quotation of someone else's words,
a hypothetical or generic if-clause, a distant past, and hyperbolic idioms (blanked
before matching). Then, only for sentences the patterns said nothing about, embedding
similarity to authored risk descriptions and sentences (assets/risk_descriptions.toml,
assets/risk_anchor_sentences.jsonl) catches indirect phrasings the lists miss. The
detector works without the embedder (patterns only), so a missing model can never
switch risk detection off.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Callable, Collection, Sequence

import numpy as np

from therapist_app.core.assets import asset_path
from therapist_app.core.dialogue_format import clean_text
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
    NEGATION,
    NEGATION_AFTER,
    NEGATED_BELIEF,
    NEGATION_CANCEL,
    NEW_SUBJECT,
    NONE,
    OWN_WORDS,
    PRONOUN,
    PATTERNS,
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

log = logging.getLogger(__name__)

SEVERITIES = ("none", "low", "moderate", "high")
EmbedFn = Callable[[Sequence[str]], np.ndarray]

__all__ = [
    "CATEGORIES",
    "RISK_LABELS",
    "SEVERITIES",
    "RiskAssessment",
    "RiskDetector",
    "Trigger",
    "primary_label",
    "anchor_scores",
    "cached_anchor_vectors",
    "channel_eligible",
    "channel_sentences",
    "channel_verdicts",
    "risk_anchors",
]


@dataclass(frozen=True)
class Trigger:
    """One phrase that raised (or, when `suppressed_by` is set, nearly raised) a risk."""

    category: str
    phrase: str
    start: int  # offsets into clean_text(input), the text the therapist sees
    end: int
    source: str  # "pattern" or "embedding"
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


@dataclass(frozen=True)
class RiskAnchors:
    """Authored sentences per label that the embedding channel compares with: the
    descriptions in risk_descriptions.toml (`none` holds safe look-alikes), the `dev`
    rows of risk_cases.jsonl, the indirect phrasings and look-alikes of
    risk_anchor_sentences.jsonl, and, as `none`, the everyday emotional talk of
    emotion_utterances.jsonl: the channel only sees sentences the patterns left alone,
    and those are mostly ordinary sadness, worry and anger. The `test` rows of
    risk_cases.jsonl never become anchors."""

    by_label: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def load(cls) -> "RiskAnchors":
        with asset_path("risk_descriptions.toml").open("rb") as f:
            table = tomllib.load(f)["category"]
        missing = [c for c in RISK_LABELS if c not in table]
        if missing:
            raise ValueError(f"risk_descriptions.toml lacks categories {missing}")
        rows = {c: list(table[c]["descriptions"]) for c in RISK_LABELS}
        with asset_path("risk_cases.jsonl").open(encoding="utf-8") as f:
            for line in f:
                case = json.loads(line)
                if case.get("split") == "dev":
                    rows[case["risk"]].append(case["text"])
        with asset_path("risk_anchor_sentences.jsonl").open(encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    case = json.loads(line)
                    if case["risk"] not in rows:
                        raise ValueError(f"risk_anchor_sentences.jsonl: unknown risk {case['risk']!r}")
                    rows[case["risk"]].append(case["text"])
        with asset_path("emotion_utterances.jsonl").open(encoding="utf-8") as f:
            rows[NONE] += [json.loads(line)["text"] for line in f if line.strip()]
        return cls({c: tuple(v) for c, v in rows.items()})


@cache
def risk_anchors() -> RiskAnchors:
    return RiskAnchors.load()


def embed_anchors(embed: EmbedFn, anchors: RiskAnchors) -> dict[str, np.ndarray]:
    return {label: np.asarray(embed(list(rows)), dtype=np.float32) for label, rows in anchors.by_label.items()}


def cached_anchor_vectors(embed: EmbedFn, model: str, cache_dir: Path,
                          anchors: RiskAnchors | None = None) -> dict[str, np.ndarray]:
    """The anchors' embeddings, computed once per model and anchor set and kept in
    `cache_dir` (a few hundred sentences: seconds on an idle machine, minutes on a busy
    one). The file name hashes the model id and every anchor, so an edit re-embeds."""
    anchors = anchors or risk_anchors()
    key = hashlib.sha256(json.dumps([model, anchors.by_label], sort_keys=True).encode()).hexdigest()[:16]
    path = cache_dir / f"risk-anchors-{key}.npz"
    try:
        with np.load(path) as stored:
            vectors = {label: stored[label] for label in anchors.by_label}
        if all(len(vectors[l]) == len(rows) for l, rows in anchors.by_label.items()):
            return vectors
    except (OSError, KeyError, ValueError):
        pass  # absent or unreadable: recompute
    vectors = embed_anchors(embed, anchors)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, **vectors)
        tmp.replace(path)
    except OSError as problem:
        log.warning("cannot cache risk anchor embeddings: %s", type(problem).__name__)
    return vectors


def anchor_scores(vectors: np.ndarray, anchors: dict[str, np.ndarray], k: int,
                  leave_out_identical: bool = False) -> dict[str, np.ndarray]:
    """Per label, each vector's mean cosine with its k most similar anchors.

    `leave_out_identical` ignores an anchor identical to the vector (cosine ~1): the
    leave-one-out scoring that chose the channel's operating point.
    """
    scores = {}
    for label, rows in anchors.items():
        similarity = vectors @ rows.T
        if leave_out_identical:
            similarity = np.where(similarity > 0.9999, -1.0, similarity)
        scores[label] = np.partition(similarity, -k, axis=1)[:, -k:].mean(axis=1)
    return scores


def channel_verdicts(scores: dict[str, np.ndarray], threshold: float,
                     margin: float) -> tuple[list[str], np.ndarray]:
    """Per scored vector, its best risk category and whether that category reaches
    `threshold` and beats the safe (`none`) score by `margin`: the channel's one rule,
    shared by the detector and the tuner that chooses its operating point."""
    stacked = np.stack([scores[c] for c in CATEGORIES]).astype(np.float64)
    best = stacked.max(axis=0)
    flags = (best >= threshold) & (best - scores[NONE].astype(np.float64) >= margin)
    return [CATEGORIES[i] for i in stacked.argmax(axis=0)], flags


def _mask_hyperbole(text: str) -> str:
    """Blank hyperbolic idioms, keeping every offset, so they can trigger nothing."""
    return HYPERBOLE.sub(lambda m: " " * len(m.group()), text)


def _channel_reads(sentence: str, masked: str) -> bool:
    """Quotations, thought experiments, crises the client says are over and sentences
    that are little more than a hyperbolic idiom ("I'd kill for a proper night's
    sleep": the few words left once the idiom is blanked would be read out of context)
    are the patterns' to judge, never the embedding channel's."""
    ended = RESOLVED.search(sentence) and not RETURNING.search(sentence)
    idiom_only = masked != sentence and len(masked.split()) < 4
    return not _conditional(masked) and not QUOTED.search(masked) and not ended and not idiom_only


def _pattern_spans(cleaned: str) -> list[tuple[int, int]]:
    """Where the patterns matched, flagged or suppressed: the channel leaves those alone."""
    assessment = _PATTERNS_ONLY.assess(cleaned)
    return [(t.start, t.end) for t in assessment.triggers + assessment.suppressed]


def channel_sentences(text: str) -> list[str]:
    """The sentences of `text` the embedding channel would read (idioms blanked): those
    no pattern touched that are neither quoted, conditional, over, nor little more than
    an idiom."""
    cleaned = clean_text(text)
    masked = _mask_hyperbole(cleaned)
    return [masked[a:b].strip() for a, b in _readable_spans(cleaned, masked, _pattern_spans(cleaned))]


def _readable_spans(text: str, masked: str, touched: Collection[tuple[int, int]]) -> list[tuple[int, int]]:
    return [
        (a, b) for a, b in _sentence_spans(masked)
        if masked[a:b].strip() and not any(a <= s < b for s, _ in touched)
        and _channel_reads(text[a:b], masked[a:b])
    ]


def channel_eligible(text: str) -> bool:
    """Whether the embedding channel would read this text as a whole: no pattern
    touched it and `_channel_reads` accepts it."""
    cleaned = clean_text(text)
    return not _pattern_spans(cleaned) and _channel_reads(cleaned, _mask_hyperbole(cleaned))


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
    return bool(HYPOTHETICAL.search(sentence)) or (
        bool(IF_WORD.search(sentence)) and not CONSEQUENT.search(sentence)
    )


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
            DIAGNOSED.search(sentence) or (pattern.severity != "high" and RESOLVED.search(sentence))):
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
    """`assess(text)` flags crisis language. With `embed=None` it runs on patterns only."""

    def __init__(
        self,
        embed: EmbedFn | None = None,
        anchors: RiskAnchors | None = None,
        anchor_vectors: dict[str, np.ndarray] | None = None,
        threshold: float = 0.35,
        margin: float = 0.04,
        k: int = 3,
    ) -> None:
        self._embed = embed
        self.threshold = threshold
        self.margin = margin
        self.k = k
        self._anchors: dict[str, np.ndarray] | None = None
        if embed is not None:
            self._anchors = anchor_vectors or embed_anchors(embed, anchors or risk_anchors())

    @property
    def uses_embeddings(self) -> bool:
        return self._anchors is not None

    def assess(self, text: str) -> RiskAssessment:
        text = clean_text(text)
        masked = _mask_hyperbole(text)
        active, suppressed = self._pattern_triggers(text, masked)
        if self._anchors is not None:
            touched = {(t.start, t.end) for t in active + suppressed}
            active += self._embedding_triggers(text, masked, touched)
        return _summarise(active, suppressed, self._anchors is not None)

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

    def _make(self, text: str, s_start: int, rel_start: int, rel_end: int, pattern: Pattern,
              severity: str, suppressed_by: str | None = None) -> Trigger:
        start, end = s_start + rel_start, s_start + rel_end
        return Trigger(pattern.category, text[start:end], start, end, "pattern", severity, suppressed_by)

    def _judge(self, text: str, sentence: str, s_start: int, match: re.Match,
               pattern: Pattern) -> Trigger | None:
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

    def _quoted_threats(self, text: str, masked: str, s_start: int, s_end: int,
                        active: list[Trigger]) -> None:
        """A quotation addressed to the client that threatens them is an abuse disclosure:
        'he told me "I'll kill you if you leave"'."""
        for quote in QUOTED.finditer(masked, s_start, s_end):
            if not ADDRESSED_TO_ME.search(masked[max(s_start, quote.start() - 60) : quote.start()]):
                continue
            threat = THREAT_TO_YOU.search(quote.group())
            if threat:
                start, end = quote.start() + threat.start(), quote.start() + threat.end()
                active.append(Trigger("abuse", text[start:end], start, end, "pattern", "moderate"))

    def _embedding_triggers(self, text: str, masked: str, touched: set[tuple[int, int]]) -> list[Trigger]:
        """Sentences no pattern matched whose nearest authored risk sentences (mean of the
        k most similar per label) beat both the threshold and the nearest safe ones."""
        assert self._anchors is not None and self._embed is not None
        spans = _readable_spans(text, masked, touched)
        if not spans:
            return []
        # The masked text is embedded so that hyperbolic idioms weigh nothing here either.
        vectors = np.asarray(self._embed([masked[a:b].strip() for a, b in spans]), dtype=np.float32)
        categories, flags = channel_verdicts(anchor_scores(vectors, self._anchors, self.k),
                                             self.threshold, self.margin)
        found = []
        for (a, b), best, flagged in zip(spans, categories, flags):
            if flagged:
                phrase = text[a:b].strip()
                start = text.index(phrase, a) if phrase in text[a:] else a
                found.append(Trigger(best, phrase, start, start + len(phrase), "embedding", "low"))
        return found


def _dedupe(triggers: list[Trigger]) -> list[Trigger]:
    """One trigger per category and span; overlapping spans keep the longest."""
    kept: list[Trigger] = []
    for trigger in sorted(triggers, key=lambda t: (t.start, -(t.end - t.start))):
        if any(k.category == trigger.category and k.start <= trigger.start and trigger.end <= k.end
               and k.suppressed_by == trigger.suppressed_by for k in kept):
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
