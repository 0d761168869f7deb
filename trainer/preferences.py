"""Preference pairs for DPO: from the therapist's decisions in the app, and from
simulated sessions scored by the reward pack.

App decisions: within one suggestion round (same conversation, context and client
words) the text that answered the client (an accepted suggestion, the edited final text,
or the reply the therapist typed themselves, `own`) is preferred over every suggestion
they turned down (rejected, or left `not_chosen` when another text answered) and over the
original of an edit that changed it.
Identical texts never make a pair; a round with nothing kept or nothing turned down
gives none (counted in the stats, with how many rows had each decision).

A pair's prompt asks for the strategy of the row whose text was kept (the draft's, for
an accepted or edited draft; none for the therapist's own words, which carry none):
every row of a round shares the client's words and context, but each draft was decoded
under its own strategy's directive. Taking one row's strategy for the whole round set
most kept texts under another strategy's directive (121 of 150 in bench/loop_gain's
week), which teaches the model that the directive does not matter. An edit can also change the
move (a reflection edited into a question): the pair keeps the draft's strategy only
when the kept text still carries it out (the reward pack's adherence score of at least
`FOLLOWS`), and otherwise asks for none. In bench/loop_gain's week, 37 of the 80 edits
whose author's strategy is known changed it; every one of them scores under 0.7 on the
draft's strategy, while 23 of the 43 that kept it score 0.8 or more.
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


def pair_request(row: Example, kept: str) -> SuggestionRequest:
    """The prompt a kept text is trained under: its row's, asking for the row's strategy
    only when the text carries it out.

    >>> row = Example(client_words="I can't sleep.", reply="", strategy="question", decision="edited")
    >>> pair_request(row, "What keeps you awake?").strategy, pair_request(row, "That sounds exhausting.").strategy
    ('question', None)
    """
    request = row.request()
    if request.strategy and adherence(kept, request.strategy, row.client_words, row.emotion) < FOLLOWS:
        return request.with_strategy(None)
    return request


def pairs_from_decisions(examples: Iterable[Example]) -> tuple[list[PreferencePair], PairStats]:
    rounds: dict[tuple, list[Example]] = {}
    for example in examples:
        if example.decision is None:
            raise ValueError(f"example {example.id!r} is not an app decision (no `decision`)")
        rounds.setdefault(_round_key(example), []).append(example)
    pairs: list[PreferencePair] = []
    no_kept = no_down = identical = 0
    for key, rows in rounds.items():
        kept = [(row, text) for row in rows if (text := _kept(row))]
        turned_down = [text for text in map(_turned_down, rows) if text]
        no_kept += not kept
        no_down += not turned_down
        seen = set()
        for (row, chosen), rejected in itertools.product(kept, turned_down):
            if _same(chosen, rejected):
                identical += 1
                continue
            if (chosen, rejected) in seen:
                continue
            seen.add((chosen, rejected))
            pairs.append(PreferencePair(pair_request(row, chosen), chosen, rejected, "app", rows[0].id or key[0]))
    decisions = Counter(row.decision for rows in rounds.values() for row in rows)
    return pairs, PairStats(len(rounds), len(pairs), no_kept, no_down, identical, dict(sorted(decisions.items())))


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
