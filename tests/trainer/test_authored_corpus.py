"""The authored corpus: conversations become examples, batches are held out whole, and
the shipped batches meet the corpus's promises."""

from __future__ import annotations

import json

import pytest

from therapist_app.core.assets import asset_path
from trainer.cli import main
from trainer.data.authored import conversation_examples, read_corpus, split_by_batch
from trainer.data.records import DataError, read_jsonl

TURNS = [
    {"speaker": "therapist", "text": "Hello, what brings you here?", "strategy": "other"},
    {"speaker": "client", "text": "Work, mostly.", "emotion": "stress"},
    {"speaker": "therapist", "text": "What about work?", "strategy": "question"},
    {"speaker": "client", "text": "My boss.", "emotion": "anger"},
    {"speaker": "therapist", "text": "So your boss is the hardest part. Is that right?", "strategy": "restatement"},
]


def test_each_reply_to_a_client_turn_is_an_example_with_the_turns_before_it():
    examples = conversation_examples({"conversation_id": "x-1", "batch": "x", "turns": TURNS})
    assert [(e.client_words, e.emotion, e.strategy, len(e.context)) for e in examples] == [
        ("Work, mostly.", "stress", "question", 1),
        ("My boss.", "anger", "restatement", 3),
    ]
    assert examples[1].context[-1].text == "What about work?" and examples[0].extra == {"batch": "x"}


@pytest.mark.parametrize(
    "turns, message",
    [
        (TURNS[:2] + TURNS[1:], "in a row"),
        ([{**TURNS[1], "emotion": "joy"}, TURNS[2]], "emotion"),
        ([TURNS[1], {**TURNS[2], "strategy": "lecture"}], "strategy"),
        ([TURNS[0]], "no therapist reply"),
    ],
)
def test_bad_conversations_are_refused_with_the_reason(turns, message):
    with pytest.raises(ValueError, match=message):
        conversation_examples({"conversation_id": "x-1", "batch": "x", "turns": turns})


def test_batches_are_held_out_whole():
    parts = split_by_batch({"a": [1, 2], "b": [3], "c": [4]}, test=["a"], validation=["c"])
    assert parts == {"train": [3], "validation": [4], "test": [1, 2]}
    with pytest.raises(DataError, match="unknown"):
        split_by_batch({"a": [1]}, test=["z"])
    with pytest.raises(DataError, match="nothing is left"):
        split_by_batch({"a": [1], "b": [2]}, test=["a"], validation=["b"])


def test_the_shipped_corpus_meets_its_promises():
    batches = read_corpus()
    examples = [e for rows in batches.values() for e in rows]
    assert len(batches) >= 10 and len(examples) >= 3000
    conversations = {}
    for e in examples:
        conversations.setdefault(e.conversation_id, []).append(e)
    assert all(3 <= len(replies) <= 8 for replies in conversations.values())
    emotions = {e.emotion for e in examples}
    strategies = {e.strategy for e in examples}
    assert len(emotions) == 13 and len(strategies) == 8
    situations = {
        json.loads(line)["situation"]
        for path in sorted((asset_path("corpus") / "dialogues").glob("*.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    }
    assert len(situations) >= 60
    lengths = sorted(len(e.reply.split()) for e in examples)
    assert 15 <= lengths[len(lengths) // 2] <= 30


def test_the_corpus_command_writes_splits_and_records_which_batch_went_where(tmp_path, capsys):
    assert main(["corpus", "--test", "d05", "--validation", "d12", "-o", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "batches.json").read_text())
    assert record["batches"]["d05"]["split"] == "test" and record["batches"]["d01"]["split"] == "train"
    test = read_jsonl(tmp_path / "test.jsonl").examples
    assert {e.extra["batch"] for e in test} == {"d05"}
    assert main(["corpus", "--test", "nope", "-o", str(tmp_path)]) == 2
    assert "unknown batch" in capsys.readouterr().err


def test_the_authored_support_chats_read_as_esconv_with_mappable_labels():
    from therapist_app.core.taxonomy import map_emotion
    from trainer.analysis_eval import read_esconv

    folder = asset_path("corpus/conversations")
    files = sorted(folder.glob("c*.json"))
    assert [f.stem for f in files] == ["c01", "c02", "c03"]
    for path in files:
        raw = json.loads(path.read_text(encoding="utf-8"))
        assert {c["batch"] for c in raw} == {path.stem}
        conversations = read_esconv(path)
        assert len(conversations) == len(raw) >= 40
        labels = {map_emotion("esconv", emotion) for emotion, _ in conversations}
        assert len(labels) >= 8 and all(len(turns) >= 4 for _, turns in conversations)


def test_the_risk_batches_keep_their_shape_and_never_share_a_turn():
    # Every batch, those that train the head (corpus/risk) and any set aside to measure it
    # on writers it never saw (corpus/risk_held_out): one writer's 250 risk turns over the
    # four categories and 250 `none` turns, tagged with its file's name; no turn repeats
    # across batches, or a held-out batch would not be held out.
    from collections import Counter

    from therapist_app.core.risk import RISK_LABELS
    from trainer.data.labelled import read_batches

    root = asset_path("corpus")
    folders = [root / name for name in ("risk", "risk_held_out") if any((root / name).glob("*.jsonl"))]
    rows = [row for folder in folders for row in read_batches(folder, "risk", RISK_LABELS)]
    batches = {r.batch for r in rows}
    assert {f"r{k:02d}" for k in range(1, 11)} <= batches
    for batch in batches:
        labels = Counter(r.label for r in rows if r.batch == batch)
        assert labels["none"] == 250 and sum(labels.values()) == 500 and len(labels) == 5, batch
    assert len({r.text for r in rows}) == len(rows)
