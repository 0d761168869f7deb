"""Reward settings shared by GRPO, DPO's simulated sessions, self-training and eval.

A frozen dataclass in the style of `trainer.config`: the GRPO/DPO/eval/self-training
settings inherit it, so the reward list, its weights and the reward options are TOML
keys and flags.
"""

from __future__ import annotations

from dataclasses import dataclass

from trainer.config import ConfigError, Settings, setting
from trainer.rewards import REGISTRY, RewardPack, build_reward_pack, parse_list

DEFAULT_REWARDS = ",".join(REGISTRY)
DEFAULT_WEIGHTS = "1.0,1.0,0.5,1.0,2.0,0.5,0.25,1.0"


@dataclass(frozen=True)
class RewardSettings(Settings):
    rewards: str = setting(DEFAULT_REWARDS, f"comma-separated reward names, from: {DEFAULT_REWARDS}")
    reward_weights: str = setting(DEFAULT_WEIGHTS, "comma-separated weights, one per reward, same order")
    emotion_classifier: str = setting(
        "auto",
        "emotion alignment's classifier: auto (the app's, if installed) or none (authored check only)",
        ("auto", "none"),
    )
    emotion_classifier_weight: float = setting(
        0.5, "share of emotion alignment given to the classifier (the rest: the authored check)", at_least=0, at_most=1
    )
    relevance_client_weight: float = setting(
        0.5,
        "share of relevance given to similarity with the client's words (the rest: the reference reply)",
        at_least=0,
        at_most=1,
    )
    length_quality: str = setting(
        "reference_agreement", "the reward whose running mean the bilateral length term must beat"
    )
    length_cache_batches: int = setting(
        4, "recent batches whose mean length and quality the bilateral term compares with", at_least=1
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        names, weights = parse_list(self.rewards), parse_list(self.reward_weights)
        unknown = [n for n in names if n not in REGISTRY]
        if unknown:
            raise ConfigError(f"unknown reward(s) {', '.join(unknown)}; known: {DEFAULT_REWARDS}")
        if len(names) != len(weights):
            raise ConfigError(f"rewards lists {len(names)} names but reward_weights {len(weights)} weights")
        try:
            [float(w) for w in weights]
        except ValueError:
            raise ConfigError(f"reward_weights must be numbers, not {self.reward_weights!r}") from None
        if self.length_quality not in REGISTRY or self.length_quality == "bilateral_length":
            raise ConfigError(f"length_quality must be another reward, not {self.length_quality!r}")


def reward_options(settings: RewardSettings) -> dict[str, dict]:
    """Factory options for the rewards these settings list."""
    classifier = "auto" if settings.emotion_classifier == "auto" else None
    options = {
        "emotion_alignment": {"classifier": classifier, "classifier_weight": settings.emotion_classifier_weight},
        "contextual_relevance": {"client_weight": settings.relevance_client_weight},
        "bilateral_length": {"quality": settings.length_quality, "cache_batches": settings.length_cache_batches},
    }
    if settings.length_quality == "emotion_alignment":
        options["bilateral_length"].update(options["emotion_alignment"])
    if settings.length_quality == "contextual_relevance":
        options["bilateral_length"].update(options["contextual_relevance"])
    names = parse_list(settings.rewards)
    return {k: v for k, v in options.items() if k in names}


def reward_pack(settings: RewardSettings) -> RewardPack:
    return build_reward_pack(settings.rewards, settings.reward_weights, reward_options(settings))
