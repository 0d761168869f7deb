"""A fake suggestion engine with the real engine's interface, for fast GUI tests.

Tokens are scripted and arrive with a small delay each, so a test sees them stream
and can cancel mid-round; `cancel()` is checked between tokens like the real one.
Draft i of a round is `replies[i % len(replies)]`: with the default six candidates the
last three repeat the first three, as a small model's drafts often do.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

from therapist_app.core.dialogue_format import EmotionReading, SuggestionRequest, Turn, parse_reply
from therapist_app.core.engine import (
    EngineConfig,
    EngineInfo,
    RoundStats,
    Suggestion,
    SuggestionSet,
    TokenEvent,
)
from therapist_app.core.risk import RiskDetector
from therapist_app.core.taxonomy import pick_strategies, strategies
from therapist_app.ui.analysis import Analysis

DEFAULT_REPLIES = (
    "It sounds like the worry has kept you on edge all week.",
    "What has been the hardest part of it?",
    "You kept going through all of that, which took real strength.",
)


@dataclass
class FakeScript:
    """What the next rounds produce: one reply per suggestion, split into words."""

    replies: tuple[str, ...] = DEFAULT_REPLIES
    token_delay_s: float = 0.004
    fail_with: Exception | None = None
    rounds: list[SuggestionRequest] = field(default_factory=list)
    """Every request the engine received, in order (tests inspect them)."""
    resets: int = 0
    primed: list[tuple[Turn, ...]] = field(default_factory=list)
    """The context of every prime call, in order."""
    drafts: list[str] = field(default_factory=list)
    """The draft (typed words) of every prime call, in order; "" for none."""
    seeds: list[int] = field(default_factory=list)
    """The base seed of every round, in order."""


class FakeStream:
    def __init__(self, engine: "FakeEngine", request: SuggestionRequest, chosen: list[str]) -> None:
        self._engine = engine
        self._request = request
        self._chosen = chosen
        self._cancel = threading.Event()
        self._stopped: set[int] = set()
        self.result: SuggestionSet | None = None

    def cancel(self) -> None:
        self._cancel.set()

    def stop(self, index: int) -> None:
        self._stopped.add(index)

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def __iter__(self) -> Iterator[TokenEvent]:
        script = self._engine.script
        if script.fail_with is not None:
            raise script.fail_with
        started = time.perf_counter()
        pieces = [_pieces(script.replies[i % len(script.replies)]) for i in range(len(self._chosen))]
        texts = [""] * len(self._chosen)
        counts = [0] * len(self._chosen)
        finish = ["stop"] * len(self._chosen)
        step = 0
        while True:
            for i in self._stopped:
                if finish[i] == "stop" and step < len(pieces[i]):
                    finish[i], pieces[i] = "dropped", pieces[i][:step]
            live = [i for i, words in enumerate(pieces) if step < len(words)]
            if not live:
                break
            if self._cancel.is_set():
                for i in live:
                    finish[i] = "cancelled"
                break
            for i in live:
                texts[i] += pieces[i][step]
                counts[i] += 1
                yield TokenEvent(i, self._chosen[i], pieces[i][step])
            step += 1
            time.sleep(script.token_delay_s)
        total = time.perf_counter() - started
        self.result = SuggestionSet(
            tuple(
                Suggestion(i, s, parse_reply(texts[i]).text, texts[i], counts[i], finish[i])
                for i, s in enumerate(self._chosen)
            ),
            RoundStats(
                prompt_tokens=50,
                reused_tokens=0,
                decoded_prompt_tokens=50,
                generated_tokens=sum(counts),
                ttft_s=0.0,
                total_s=total,
                decode_s=total,
                decode_steps=max(counts, default=0),
            ),
            self._cancel.is_set(),
        )


def _pieces(reply: str) -> list[str]:
    words = reply.split(" ")
    return [words[0]] + [" " + w for w in words[1:]]


class FakeEngine:
    """Same surface as `SuggestionEngine` that the GUI uses."""

    def __init__(self, config: EngineConfig, script: FakeScript) -> None:
        self.config = config
        self.script = script
        path = Path(config.model_path) if config.model_path else Path("fake-bundled.gguf")
        self.info = EngineInfo(
            model_path=path,
            model_name="Fake model",
            device="cpu",
            n_gpu_layers=0,
            n_ctx=config.n_ctx,
            n_threads=1,
            template_matches=True,
        )
        self.closed = False

    def plan_strategies(self, request: SuggestionRequest, n: int, chosen: Sequence[str] | None = None) -> list[str]:
        if chosen is not None:
            assert all(s in strategies() for s in chosen)
            return list(chosen)
        if request.strategy is not None:
            return [request.strategy] * n
        return pick_strategies(request.emotion.label if request.emotion else None, n)

    def stream(
        self,
        request: SuggestionRequest,
        n: int = 3,
        strategies: Sequence[str] | None = None,
        seed: int | None = None,
        greedy: Sequence[int] = (),
    ) -> FakeStream:
        self.script.rounds.append(request)
        self.script.seeds.append(self.config.seed if seed is None else seed)
        return FakeStream(self, request, self.plan_strategies(request, n, strategies))

    def prime(self, context: Sequence[Turn], draft: str = "") -> int:
        self.script.primed.append(tuple(context))
        self.script.drafts.append(draft)
        return len(context)

    def reset_session(self) -> None:
        self.script.resets += 1

    def close(self) -> None:
        self.closed = True


class FakeAnalyzer:
    """The real (deterministic) risk detector, with a scripted emotion reading."""

    def __init__(
        self,
        emotion: EmotionReading | None = EmotionReading("anxiety", 0.82),
        runner_up: EmotionReading | None = EmotionReading("sadness", 0.11),
    ) -> None:
        self.emotion = emotion
        self.runner_up = runner_up
        self.detector = RiskDetector()

    def __call__(self, text: str, recent: Sequence[Turn]) -> Analysis:
        return Analysis(self.emotion, self.runner_up, self.detector.assess(text))
