"""Every importer on the authored sample files, good and malformed, plus dedup and splits."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from therapist_app.core.dialogue_format import Example, Turn
from therapist_app.core.taxonomy import emotions, strategies
from trainer.cli import main
from trainer.data.app_export import import_app_export
from trainer.data.counselchat import import_counselchat
from trainer.data.dedup import deduplicate
from trainer.data.emotion_labels import map_emotion
from trainer.data.empathetic import import_empathetic
from trainer.data.esconv import import_esconv
from trainer.data.generic import import_table, parse_mapping
from trainer.data.hub import import_hub
from trainer.data.records import DataError, read_jsonl, write_jsonl
from trainer.data.split import SplitFractions, conversation_key, split_examples

SAMPLES = Path(__file__).resolve().parents[2] / "assets" / "sample_data"
SEED = SAMPLES.parent / "seed_corpus.jsonl"
TABLE_MAP = parse_mapping(
    [
        "conversation_id=dialogue",
        "context=turn_context",
        "client_words=client_said",
        "reply=counsellor_said",
        "emotion=feeling",
        "strategy=technique",
    ]
)


def test_esconv_turns_become_examples_with_context_and_strategies():
    examples = import_esconv(SAMPLES / "esconv.json").examples
    assert [e.strategy for e in examples] == [
        "question",
        "reflection",
        "suggestion",
        "restatement",
        "affirmation",
        "other",
    ]
    second = examples[1]
    assert second.client_words.splitlines() == [
        "My contract ends next month and nobody will tell me if it gets renewed.",
        "I keep refreshing my inbox.",
    ]
    assert [t.speaker for t in second.context] == ["client", "therapist"]
    # The self-disclosure turn answers no new client words: it is context for the next.
    assert examples[2].context[-1].text.startswith("I waited on a contract")
    # Mapped through assets/emotion_mappings.toml: "nervousness" is stress there.
    assert [e.emotion for e in examples] == ["anxiety"] * 3 + ["stress"] * 3
    assert len({e.conversation_id for e in examples}) == 2


def test_empathetic_unescapes_commas_and_maps_labels():
    examples = import_empathetic(SAMPLES / "empathetic.csv").examples
    assert len(examples) == 3
    assert examples[0].emotion == "loneliness" and examples[2].emotion == "hope"
    assert examples[2].reply == "That is wonderful, you must be thrilled."
    assert examples[1].context[0].speaker == "client" and examples[1].strategy is None


def test_counselchat_keeps_answers_of_one_question_together():
    examples = import_counselchat(SAMPLES / "counselchat.csv").examples
    assert len(examples) == 3
    assert examples[0].conversation_id == examples[1].conversation_id == "counselchat-q1"
    assert examples[0].emotion == "anxiety" and examples[2].emotion is None
    assert "\n" in examples[2].client_words  # a quoted multi-line cell stays one row


def test_table_csv_and_jsonl_through_a_mapping():
    csv_examples = import_table(SAMPLES / "generic.csv", TABLE_MAP).examples
    assert [e.strategy for e in csv_examples] == ["reflection", "question", "information"]
    assert csv_examples[1].context == (
        Turn("client", "I forgot my friend's birthday."),
        Turn("therapist", "You sound upset with yourself about it."),
    )
    mapping = parse_mapping(
        [
            "conversation_id=session",
            "context=prior",
            "client_words=message",
            "reply=answer",
            "emotion=label",
        ]
    )
    jsonl = import_table(SAMPLES / "generic.jsonl", mapping, emotion_scheme="empathetic_dialogues").examples
    assert [e.emotion for e in jsonl] == ["anxiety", "fear"]


@pytest.mark.parametrize(
    ("importer", "name", "expected_lines"),
    [
        (import_esconv, "esconv_malformed.json", [2, 3, 4]),
        (import_empathetic, "empathetic_malformed.csv", [4, 5, 7]),
        (import_counselchat, "counselchat_malformed.csv", [3, 4]),
        (lambda path, **kw: import_table(path, TABLE_MAP, **kw), "generic_malformed.csv", [3, 4, 5]),
    ],
)
def test_malformed_files_report_line_numbers(importer, name, expected_lines):
    with pytest.raises(DataError) as failure:
        importer(SAMPLES / name)
    assert [e.line for e in failure.value.errors] == expected_lines
    for line in expected_lines:
        assert f"{name}:{line}:" in str(failure.value)
    kept = importer(SAMPLES / name, skip_invalid=True)
    assert len(kept.examples) >= 1 and len(kept.errors) == len(expected_lines)


def test_errors_never_quote_client_text():
    with pytest.raises(DataError) as failure:
        import_table(SAMPLES / "generic_malformed.csv", TABLE_MAP)
    assert "I am tired" not in str(failure.value) and "An empty client cell" not in str(failure.value)


def test_wrong_column_mapping_names_the_available_columns():
    with pytest.raises(DataError, match="available columns: dialogue, turn_context"):
        import_table(SAMPLES / "generic.csv", parse_mapping(["client_words=question"]))
    with pytest.raises(DataError, match="unknown field"):
        parse_mapping(["answer=reply"])


def test_jsonl_validation_reports_each_bad_line(tmp_path):
    good = Example("I feel flat.", "That sounds heavy.", emotion="depression", strategy="reflection")
    path = tmp_path / "data.jsonl"
    path.write_text(
        good.to_json()
        + "\n"
        + "{not json\n"
        + json.dumps({"client_words": "x", "reply": "y", "emotion": "bored"})
        + "\n"
        + "\n"
        + json.dumps({"reply": "y"})
        + "\n",
        encoding="utf-8",
    )
    with pytest.raises(DataError) as failure:
        read_jsonl(path)
    assert [(e.line, e.message.split(" ")[0]) for e in failure.value.errors] == [
        (2, "not"),
        (3, "unknown"),
        (5, "missing"),
    ]
    assert read_jsonl(path, skip_invalid=True).examples == (good,)


def test_app_export_is_validated_as_is(tmp_path):
    rows = [
        Example(
            "I can't sleep.",
            "That sounds exhausting.",
            emotion="stress",
            strategy="reflection",
            source="app",
            conversation_id="c1",
            id="e1",
            decision="edited",
            suggestion="That's hard.",
        ),
        Example(
            "I'm fine.",
            None,
            strategy="question",
            source="app",
            conversation_id="c1",
            id="e2",
            decision="rejected",
            suggestion="Why?",
        ),
    ]
    path = tmp_path / "export.jsonl"
    write_jsonl(rows, path)
    assert import_app_export(path).examples == tuple(rows)
    with path.open("a", encoding="utf-8") as f:
        f.write(Example("Hello.", "Hi.").to_json() + "\n")
    with pytest.raises(DataError, match=r"export.jsonl:3: not an app export row"):
        import_app_export(path)


def test_app_export_takes_not_chosen_drafts_and_own_replies(tmp_path):
    rows = [
        Example(
            "I'm fine.", None, source="app", conversation_id="c1", id="e1", decision="not_chosen", suggestion="Why?"
        ),
        Example(
            "I'm fine.", "Fine can mean a lot of things.", source="app", conversation_id="c1", id="e2", decision="own"
        ),
    ]
    path = tmp_path / "export.jsonl"
    write_jsonl(rows, path)
    assert import_app_export(path).examples == tuple(rows)
    bad = [
        Example("I'm fine.", "Mine.", source="app", decision="own", suggestion="A draft?"),  # own holds no draft
        Example("I'm fine.", None, source="app", decision="not_chosen"),  # a draft row without its draft
        Example("I'm fine.", "Sure.", source="app", decision="accepted"),
    ]
    write_jsonl(bad, path)
    with pytest.raises(DataError) as failure:
        import_app_export(path)
    assert [(e.line, e.message) for e in failure.value.errors] == [
        (1, "an `own` row is the therapist's reply and holds no `suggestion`"),
        (2, "a not_chosen row needs the model's `suggestion`"),
        (3, "a accepted row needs the model's `suggestion`"),
    ]


def test_the_apps_sample_export_imports():
    examples = import_app_export(SAMPLES.parent / "app_export_sample.jsonl").examples
    assert examples and all(e.decision in ("accepted", "edited", "rejected") for e in examples)


def test_hub_offline_fails_clearly_without_network(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError, match="offline.*therapist-trainer import --format"):
        import_hub("someone/some-counselling-set", parse_mapping([]))


def test_hub_reads_a_local_dataset_folder_through_the_mapping(tmp_path, monkeypatch):
    pytest.importorskip("datasets")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "set"
    folder.mkdir()
    (folder / "train.jsonl").write_text((SAMPLES / "generic.jsonl").read_text(encoding="utf-8"), encoding="utf-8")
    mapping = parse_mapping(["client_words=message", "reply=answer", "context=prior", "emotion=label"])
    examples = import_hub(str(folder), mapping, emotion_scheme="empathetic_dialogues").examples
    assert [e.emotion for e in examples] == ["anxiety", "fear"]
    assert examples[0].source == f"hub:{folder}"


def test_emotion_labels_map_to_the_taxonomy():
    assert map_emotion("esconv", "Jealousy") == "anger"
    assert map_emotion("empathetic_dialogues", "lonely") == "loneliness"
    assert map_emotion("counselchat", "grief-and-loss") == "grief"
    assert map_emotion("empathetic_dialogues", "grief") == "grief"  # already ours
    with pytest.raises(ValueError, match="no mapping"):
        map_emotion("esconv", "boredom")


def test_dedup_ignores_case_spacing_and_labels():
    a = Example("I feel low.", "That sounds hard.", emotion="sadness")
    b = Example("i feel   LOW.", "That sounds hard.", source="other")
    c = Example("I feel low.", "Tell me more.")
    kept, dropped = deduplicate([a, b, c])
    assert kept == [a, c] and dropped == 1


def test_split_keeps_conversations_whole_and_is_seeded():
    examples = read_jsonl(SEED).examples
    first = split_examples(examples, SplitFractions(0.8, 0.1, 0.1), seed=3)
    assert first == split_examples(examples, SplitFractions(0.8, 0.1, 0.1), seed=3)
    owners = {}
    for name, part in first.items():
        for example in part:
            assert owners.setdefault(conversation_key(example), name) == name
    sizes = {name: len(part) for name, part in first.items()}
    assert sum(sizes.values()) == len(examples)
    assert 0.05 < sizes["validation"] / len(examples) < 0.15 and sizes["test"] > 0


def test_split_of_a_tiny_set_still_fills_every_split():
    tiny = [Example(f"words {i}", "reply", conversation_id=str(i)) for i in range(3)]
    assert all(len(part) == 1 for part in split_examples(tiny).values())


def test_seed_corpus_covers_the_taxonomy():
    examples = read_jsonl(SEED).examples
    assert len(examples) >= 300
    assert set(Counter(e.emotion for e in examples)) == set(emotions())
    assert set(Counter(e.strategy for e in examples)) == set(strategies())
    assert all(e.conversation_id and e.source == "seed" for e in examples)
    assert deduplicate(examples)[1] == 0


def test_cli_import_and_split(tmp_path, capsys):
    out = tmp_path / "all.jsonl"
    assert (
        main(
            ["import", "--format", "esconv", str(SAMPLES / "esconv.json"), str(SAMPLES / "esconv.json"), "-o", str(out)]
        )
        == 0
    )
    assert "wrote 6 examples" in capsys.readouterr().out  # the second copy is all duplicates
    assert main(["import", "--format", "counselchat", str(SAMPLES / "counselchat_malformed.csv"), "-o", str(out)]) == 2
    assert "counselchat_malformed.csv:3" in capsys.readouterr().err
    assert main(["split", str(SEED), "-o", str(tmp_path / "split")]) == 0
    assert (
        sum(len(read_jsonl(tmp_path / "split" / f"{n}.jsonl").examples) for n in ("train", "validation", "test")) == 312
    )
