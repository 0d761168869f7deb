"""Preference pairs for DPO: from the therapist's decisions in the app, and from
simulated sessions scored by the reward pack.

App decisions: within one suggestion round (same conversation, context and client
words) the text that answered the client (an accepted suggestion, the edited final text,
or the reply the therapist typed themselves, `own`) is preferred over each suggestion
they turned down (rejected, or left `not_chosen` when another text answered) and over the
original of an edit that changed it, when it makes the same move as that suggestion
(below).
Identical texts never make a pair; a round with nothing kept or nothing turned down
gives none (counted in the stats, with how many rows had each decision).

A pair's prompt is the one the turned-down draft was decoded under: its strategy's
directive, with the round's client words and context. Each draft of a round was decoded
under its own strategy, so a kept text is preferred over a draft only when it carries out
that draft's strategy (the reward pack's adherence score of at least `FOLLOWS`): both
texts then answer the same instruction, and the pair says which answer was better. A
kept text that does another move makes no pair with that draft (counted as
`off_directive`). Pairing it anyway taught the model to push down replies that follow
their directive: in bench/loop_gain's week, DPO on such pairs cut the held-out strategy
adherence from 0.684 to 0.627 under the kept text's directive, and to 0.649 with the
pairs whose kept text followed no drafted strategy asking for none (docs/rl.md).
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from therapist_app.core.dialogue_format import (
    UNUSED,
    Example,
    SuggestionRequest,
    clean_text,
    render_prompt,
    training_example,
)
from therapist_app.core.scoring.quality import adherence

# The adherence score at which a kept text counts as carrying out its draft's strategy.
FOLLOWS = 0.7


@dataclass(frozen=True)
class PreferencePair:
    request: SuggestionRequest
    chosen: str
    rejected: str
    source: str  # "app" or "simulated"
    group: str  # the round or scenario the pair came from
    margin: float | None = None  # score gap (simulated pairs)

    def to_dpo_row(self) -> dict:
        """TRL's standard preference row; the replies end with the end-of-turn marker
        exactly as SFT writes them, so DPOTrainer adds no second one."""
        return {
            "prompt": render_prompt(self.request),
            "chosen": training_example(self.request, self.chosen)["completion"].rstrip("\n"),
            "rejected": training_example(self.request, self.rejected)["completion"].rstrip("\n"),
        }


@dataclass(frozen=True)
class PairStats:
    rounds: int
    pairs: int
    rounds_without_kept: int
    rounds_without_turned_down: int
    identical_skipped: int
    off_directive: int
    """Kept and turned-down texts not paired: the kept text does not carry out the
    strategy the other was decoded under."""
    decisions: dict[str, int] = field(default_factory=dict)
    """Rows per decision (accepted, edited, rejected, not_chosen, own)."""


def _round_key(example: Example) -> tuple:
    context = tuple((t.speaker, clean_text(t.text)) for t in example.context)
    return (example.conversation_id or example.id or "", context, clean_text(example.client_words))


def _same(a: str, b: str) -> bool:
    return " ".join(clean_text(a).casefold().split()) == " ".join(clean_text(b).casefold().split())


def _kept(row: Example) -> str | None:
    """The text that answered the client in this row, if any."""
    if row.decision == "accepted":
        return row.reply or row.suggestion
    return row.reply if row.decision in ("edited", "own") else None


def _turned_down(row: Example) -> str | None:
    """The draft the therapist did not use in this row, if any. An "edit" that left the
    text as it was is an acceptance, not a turned-down original."""
    if row.decision in UNUSED or (row.decision == "edited" and not _same(row.reply or "", row.suggestion or "")):
        return row.suggestion or None
    return None


def follows(text: str, draft: Example) -> bool:
    """Whether `text` carries out the strategy `draft` was decoded under (any text does,
    for a draft without one).

    >>> draft = Example("I can't sleep.", None, suggestion="Why?", strategy="question", decision="rejected")
    >>> follows("What keeps you awake?", draft), follows("That sounds exhausting.", draft)
    (True, False)
    """
    return not draft.strategy or adherence(text, draft.strategy, draft.client_words, draft.emotion) >= FOLLOWS


def pairs_from_decisions(examples: Iterable[Example]) -> tuple[list[PreferencePair], PairStats]:
    rounds: dict[tuple, list[Example]] = {}
    for example in examples:
        if example.decision is None:
            raise ValueError(f"example {example.id!r} is not an app decision (no `decision`)")
        rounds.setdefault(_round_key(example), []).append(example)
    pairs: list[PreferencePair] = []
    no_kept = no_down = identical = off_directive = 0
    for key, rows in rounds.items():
        kept = [text for text in map(_kept, rows) if text]
        turned_down = [(row, text) for row in rows if (text := _turned_down(row))]
        no_kept += not kept
        no_down += not turned_down
        seen = set()
        for chosen, (row, rejected) in itertools.product(kept, turned_down):
            if _same(chosen, rejected):
                identical += 1
            elif not follows(chosen, row):
                off_directive += 1
            elif (chosen, rejected) not in seen:
                seen.add((chosen, rejected))
                pairs.append(PreferencePair(row.request(), chosen, rejected, "app", rows[0].id or key[0]))
    decisions = Counter(row.decision for rows in rounds.values() for row in rows)
    stats = PairStats(
        len(rounds), len(pairs), no_kept, no_down, identical, off_directive, dict(sorted(decisions.items()))
    )
    return pairs, stats


def pairs_from_app_export(path: str | Path) -> tuple[list[PreferencePair], PairStats]:
    """Pairs from a de-identified app export (validated by the app-export importer)."""
    from trainer.data.app_export import import_app_export

    return pairs_from_decisions(import_app_export(path).examples)


def write_pairs(pairs: Sequence[PreferencePair], path: str | Path) -> int:
    """The pairs as JSONL rows of prompt/chosen/rejected (training data; keep it with the data)."""
    with Path(path).open("w", encoding="utf-8") as out:
        for pair in pairs:
            out.write(
                json.dumps({**pair.to_dpo_row(), "source": pair.source, "group": pair.group}, ensure_ascii=False) + "\n"
            )
    return len(pairs)
