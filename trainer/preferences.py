"""Preference pairs for DPO: from the therapist's decisions in the app, and from
simulated sessions scored by the reward pack.

App decisions: within one suggestion round (same conversation, context and client
words) the text the therapist kept (an accepted suggestion, or the edited final text)
is preferred over every suggestion they rejected and over the original of an edit
that changed it.
Identical texts never make a pair; a round with nothing kept or nothing turned down
gives none (counted in the stats).
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from therapist_app.core.dialogue_format import Example, SuggestionRequest, clean_text, render_prompt, training_example


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


def _round_key(example: Example) -> tuple:
    context = tuple((t.speaker, clean_text(t.text)) for t in example.context)
    return (example.conversation_id or example.id or "", context, clean_text(example.client_words))


def _same(a: str, b: str) -> bool:
    return " ".join(clean_text(a).casefold().split()) == " ".join(clean_text(b).casefold().split())


def pairs_from_decisions(examples: Iterable[Example]) -> tuple[list[PreferencePair], PairStats]:
    rounds: dict[tuple, list[Example]] = {}
    for example in examples:
        if example.decision is None:
            raise ValueError(f"example {example.id!r} is not an app decision (no `decision`)")
        rounds.setdefault(_round_key(example), []).append(example)
    pairs: list[PreferencePair] = []
    no_kept = no_down = identical = 0
    for key, rows in rounds.items():
        kept = [r.reply if r.decision == "edited" else (r.reply or r.suggestion) for r in rows if r.decision in ("accepted", "edited")]
        # An "edit" that left the text as it was is an acceptance, not a turned-down original.
        turned_down = [r.suggestion for r in rows if r.suggestion and (
            r.decision == "rejected" or (r.decision == "edited" and not _same(r.reply or "", r.suggestion)))]
        no_kept += not kept
        no_down += not turned_down
        seen = set()
        for chosen, rejected in itertools.product(kept, turned_down):
            if _same(chosen, rejected):
                identical += 1
                continue
            if (chosen, rejected) in seen:
                continue
            seen.add((chosen, rejected))
            pairs.append(PreferencePair(rows[0].request(), chosen, rejected, "app", rows[0].id or key[0]))
    return pairs, PairStats(len(rounds), len(pairs), no_kept, no_down, identical)


def pairs_from_app_export(path: str | Path) -> tuple[list[PreferencePair], PairStats]:
    """Pairs from a de-identified app export (validated by the app-export importer)."""
    from trainer.data.app_export import import_app_export

    return pairs_from_decisions(import_app_export(path).examples)


def write_pairs(pairs: Sequence[PreferencePair], path: str | Path) -> int:
    """The pairs as JSONL rows of prompt/chosen/rejected (training data; keep it with the data)."""
    with Path(path).open("w", encoding="utf-8") as out:
        for pair in pairs:
            out.write(json.dumps({**pair.to_dpo_row(), "source": pair.source, "group": pair.group}, ensure_ascii=False) + "\n")
    return len(pairs)
