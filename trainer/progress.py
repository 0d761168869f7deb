"""Progress bars for the long commands (import, eval, simulation, export).

A bar shows on stderr only when stderr is a terminal (tqdm's `disable=None`), so logs,
pipes and tests stay clean, and it clears itself when done. Descriptions name files,
steps and counts, never example text.
"""

from __future__ import annotations

from typing import Iterable, TypeVar

T = TypeVar("T")


def progress(iterable: Iterable[T] | None = None, *, desc: str, total: int | None = None, unit: str = "it"):
    """A tqdm bar over `iterable` (or, without one, to `update()` by hand), off when not on a terminal."""
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, total=total, unit=unit, disable=None, leave=False, dynamic_ncols=True)
