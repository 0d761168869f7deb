"""Train/validation/test splits that keep every conversation in one split.

Conversations are shuffled with a seed and dealt out so each split's share of examples
comes as close to its fraction as whole conversations allow; every split with a
non-zero fraction gets at least one conversation when there are enough of them.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from dataclasses import dataclass
from typing import Sequence

from therapist_app.core.dialogue_format import Example
from trainer.data.dedup import exchange_key

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class SplitFractions:
    train: float = 0.8
    validation: float = 0.1
    test: float = 0.1

    def __post_init__(self) -> None:
        values = (self.train, self.validation, self.test)
        if any(v < 0 for v in values) or abs(sum(values) - 1.0) > 1e-6:
            raise ValueError(f"split fractions must be >= 0 and sum to 1, not {values}")
        if self.train == 0:
            raise ValueError("the train fraction must be above 0")


def conversation_key(example: Example) -> str:
    """The conversation an example belongs to; a lone example is its own conversation."""
    return example.conversation_id or example.id or exchange_key(example)


def split_examples(
    examples: Sequence[Example], fractions: SplitFractions = SplitFractions(), seed: int = 0
) -> dict[str, list[Example]]:
    groups: OrderedDict[str, list[Example]] = OrderedDict()
    for example in examples:
        groups.setdefault(conversation_key(example), []).append(example)
    keys = sorted(groups)
    random.Random(seed).shuffle(keys)

    wanted = dict(zip(SPLITS, (fractions.train, fractions.validation, fractions.test)))
    result: dict[str, list[Example]] = {name: [] for name in SPLITS}
    # Seed the smaller splits with one conversation each first, so a small corpus still
    # gets a validation and a test split; then deal out the rest to the split furthest
    # below its share.
    if len(keys) >= sum(1 for v in wanted.values() if v > 0):
        for name in ("validation", "test"):
            if wanted[name] > 0:
                result[name].extend(groups[keys.pop()])
    total = len(examples)
    for key in keys:
        name = min(
            (n for n in SPLITS if wanted[n] > 0),
            key=lambda n: len(result[n]) / total - wanted[n],
        )
        result[name].extend(groups[key])
    return result
