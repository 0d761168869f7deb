"""Best-of-N: score every draft of a round, drop the unsafe and the repeated, and choose
the few a therapist sees.

A round decodes more candidate drafts than it shows. Each draft is scored by the parts
of the reward pack that need no torch (strategy adherence, emotion alignment with the
app's classifier, relevance to the client's words with the app's embedder, format,
repetition, length) and checked by the safety rules (`scoring.safety`). Unsafe drafts
and near-duplicates of better ones are never shown; of the rest the best are shown,
one per strategy where the pool allows. On a flagged crisis turn, authored crisis
responses and checked model drafts join the pool and at least one shown draft asks
directly about the risk.
Every draft keeps its components, so the therapist can see why it ranked where it did.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, fields
from typing import Callable, Sequence

import numpy as np

from therapist_app.core.dialogue_format import SuggestionRequest
from therapist_app.core.embedder import EmbedderUnavailable, default_embedder
from therapist_app.core.emotion import EmotionHeadError, default_classifier
from therapist_app.core.scoring.quality import (
    adherence,
    format_score,
    length_score,
    reflection_of_feeling,
    register,
    repetition,
)
from therapist_app.core.scoring.safety import asks_about_risk, check_reply
from therapist_app.core.scoring.text import near_duplicate

log = logging.getLogger(__name__)

EmbedFn = Callable[[Sequence[str]], np.ndarray]
EmotionProbabilities = Callable[[Sequence[str]], list[dict[str, float]]]


@dataclass(frozen=True)
class RankingWeights:
    """How much each component counts in a draft's total (each component is 0..1,
    repetition -1..0).

    Chosen on the validation dialogue batch (d12; 120 contexts, 6 drafts each from the
    tuned default): the model's own confidence counts most, relevance to the client's
    words and emotion alignment help, and strategy adherence at half weight keeps each
    draft's strategy tag true. The greedy draft of a strategy is the most like a
    therapist's own words (ROUGE-L 0.182 on d12 against 0.137-0.165 for the samples), so
    it keeps its place unless a sample beats it by `most_likely`: without that, the
    ranking's first draft fell to ROUGE-L 0.170 against greedy's 0.182; with 0.5 it
    reads 0.180 (0.185 against 0.183 on unflagged turns) and still gains on the other
    components. docs/evaluation.md has the figures."""

    strategy: float = 0.5
    emotion: float = 1.0
    relevance: float = 0.75
    format: float = 1.0
    repetition: float = 1.0
    length: float = 0.0
    register: float = 1.0
    likelihood: float = 6.0
    """The model's own confidence in the draft (geometric mean token probability)."""
    most_likely: float = 0.5
    """A greedily decoded draft (`Draft.greedy`)."""
    asks_about_risk: float = 2.0
    """Crisis turns only: a draft that asks directly about the risk."""

    def __post_init__(self) -> None:
        negative = [f.name for f in fields(self) if getattr(self, f.name) < 0]
        if negative:
            raise ValueError(f"ranking weights must be >= 0: {', '.join(negative)}")


@dataclass(frozen=True)
class Draft:
    """One candidate reply of a round."""

    index: int
    strategy: str
    text: str
    """The cleaned reply (`dialogue_format.parse_reply`)."""
    raw_text: str = ""
    source: str = "model"
    """'model' (decoded this round), 'authored' (a reviewed crisis response) or 'checked'
    (a model draft with a reviewed safety check question after it)."""
    finish_reason: str = "stop"
    likelihood: float | None = None
    """The model's geometric-mean token probability; None for authored drafts."""
    greedy: bool = False
    """Decoded by always taking the most likely token: the model's own reply for its
    strategy, where the others of the round are samples."""


