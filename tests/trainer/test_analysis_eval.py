"""Metrics and the ESConv reader (fast); the eval commands end to end (slow)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from trainer.analysis_eval import (
    binary_scores,
    classification_report,
    majority_label,
    read_esconv,
)
from trainer.cli import build_parser, main
from trainer.data.labelled import LabelledRow, read_rows


def test_confusion_matrix_and_per_class_scores():
    gold = ["a", "a", "a", "b", "b", "c"]
    predicted = ["a", "a", "b", "b", "c", "c"]
    report = classification_report(gold, predicted, ["a", "b", "c", "d"])
    assert report.confusion.tolist() == [[2, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 0], [0, 0, 0, 0]]
    assert report.precision["a"] == 1.0 and report.recall["a"] == pytest.approx(2 / 3)
    assert report.f1["b"] == pytest.approx(0.5)
    assert report.accuracy == pytest.approx(4 / 6)
    # `d` has no gold rows, so it does not pull macro-F1 down.
    assert report.macro_f1 == pytest.approx(np.mean([0.8, 0.5, 2 / 3]))


def test_report_rejects_unknown_labels_and_length_mismatch():
    with pytest.raises(ValueError, match="not among"):
        classification_report(["a"], ["z"], ["a"])
    with pytest.raises(ValueError):
        classification_report(["a"], [], ["a"])


def test_binary_scores_of_any_risk():
    assert binary_scores([True, True, False, False], [True, False, True, False]) == (0.5, 0.5, 0.5)
    assert binary_scores([True], [False]) == (0.0, 0.0, 0.0)


def test_majority_comes_from_rows_outside_the_evaluated_split():
    rows = [
        LabelledRow("x", "a", "f", split="train"),
        LabelledRow("y", "a", "f", split="train"),
        LabelledRow("z", "b", "f"),
        LabelledRow("w", "b", "f"),
        LabelledRow("v", "b", "f"),
    ]
    assert majority_label(rows, "test") == "a"
    assert majority_label(rows, "all") == "b"


def test_read_labelled_names_the_bad_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "fine", "risk": "none"}\n{"text": "no label"}\n')
    with pytest.raises(ValueError, match="bad.jsonl:2"):
        read_rows(path, "risk")


def test_esconv_reader_takes_seeker_turns(tmp_path):
    path = tmp_path / "esconv.json"
    path.write_text(
        json.dumps(
            [
                {
                    "emotion_type": "anxiety",
                    "dialog": [
                        {"speaker": "seeker", "content": "I can't sleep before exams."},
                        {"speaker": "supporter", "content": "That sounds hard."},
                        {"speaker": "seeker", "content": "Every night."},
                    ],
                },
                {"emotion_type": "anger", "dialog": [{"speaker": "supporter", "content": "Hi"}]},
            ]
        )
    )
    assert read_esconv(path) == [("anxiety", ["I can't sleep before exams.", "Every night."])]
    path.write_text(json.dumps([{"dialog": []}]))
    with pytest.raises(ValueError, match="emotion_type"):
        read_esconv(path)


def test_commands_have_help():
    parser = build_parser()
    choices = parser._subparsers._group_actions[0].choices
    for name in (
        "train-emotion-head",
        "train-risk-head",
        "eval-emotion",
        "eval-risk",
        "eval-crisis",
        "corpus",
        "export-adapter",
        "blind-pack",
        "blind-score",
    ):
        assert choices[name].description
        for action in choices[name]._actions:
            assert action.help, (name, action.dest)


def test_missing_data_file_is_a_clear_error(tmp_path, capsys):
    assert main(["eval-risk", "--data", str(tmp_path / "nope.jsonl")]) == 2
    assert "error:" in capsys.readouterr().err


@pytest.mark.slow
def test_eval_risk_and_emotion_print_matrices_and_result(tmp_path, capsys):
    risk = tmp_path / "risk.jsonl"
    risk.write_text(
        "\n".join(
            json.dumps(r)
            for r in [
                {"text": "I want to kill myself.", "risk": "suicide_selfharm"},
                {"text": "This commute is killing me.", "risk": "none"},
                {"text": "My husband hits me.", "risk": "abuse"},
            ]
        )
        + "\n"
    )
    assert main(["eval-risk", "--data", str(risk), "--split", "all"]) == 0
    out = capsys.readouterr().out
    assert "confusion matrix" in out and "zero-shot" in out and "majority" in out
    assert out.strip().splitlines()[-1] == "RESULT recall=1.0000 precision=1.0000 f1=1.0000 macro_f1=1.0000 rows=3"

    emotion = tmp_path / "emotion.jsonl"
    emotion.write_text(
        "\n".join(
            json.dumps(r)
            for r in [
                {"text": "My father died last week and I miss him terribly.", "emotion": "grief"},
                {"text": "I am so angry at my landlord, he ignored the leak for months.", "emotion": "anger"},
            ]
        )
        + "\n"
    )
    esconv = tmp_path / "esconv.json"
    esconv.write_text(
        json.dumps(
            [
                {
                    "emotion_type": "anger",
                    "dialog": [{"speaker": "seeker", "content": "My boss yelled at me and I am furious about it."}],
                }
            ]
        )
    )
    assert main(["eval-emotion", "--data", str(emotion), "--split", "all", "--esconv", str(esconv)]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("RESULT accuracy=") and "esconv_accuracy=" in last
