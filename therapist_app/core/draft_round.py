"""One suggestion round as the therapist sees it: more candidates than slots, the current
leaders streaming into the slots, and the best safe, distinct drafts once it ends.

The engine decodes `candidates` drafts in one batch (the shown strategies, each decoded
more than once: the most likely reply, then samples with different seeds; sequences of
one strategy share their prompt). The
first shown slots stream the first candidates, so the first token waits for nothing
but the engine. A candidate that breaks a safety rule mid-stream is stopped and, if it
was on screen, replaced by the best live candidate. When the round ends, every draft is
ranked (`best_of_n`) and the shown order is settled. On a flagged crisis turn the
authored crisis responses join the pool and, being complete, lead at once; a finished
draft whose only fault is that it ignores the risk joins it again with a safety check
question after it (source 'checked').
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Iterator, Sequence

from therapist_app.core import dialogue_format as fmt
from therapist_app.core.best_of_n import Draft, DraftScorer, Ranking
from therapist_app.core.crisis_responses import responses_for, with_check
from therapist_app.core.engine import RoundStats, SuggestionEngine, TokenEvent
from therapist_app.core.scoring.safety import asks_about_risk, check_reply
from therapist_app.core.taxonomy import pick_strategies

SHOWN = 3
# Rules a half-written draft can already break for good; whether it ignores a risk can
# only be judged once it is finished.
_FINAL_ONLY = frozenset({"ignores_risk"})
_SENTENCE_END = re.compile(r"[.!?]")


@dataclass(frozen=True)
class LeadersChanged:
    """The candidates now shown, slot by slot (indices into `DraftRound.drafts`)."""

    leaders: tuple[int, ...]


@dataclass(frozen=True)
class RoundResult:
    ranking: Ranking
    drafts: tuple[Draft, ...]
    stats: RoundStats
    cancelled: bool


def plan_candidates(emotion: str | None, candidates: int, shown: int = SHOWN, strategy: str | None = None) -> list[str]:
    """Each candidate's strategy: the shown strategies in turn, so each is the best of
    several samples; one strategy throughout when the therapist asked for it.

    >>> plan_candidates("grief", 6)
    ['reflection', 'affirmation', 'question', 'reflection', 'affirmation', 'question']
    >>> plan_candidates(None, 4, strategy="question")
    ['question', 'question', 'question', 'question']
    """
    if candidates < 1 or shown < 1:
        raise ValueError("a round needs at least one candidate and one shown draft")
    cycle = [strategy] if strategy else pick_strategies(emotion, min(shown, candidates))
    return [cycle[i % len(cycle)] for i in range(candidates)]


class DraftRound:
    """Iterate for `TokenEvent`s (by candidate index) and `LeadersChanged`; `result`
    holds the ranking once iteration ends. `cancel()` works from any thread.

    `candidates` defaults to the engine's configuration; `seed` to its configured seed.
    A regenerated round passes another seed and `sample_all`, so it is not a repeat."""

    def __init__(
        self,
        engine: SuggestionEngine,
        request: fmt.SuggestionRequest,
        scorer: DraftScorer,
        risk: Sequence[str] = (),
        candidates: int | None = None,
        shown: int = SHOWN,
        seed: int | None = None,
        sample_all: bool = False,
    ) -> None:
        self.request = request
        self.risk = tuple(risk)
        self.shown = shown
        self._scorer = scorer
        emotion = request.emotion.label if request.emotion else None
        planned = plan_candidates(emotion, candidates or engine.config.candidates, shown, request.strategy)
        # The first draft of each strategy is the model's most likely reply, the others
        # samples: the ranking can only improve on greedy decoding. A regenerated round
        # (`sample_all`) samples every draft, so it brings new ones.
        greedy = () if sample_all else [planned.index(s) for s in dict.fromkeys(planned)]
        self._greedy = frozenset(greedy)
        self._stream = engine.stream(request, len(planned), planned, seed, greedy)
        # A strategy the therapist asked for narrows the authored responses, but never to
        # none that asks about the risk: on a flagged turn that question is always offered.
        authored = [
            r
            for r in responses_for(self.risk)
            if not request.strategy or r.strategy == request.strategy or asks_about_risk(r.text, self.risk)
        ]
        self.drafts: list[Draft] = [Draft(i, s, "") for i, s in enumerate(planned)]
        self.drafts += [Draft(len(planned) + i, r.strategy, r.text, r.text, "authored") for i, r in enumerate(authored)]
        self._texts = [""] * len(planned)
        self._dead: set[int] = set()
        self.leaders = self._initial_leaders(len(planned))
        self.result: RoundResult | None = None

    @property
    def strategies(self) -> list[str]:
        """The strategy of each draft, candidates then authored responses."""
        return [d.strategy for d in self.drafts]

    def cancel(self) -> None:
        self._stream.cancel()

    @property
    def cancelled(self) -> bool:
        return self._stream.cancelled

    def _initial_leaders(self, generated: int) -> tuple[int, ...]:
        asking = [d.index for d in self.drafts if d.source == "authored" and asks_about_risk(d.text, self.risk)]
        first = asking[:1]
        return tuple(first + [i for i in range(generated) if i not in first][: self.shown - len(first)])

    def __iter__(self) -> Iterator[TokenEvent | LeadersChanged]:
        if self.result is not None:
            raise RuntimeError("a draft round can be iterated only once")
        emotion = self.request.emotion.label if self.request.emotion else None
        for event in self._stream:
            self._texts[event.index] += event.text
            yield event
            if _SENTENCE_END.search(event.text) and event.index not in self._dead:
                partial = fmt.parse_reply(self._texts[event.index]).text
                broken = set(check_reply(partial, self.risk, emotion).reasons) - _FINAL_ONLY
                if broken:
                    self._dead.add(event.index)
                    self._stream.stop(event.index)
                    if event.index in self.leaders:
                        self.leaders = self._replace(event.index)
                        yield LeadersChanged(self.leaders)
        engine_result = self._stream.result
        assert engine_result is not None
        for suggestion in engine_result.suggestions:
            self.drafts[suggestion.index] = Draft(
                suggestion.index,
                suggestion.strategy,
                suggestion.text,
                suggestion.raw_text,
                "model",
                suggestion.finish_reason,
                suggestion.likelihood,
                suggestion.index in self._greedy,
            )
        self.drafts += self._checked(emotion)
        ranking = self._scorer.rank(
            self.drafts, self.request, self.risk, self.shown, distinct_strategies=self.request.strategy is None
        )
        self.result = RoundResult(ranking, tuple(self.drafts), engine_result.stats, engine_result.cancelled)
        self.leaders = tuple(r.draft.index for r in ranking.shown)
        return self.result

    def _checked(self, emotion: str | None) -> list[Draft]:
        """On a flagged turn, each finished model draft that breaks no rule but ignoring
        the risk, with a check question after it: a reply to the client's own words that
        still asks (the authored responses alone are the same whatever the client said)."""
        if not self.risk:
            return []
        answering = [
            d
            for d in self.drafts
            if d.source == "model" and d.text and check_reply(d.text, self.risk, emotion).reasons == ("ignores_risk",)
        ]
        return [
            replace(
                d,
                index=len(self.drafts) + turn,
                text=with_check(d.text, self.risk, turn),
                raw_text=with_check(d.raw_text or d.text, self.risk, turn),
                source="checked",
            )
            for turn, d in enumerate(answering)
        ]

    def _replace(self, gone: int) -> tuple[int, ...]:
        """The leaders with `gone` swapped for a live candidate not on screen: one of the
        same strategy if there is one, else the furthest along."""
        strategy = self.drafts[gone].strategy
        spare = [i for i in range(len(self._texts)) if i not in self._dead and i not in self.leaders]
        spare.sort(key=lambda i: (self.drafts[i].strategy != strategy, -len(self._texts[i])))
        leaders = list(self.leaders)
        if spare:
            leaders[leaders.index(gone)] = spare[0]
        else:
            leaders.remove(gone)
        return tuple(leaders)

    def complete(self) -> RoundResult:
        for _ in self:
            pass
        assert self.result is not None
        return self.result

    def text(self, index: int) -> str:
        """A draft's text so far (streamed raw text for candidates, the whole text for
        authored responses and checked drafts)."""
        draft = self.drafts[index]
        return self._texts[index] if draft.source == "model" else draft.text