@dataclass(frozen=True)
class RankedDraft:
    draft: Draft
    components: dict[str, float]
    total: float
    unsafe: tuple[str, ...] = ()
    """The safety rules the draft breaks (never shown when any)."""
    dropped: str | None = None
    """Why it is not shown: 'empty', 'unsafe', 'repeats draft N', 'repeats an earlier reply'
    or 'ranked lower'."""
    rank: int | None = None
    """1-based position among the shown drafts."""

    def explanation(self) -> str:
        """One line a therapist can read: rank, total and each component.

        >>> RankedDraft(Draft(0, "question", "How?"), {"strategy": 1.0, "format": 1.0}, 2.0, rank=1).explanation()
        'ranked 1 (total 2.00): strategy 1.00, format 1.00'
        """
        parts = ", ".join(f"{name.replace('_', ' ')} {value:.2f}" for name, value in self.components.items())
        head = f"ranked {self.rank}" if self.rank else f"not shown ({self.dropped})"
        if self.unsafe:
            head += f"; breaks {', '.join(r.replace('_', ' ') for r in self.unsafe)}"
        if self.draft.source == "authored":
            head += "; authored crisis response"
        elif self.draft.source == "checked":
            head += "; the model's draft with a reviewed safety question"
        return f"{head} (total {self.total:.2f}): {parts}"


@dataclass(frozen=True)
class Ranking:
    shown: tuple[RankedDraft, ...]
    others: tuple[RankedDraft, ...] = field(default=())
    """Every draft not shown, with the reason."""

    @property
    def none_passed(self) -> bool:
        return not self.shown


class DraftScorer:
    """Scores drafts with the app's embedder and emotion classifier where given; without
    them relevance and the classifier's half of emotion alignment are left out.

    >>> from therapist_app.core.dialogue_format import EmotionReading
    >>> request = SuggestionRequest("I can't sleep before the exam.", emotion=EmotionReading("anxiety"))
    >>> ranking = DraftScorer().rank([Draft(0, "question", "What keeps you awake the most before the exam?"),
    ...                               Draft(1, "reflection", "It sounds like the exam has you worried and tense."),
    ...                               Draft(2, "question", "I'll call your teacher about it.")], request)
    >>> [(r.draft.index, r.rank) for r in ranking.shown], [(r.draft.index, r.unsafe) for r in ranking.others]
    ([(1, 1), (0, 2)], [(2, ('outside_session',))])
    """

    def __init__(
        self,
        embed: EmbedFn | None = None,
        emotion_probabilities: EmotionProbabilities | None = None,
        weights: RankingWeights = RankingWeights(),
    ) -> None:
        self.embed = embed
        self.emotion_probabilities = emotion_probabilities
        self.weights = weights

    def components(
        self, drafts: Sequence[Draft], request: SuggestionRequest, risk: Sequence[str] = ()
    ) -> list[dict[str, float]]:
        emotion = request.emotion.label if request.emotion else None
        texts = [d.text for d in drafts]
        relevance = self._relevance(texts, request.client_words)
        felt = self._classifier_reading(texts, emotion)
        # An authored crisis response has no likelihood of its own: it is reviewed text,
        # so it counts as sure as the round's most confident generated draft.
        known = [d.likelihood for d in drafts if d.likelihood is not None]
        sure = max(known) if known else None
        rows = []
        for i, draft in enumerate(drafts):
            feeling = reflection_of_feeling(draft.text, emotion)
            if felt is not None and emotion is not None and draft.text:
                feeling = (feeling + felt[i]) / 2
            row = {
                "strategy": adherence(draft.text, draft.strategy, request.client_words, emotion),
                "emotion": feeling,
                "format": format_score(draft.raw_text or draft.text),
                "repetition": repetition(draft.raw_text or draft.text),
                "length": length_score(draft.text),
                "register": register(draft.text),
            }
            if draft.source != "authored":
                row["most_likely"] = float(draft.greedy)
            if draft.likelihood is not None:
                row["likelihood"] = draft.likelihood
            elif draft.source == "authored" and sure is not None:
                row["likelihood"] = sure
            if relevance is not None:
                row["relevance"] = relevance[i]
            if risk:
                row["asks_about_risk"] = float(asks_about_risk(draft.text, risk))
            rows.append(row)
        return rows

    def total(self, components: dict[str, float]) -> float:
        return sum(getattr(self.weights, name) * value for name, value in components.items())

    def _relevance(self, texts: list[str], client_words: str) -> list[float] | None:
        if self.embed is None:
            return None
        vectors = np.asarray(self.embed([client_words] + [t or " " for t in texts]), dtype=np.float64)
        return [float(min(1.0, max(0.0, v @ vectors[0]))) if t else 0.0 for v, t in zip(vectors[1:], texts)]

    def _classifier_reading(self, texts: list[str], emotion: str | None) -> list[float] | None:
        if self.emotion_probabilities is None or emotion is None:
            return None
        spoken = [t or " " for t in texts]
        return [p.get(emotion, 0.0) for p in self.emotion_probabilities(spoken)]

    def rank(
        self,
        drafts: Sequence[Draft],
        request: SuggestionRequest,
        risk: Sequence[str] = (),
        shown: int = 3,
        distinct_strategies: bool = True,
    ) -> Ranking:
        """Score, gate and choose up to `shown` drafts (best first)."""
        emotion = request.emotion.label if request.emotion else None
        scored = []
        for draft, components in zip(drafts, self.components(drafts, request, risk)):
            unsafe = check_reply(draft.text, risk, emotion).reasons if draft.text else ()
            scored.append(RankedDraft(draft, components, self.total(components), unsafe))
        said = [t.text for t in request.context if t.speaker == "therapist"]
        return choose(scored, risk, shown, distinct_strategies, said)


