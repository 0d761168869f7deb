"""The bilateral length term (after Psy-Interpreter): a bonus for a reply whose length
departs from the running mean while its quality beats the running mean.

Running means come from a small cache of the last few batches, so the term rewards
length changes only when they come with better replies, in either direction (a longer
reply that says more, or a shorter one that says it better).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Callable

from trainer.rewards.text import replies, words


@dataclass
class LengthCache:
    """Word lengths and quality scores of the last `batches` batches.

    >>> cache = LengthCache(batches=2)
    >>> cache.add([10, 20], [0.5, 0.7]); cache.add([30], [0.9]); cache.add([40], [0.1])
    >>> cache.means()
    (35.0, 0.5)
    """

    batches: int = 4
    _rows: deque = field(default_factory=deque, repr=False)

    def __post_init__(self) -> None:
        if self.batches < 1:
            raise ValueError(f"the length cache needs at least one batch, not {self.batches}")
        self._rows = deque(self._rows, maxlen=self.batches)

    def add(self, lengths: list[int], qualities: list[float]) -> None:
        self._rows.append((list(lengths), list(qualities)))

    def means(self) -> tuple[float, float] | None:
        lengths = [x for batch, _ in self._rows for x in batch]
        qualities = [q for _, batch in self._rows for q in batch]
        if not lengths:
            return None
        return sum(lengths) / len(lengths), sum(qualities) / len(qualities)


class BilateralLength:
    """`bilateral_length(completions, **columns)`: in 0..1, `min(1, |len - mean_len| / mean_len)`
    when the reply's quality is above the running mean quality, else 0. The running means
    are those of the cached earlier batches (the current batch on the first call); the
    current batch is cached after scoring. `quality` is another reward function.

    >>> from trainer.rewards.lexical import reference_agreement
    >>> reward = BilateralLength(reference_agreement, cache_batches=2)
    >>> ref = ["it sounds like the waiting is hard"] * 2
    >>> reward(["It sounds like the waiting is hard.", "Okay."], reference=ref)  # means of this batch: 4 words, 0.5
    [0.75, 0.0]
    >>> [round(x, 2) for x in reward(["The waiting is hard.", "Okay then, so, fine, sure, yes."], reference=ref)]
    [0.0, 0.0]
    >>> [round(x, 2) for x in reward(["It sounds like waiting is hard.", "Hm."], reference=ref)]  # cached: 4.5 words
    [0.33, 0.0]
    """

    __name__ = "bilateral_length"

    def __init__(self, quality: Callable, cache_batches: int = 4, min_departure: float = 0.0) -> None:
        if not callable(quality):
            raise ValueError("quality must be a reward function")
        if min_departure < 0:
            raise ValueError(f"min_departure must be 0 or more, not {min_departure}")
        self.quality = quality
        self.cache = LengthCache(cache_batches)
        self.min_departure = min_departure

    def __call__(self, completions, **kwargs) -> list[float]:
        lengths = [len(words(r)) for r in replies(completions)]
        qualities = [0.0 if q is None else q for q in self.quality(completions, **kwargs)]
        means = self.cache.means() or (sum(lengths) / len(lengths), sum(qualities) / len(qualities))
        self.cache.add(lengths, qualities)
        mean_length, mean_quality = means
        scores = []
        for length, quality in zip(lengths, qualities):
            departure = abs(length - mean_length) / max(mean_length, 1.0)
            good = quality > mean_quality and departure > self.min_departure
            scores.append(min(1.0, departure) if good else 0.0)
        return scores
