"""The reward pack: small reward functions with TRL's signature, a registry, and weights.

Every reward is `fn(completions, **kwargs) -> list[float | None]`; the keyword
arguments are the dataset's columns (`client_words`, `reference`, `emotion`,
`strategy`, optionally `risk`), which TRL passes to reward functions. None marks a row
the reward cannot score (TRL skips it). Parametrised rewards come from factories that
validate their arguments and return picklable callables.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

from trainer.rewards.emotion import EmotionAlignment
from trainer.rewards.length import BilateralLength
from trainer.rewards.lexical import format_compliance, reference_agreement, repetition_penalty
from trainer.rewards.relevance import ContextualRelevance
from trainer.rewards.resources import RewardUnavailable
from trainer.rewards.safety import Safety
from trainer.rewards.strategy import strategy_adherence

RewardFn = Callable[..., list]


def _plain(fn: RewardFn) -> Callable[..., RewardFn]:
    def factory() -> RewardFn:
        return fn

    return factory


def _bilateral(
    quality: str = "reference_agreement", cache_batches: int = 4, min_departure: float = 0.0, **quality_options: Any
) -> BilateralLength:
    if quality == "bilateral_length" or quality not in REGISTRY:
        raise ValueError(f"bilateral_length's quality must be another reward, not {quality!r}")
    return BilateralLength(REGISTRY[quality](**quality_options), cache_batches, min_departure)


REGISTRY: dict[str, Callable[..., RewardFn]] = {
    "emotion_alignment": EmotionAlignment,
    "strategy_adherence": _plain(strategy_adherence),
    "contextual_relevance": ContextualRelevance,
    "reference_agreement": _plain(reference_agreement),
    "safety": Safety,
    "format_compliance": _plain(format_compliance),
    "bilateral_length": _bilateral,
    "repetition_penalty": _plain(repetition_penalty),
}
# The range each reward returns, for turning scores into a 0..1 confidence.
RANGES: dict[str, tuple[float, float]] = {
    "safety": (-1.0, 1.0),
    "repetition_penalty": (-1.0, 0.0),
}


def make_reward(name: str, **options: Any) -> RewardFn:
    """One reward by registry name; options go to its factory (checked there).

    >>> make_reward("format_compliance")(["That sounds hard."])
    [1.0]
    >>> make_reward("fluency")
    Traceback (most recent call last):
    ...
    ValueError: unknown reward 'fluency'; known: emotion_alignment, strategy_adherence, contextual_relevance, reference_agreement, safety, format_compliance, bilateral_length, repetition_penalty
    """
    if name not in REGISTRY:
        raise ValueError(f"unknown reward {name!r}; known: {', '.join(REGISTRY)}")
    try:
        return REGISTRY[name](**options)
    except TypeError as wrong:
        raise ValueError(f"reward {name!r}: bad options {sorted(options)} ({wrong})") from None


@dataclass(frozen=True)
class RewardPack:
    """Rewards and their weights, in the order TRL receives them."""

    names: tuple[str, ...]
    funcs: tuple[RewardFn, ...]
    weights: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.names:
            raise ValueError("the reward pack is empty")
        if not len(self.names) == len(self.funcs) == len(self.weights):
            raise ValueError(f"{len(self.names)} rewards but {len(self.weights)} weights")
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"a reward is listed twice: {', '.join(self.names)}")

    def score(self, completions: Sequence, **columns: Any) -> dict[str, list[float | None]]:
        """Every component's scores (None where it does not apply)."""
        return {name: list(fn(completions, **columns)) for name, fn in zip(self.names, self.funcs)}

    def total(self, scores: dict[str, list[float | None]]) -> list[float]:
        """The weighted sum per completion, components that do not apply counting as 0 (as TRL's nansum)."""
        count = len(next(iter(scores.values())))
        return [sum(w * (scores[n][i] or 0.0) for n, w in zip(self.names, self.weights)) for i in range(count)]

    def confidence(self, scores: dict[str, list[float | None]]) -> list[float]:
        """Weighted mean of the components mapped to 0..1 (by RANGES), over those that apply."""
        count = len(next(iter(scores.values())))
        result = []
        for i in range(count):
            total = weight = 0.0
            for name, w in zip(self.names, self.weights):
                value = scores[name][i]
                if value is None or w <= 0:
                    continue
                low, high = RANGES.get(name, (0.0, 1.0))
                total += w * (value - low) / (high - low)
                weight += w
            result.append(total / weight if weight else 0.0)
        return result


def parse_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def build_reward_pack(
    names: str | Sequence[str], weights: str | Sequence[float], options: dict[str, dict[str, Any]] | None = None
) -> RewardPack:
    """A pack from names and weights (lists, or comma-separated strings as in config files).

    >>> pack = build_reward_pack("format_compliance,repetition_penalty", "1,0.5")
    >>> pack.total(pack.score(["Okay. Okay. Okay. Okay. Okay."]))  # cut to 3 sentences: 0.5; half the 4-grams repeat
    [0.25]
    >>> build_reward_pack("format_compliance", "1,2")
    Traceback (most recent call last):
    ...
    ValueError: 1 rewards but 2 weights
    """
    names = parse_list(names) if isinstance(names, str) else list(names)
    try:
        weights = [float(w) for w in (parse_list(weights) if isinstance(weights, str) else weights)]
    except ValueError:
        raise ValueError(f"reward weights must be numbers, not {weights!r}") from None
    if len(names) != len(weights):
        raise ValueError(f"{len(names)} rewards but {len(weights)} weights")
    options = options or {}
    unknown = sorted(set(options) - set(names))
    if unknown:
        raise ValueError(f"options given for rewards not in the pack: {', '.join(unknown)}")
    funcs = tuple(make_reward(n, **options.get(n, {})) for n in names)
    return RewardPack(tuple(names), funcs, tuple(weights))


__all__ = ["REGISTRY", "RANGES", "RewardPack", "RewardUnavailable", "build_reward_pack", "make_reward"]