def default_scorer(weights: RankingWeights = RankingWeights()) -> DraftScorer:
    """The app's scorer: the bundled MiniLM and emotion head (shared with the analyser,
    loaded once per process); words-only components when they are not installed."""
    try:
        embed = default_embedder().embed
    except EmbedderUnavailable as missing:
        log.warning("drafts are ranked without relevance or emotion reading: %s", missing)
        return DraftScorer(weights=weights)
    try:
        probabilities = default_classifier().probabilities
    except (EmotionHeadError, FileNotFoundError) as missing:
        log.warning("drafts are ranked without the emotion classifier: %s", missing)
        probabilities = None
    return DraftScorer(embed, probabilities, weights)


def choose(
    scored: Sequence[RankedDraft],
    risk: Sequence[str] = (),
    shown: int = 3,
    distinct_strategies: bool = True,
    said: Sequence[str] = (),
) -> Ranking:
    """The shown drafts: best total first, never unsafe or empty, never a near-duplicate
    of a better draft or of what the therapist has already said this session (`said`:
    a greedy draft tends to offer the same question turn after turn), one per strategy
    while the pool allows; on a crisis turn at least one that asks about the risk.

    >>> d = lambda i, s, t, total: RankedDraft(Draft(i, s, t), {}, total)
    >>> ranking = choose([d(0, "question", "How was it?", 1.0), d(1, "question", "How was it?", 0.9),
    ...                   d(2, "reflection", "That sounds hard.", 0.5)])
    >>> [(r.draft.index, r.rank) for r in ranking.shown], [(r.draft.index, r.dropped) for r in ranking.others]
    ([(0, 1), (2, 2)], [(1, 'repeats draft 1')])
    """
    order = sorted(scored, key=lambda r: -r.total)
    eligible: list[RankedDraft] = []
    reasons: dict[int, str] = {}
    for ranked in order:
        if not ranked.draft.text:
            reasons[id(ranked)] = "empty"
        elif ranked.unsafe:
            reasons[id(ranked)] = "unsafe"
        elif any(near_duplicate(ranked.draft.text, earlier) for earlier in said):
            reasons[id(ranked)] = "repeats an earlier reply"
        else:
            twin = next((e for e in eligible if near_duplicate(ranked.draft.text, e.draft.text)), None)
            if twin is not None:
                reasons[id(ranked)] = f"repeats draft {order.index(twin) + 1}"
            else:
                eligible.append(ranked)
    picked: list[RankedDraft] = []
    if distinct_strategies:
        for ranked in eligible:
            if len(picked) < shown and all(p.draft.strategy != ranked.draft.strategy for p in picked):
                picked.append(ranked)
    for ranked in eligible:  # fewer strategies than slots: the next best of any strategy
        if len(picked) < shown and ranked not in picked:
            picked.append(ranked)
    if risk and picked and not any(r.components.get("asks_about_risk") for r in picked):
        asking = next((r for r in eligible if r.components.get("asks_about_risk") and r not in picked), None)
        if asking is not None:
            picked[-1] = asking
    picked.sort(key=lambda r: -r.total)
    shown_drafts = tuple(_with(r, rank=i) for i, r in enumerate(picked, start=1))
    others = tuple(_with(r, dropped=reasons.get(id(r), "ranked lower")) for r in order if r not in picked)
    return Ranking(shown_drafts, others)


def _with(ranked: RankedDraft, **changes) -> RankedDraft:
    return RankedDraft(**{**{f.name: getattr(ranked, f.name) for f in fields(ranked)}, **changes})
