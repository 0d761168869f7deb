"""A curriculum over scenario groups by learning potential (after PAPRIKA).

A scenario whose sampled trajectories all score alike teaches DPO nothing (no clear
better and worse); one whose scores spread widely does. Each group's learning potential
is the mean variance of its trajectory scores so far, and groups are picked by an upper
confidence bound on it, so rarely tried groups still get tried.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from statistics import pvariance
from typing import Sequence


@dataclass
class Curriculum:
    """UCB over score variance: `select(k)` picks groups, `record(group, scores)` updates.

    >>> curriculum = Curriculum(["a", "b"], exploration=0.0)
    >>> sorted(curriculum.select(2))  # untried groups come first
    ['a', 'b']
    >>> curriculum.record("a", [0.1, 0.1, 0.1]); curriculum.record("b", [0.0, 1.0])
    >>> curriculum.select(1)  # b's scores vary: more to learn there
    ['b']
    """

    groups: Sequence[str]
    exploration: float = 1.0
    seed: int = 0
    _variances: dict[str, list[float]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not self.groups:
            raise ValueError("a curriculum needs at least one scenario group")
        if self.exploration < 0:
            raise ValueError(f"exploration must be 0 or more, not {self.exploration}")
        self.groups = list(dict.fromkeys(self.groups))
        self._rng = random.Random(self.seed)

    def record(self, group: str, scores: Sequence[float]) -> None:
        if group not in self.groups:
            raise ValueError(f"unknown scenario group {group!r}")
        if len(scores) < 2:
            raise ValueError("learning potential needs at least two trajectory scores")
        self._variances.setdefault(group, []).append(pvariance(scores))

    def potential(self, group: str) -> float:
        """Mean variance plus the exploration bonus; infinite for an untried group."""
        tried = self._variances.get(group)
        if not tried:
            return math.inf
        total = sum(len(v) for v in self._variances.values())
        return sum(tried) / len(tried) + self.exploration * math.sqrt(2 * math.log(max(total, 1)) / len(tried))

    def select(self, k: int) -> list[str]:
        if not 1 <= k <= len(self.groups):
            raise ValueError(f"k must be between 1 and {len(self.groups)}")
        order = list(self.groups)
        self._rng.shuffle(order)  # breaks ties (e.g. among untried groups) fairly
        return sorted(order, key=self.potential, reverse=True)[:k]
