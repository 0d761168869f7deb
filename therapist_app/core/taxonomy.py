"""The emotion taxonomy and the counselling strategies, loaded once from `assets/`."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache

from therapist_app.core.assets import asset_path


@dataclass(frozen=True)
class Strategy:
    id: str
    name: str
    directive: str
    esconv: str


@dataclass(frozen=True)
class Emotion:
    id: str
    name: str
    description: str
    strategies: tuple[str, ...]


@cache
def strategies() -> dict[str, Strategy]:
    with asset_path("strategies.toml").open("rb") as f:
        rows = tomllib.load(f)["strategy"]
    return {row["id"]: Strategy(**row) for row in rows}


@cache
def emotions() -> dict[str, Emotion]:
    with asset_path("emotions.toml").open("rb") as f:
        rows = tomllib.load(f)["emotion"]
    table = {
        row["id"]: Emotion(
            id=row["id"],
            name=row["name"],
            description=row["description"],
            strategies=tuple(row["strategies"]),
        )
        for row in rows
    }
    known = strategies()
    for emotion in table.values():
        unknown = [s for s in emotion.strategies if s not in known]
        if unknown:
            raise ValueError(f"emotion {emotion.id!r} lists unknown strategies {unknown}")
    return table


def strategy_from_name(name: str) -> str:
    """Map a strategy id, display name or ESConv label (any case) to its id.

    >>> strategy_from_name("Reflection of feelings")
    'reflection'
    >>> strategy_from_name("Others")
    'other'
    """
    key = name.strip().casefold()
    for strategy in strategies().values():
        if key in (strategy.id, strategy.name.casefold(), strategy.esconv.casefold()):
            return strategy.id
    raise ValueError(f"unknown strategy {name!r}; expected one of {', '.join(strategies())}")


def check_emotion(label: str) -> str:
    if label not in emotions():
        raise ValueError(f"unknown emotion {label!r}; expected one of {', '.join(emotions())}")
    return label


def pick_strategies(emotion: str | None, n: int) -> list[str]:
    """N distinct strategies for a reply to a client feeling `emotion`, best first.

    >>> pick_strategies("grief", 3)
    ['reflection', 'affirmation', 'question']
    """
    if n < 1:
        raise ValueError("n must be at least 1")
    preferred = list(emotions()[emotion].strategies) if emotion else []
    ordered = preferred + [s for s in strategies() if s not in preferred and s != "other"]
    ordered.append("other")
    if n > len(ordered):
        raise ValueError(f"at most {len(ordered)} distinct strategies exist; asked for {n}")
    return ordered[:n]


EMOTION_SOURCES = ("esconv", "empathetic_dialogues", "goemotions")


@cache
def emotion_mapping(source: str) -> dict[str, str]:
    """A public corpus's emotion labels (lower-cased) -> our emotion ids.

    >>> emotion_mapping("goemotions")["remorse"]
    'guilt'
    """
    if source not in EMOTION_SOURCES:
        raise ValueError(f"unknown emotion source {source!r}; expected one of {', '.join(EMOTION_SOURCES)}")
    with asset_path("emotion_mappings.toml").open("rb") as f:
        table = tomllib.load(f)[source]
    unknown = sorted({target for target in table.values() if target not in emotions()})
    if unknown:
        raise ValueError(f"emotion_mappings.toml maps {source} labels to unknown ids {unknown}")
    return dict(table)


def map_emotion(source: str, label: str) -> str:
    """Our id for one source label, any case.

    >>> map_emotion("esconv", "Nervousness")
    'stress'
    """
    mapping = emotion_mapping(source)
    key = label.strip().casefold()
    if key not in mapping:
        raise ValueError(f"{source} label {label!r} has no mapping; known: {', '.join(sorted(mapping))}")
    return mapping[key]


def mapping_targets(source: str) -> list[str]:
    """Our ids that a source's labels can map to, sorted.

    >>> mapping_targets("esconv")[:3]
    ['anger', 'anxiety', 'depression']
    """
    return sorted(set(emotion_mapping(source).values()))
