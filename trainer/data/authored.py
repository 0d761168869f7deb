"""The authored corpus: counselling conversations written in independent batches, each
batch by another writer with another brief (assets/corpus/dialogues/<batch>.jsonl).

A conversation line holds its batch, situation, client sketch and turns (client turns
labelled with the client's emotion, therapist turns with their strategy). Every
therapist reply that answers a client turn becomes one `Example`: the turns before it
are its context. Splits are by whole batches, so a held-out batch measures what text by
another writer will see; a random split of one writer's rows overstates it.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path
from typing import Iterable, Sequence

from therapist_app.core.assets import asset_path
from therapist_app.core.dialogue_format import Example, Turn
from therapist_app.core.taxonomy import check_emotion, strategies
from trainer.data.records import DataError, ImportResult, RowCollector, open_text

SOURCE = "authored"


def corpus_folder() -> Path:
    return asset_path("corpus") / "dialogues"


def conversation_examples(record: dict) -> list[Example]:
    """The examples of one conversation line (raises ValueError naming what is wrong).

    >>> examples = conversation_examples({"conversation_id": "x-c01", "batch": "x", "turns": [
    ...     {"speaker": "therapist", "text": "Hello.", "strategy": "other"},
    ...     {"speaker": "client", "text": "Hi. Work is a lot.", "emotion": "stress"},
    ...     {"speaker": "therapist", "text": "What is the most of it?", "strategy": "question"}]})
    >>> [(e.client_words, e.reply, e.strategy, len(e.context), e.extra["batch"]) for e in examples]
    [('Hi. Work is a lot.', 'What is the most of it?', 'question', 1, 'x')]
    """
    conversation, batch = record["conversation_id"], record["batch"]
    if not isinstance(conversation, str) or not isinstance(batch, str) or not batch:
        raise ValueError("conversation_id and batch must be non-empty strings")
    turns = record["turns"]
    if not isinstance(turns, list) or not turns:
        raise ValueError("turns must be a non-empty list")
    examples, context = [], []
    for position, turn in enumerate(turns):
        speaker, text = turn["speaker"], turn["text"]
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"turn {position} has no text")
        if context and context[-1].speaker == speaker:
            raise ValueError(f"turn {position} is a second {speaker} turn in a row")
        if speaker == "client":
            check_emotion(turn["emotion"])
        elif speaker == "therapist":
            if turn["strategy"] not in strategies():
                raise ValueError(f"turn {position} has unknown strategy {turn['strategy']!r}")
            if context and context[-1].speaker == "client":
                client = turns[position - 1]
                examples.append(
                    Example(
                        client_words=client["text"],
                        reply=text,
                        context=tuple(context[:-1]),
                        emotion=client["emotion"],
                        strategy=turn["strategy"],
                        source=SOURCE,
                        conversation_id=conversation,
                        id=f"{conversation}-{len(examples) + 1}",
                        extra={"batch": batch},
                    )
                )
        else:
            raise ValueError(f"turn {position} has unknown speaker {speaker!r}")
        context.append(Turn(speaker, text))
    if not examples:
        raise ValueError("no therapist reply answers a client turn")
    return examples


def read_batch(path: str | Path, skip_invalid: bool = False) -> ImportResult:
    """One batch file's examples, validated line by line."""
    path = Path(path)
    collector = RowCollector(path)
    with open_text(path) as lines:
        for number, line in enumerate(lines, start=1):
            if line.strip():
                collector.add(number, lambda line=line: conversation_examples(json.loads(line)))
    return collector.result(skip_invalid)


def batch_files(folder: str | Path | None = None) -> list[Path]:
    folder = Path(folder) if folder else corpus_folder()
    files = sorted(folder.glob("*.jsonl"))
    if not files:
        raise DataError(f"no batch files (*.jsonl) in {folder}")
    return files


def read_corpus(folder: str | Path | None = None) -> OrderedDict[str, list[Example]]:
    """Every batch's examples, by batch id (the file name without .jsonl)."""
    batches: OrderedDict[str, list[Example]] = OrderedDict()
    for path in batch_files(folder):
        examples = list(read_batch(path).examples)
        wrong = {e.extra["batch"] for e in examples} - {path.stem}
        if wrong:
            raise DataError(f"{path} holds rows of batch(es) {sorted(wrong)}; a file is one batch")
        batches[path.stem] = examples
    return batches


def split_by_batch(batches: dict[str, list], test: Sequence[str], validation: Sequence[str] = ()) -> dict[str, list]:
    """Train, validation and test rows by whole batches: the named batches are held out,
    every other batch trains.

    >>> parts = split_by_batch({"a": [1], "b": [2], "c": [3, 4]}, test=["c"], validation=["b"])
    >>> parts["train"], parts["validation"], parts["test"]
    ([1], [2], [3, 4])
    """
    unknown = sorted(b for b in {*test, *validation} if b not in batches)
    if unknown:
        raise DataError(f"unknown batch(es) {unknown}; the corpus has {', '.join(batches)}")
    if set(test) & set(validation):
        raise DataError("a batch cannot be both test and validation")
    held = set(test) | set(validation)
    if held >= set(batches):
        raise DataError("every batch is held out: nothing is left to train on")
    return {
        "train": [row for name, rows in batches.items() if name not in held for row in rows],
        "validation": [row for name in validation for row in batches[name]],
        "test": [row for name in test for row in batches[name]],
    }


def batch_ids(examples: Iterable[Example]) -> list[str]:
    return sorted({e.extra.get("batch", "") for e in examples})
