"""The evaluator's metrics against hand-computed values, and `therapist-trainer eval` end to end."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from therapist_app.core.dialogue_format import Example
from trainer.cli import main
from trainer.evaluate import EvalSettings, score_replies
from trainer.metrics import bleu, distinct, emotion_accuracy, meteor, rouge, wordnet_available


def test_bleu_by_hand():
    # Every n-gram matches; brevity penalty exp(1 - 7/6).
    assert bleu(["the cat sat on the mat"], ["the cat sat on the mat today"]) == pytest.approx(
        math.exp(1 - 7 / 6), abs=1e-6
    )
    # Precisions 5/6, 3/5, 2/4, 1/3, same length: (1/12) ** 0.25.
    assert bleu(["the cat sat on a mat"], ["the cat sat on the mat"]) == pytest.approx((1 / 12) ** 0.25, abs=1e-6)


def test_rouge_by_hand():
    scores = rouge(["the cat sat", "the dog ran"], ["the cat sat down", "the dog ran far away"])
    # rouge1: F(3/3, 3/4) = 6/7 and F(3/3, 3/5) = 3/4; rouge2: F(2/2, 2/3) = 0.8 and F(2/2, 2/4) = 2/3.
    assert scores["rouge1"] == pytest.approx((6 / 7 + 3 / 4) / 2)
    assert scores["rouge2"] == pytest.approx((0.8 + 2 / 3) / 2)
    assert scores["rougeL"] == pytest.approx((6 / 7 + 3 / 4) / 2)


def test_meteor_by_hand_without_synonyms():
    # One chunk of n matches, P = R = 1: 1 - 0.5 * (1/n) ** 3. "cats" meets "cat" by stem.
    result = meteor(
        ["the cat sat on the mat", "the cats sat", "nothing alike here"],
        ["the cat sat on the mat", "the cat sat", "completely different words"],
    )
    assert result.score == pytest.approx((1 - 0.5 / 216 + 1 - 0.5 / 27 + 0) / 3)


def test_distinct_and_emotion_accuracy_by_hand():
    assert distinct(["the cat sat", "the dog ran"], 1) == pytest.approx(5 / 6)
    assert distinct(["the cat sat", "the dog ran"], 2) == 1.0
    assert distinct([""], 1) == 0.0
    assert emotion_accuracy(["anger", "fear", "fear"], ["anger", "sadness", "fear"]) == pytest.approx(2 / 3)
    assert emotion_accuracy(["anger"], [None]) is None


def test_metrics_refuse_mismatched_input():
    with pytest.raises(ValueError, match="2 replies but 1 references"):
        rouge(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="no replies"):
        bleu([], [])


FIXTURE = [
    Example(
        "I keep checking my phone.",
        "It sounds like the waiting is hard.",
        emotion="anxiety",
        strategy="reflection",
        id="a",
    ),
    Example("My sister never calls.", "That sounds lonely.", emotion="loneliness", strategy="reflection", id="b"),
]


def test_score_replies_on_a_tiny_fixture():
    def classifier(texts):
        return [{"anxiety": 0.8, "neutral": 0.2} if "waiting" in t else {"neutral": 1.0} for t in texts]

    settings = EvalSettings(rewards="reference_agreement,format_compliance", reward_weights="1,1")
    result = score_replies(
        FIXTURE, ["It sounds like the waiting is hard.<|im_end|>", "Okay then"], settings, classifier
    )
    assert result.examples == 2
    assert result.emotion_acc == 0.5  # the first reply reads as anxiety, the second as neutral (not loneliness)
    assert result.rewards["reference_agreement"] == pytest.approx(0.5)  # 1.0 and 0.0
    assert result.rewards["format_compliance"] == pytest.approx((1.0 + 0.75) / 2)  # "Okay then" lacks an end
    assert result.reward_total == pytest.approx((2.0 + 0.75) / 2)
    assert result.reward_totals == pytest.approx((2.0, 0.75))  # per example, for paired comparisons
    assert result.rouge1 == pytest.approx(0.5)
    assert "emotion_acc=0.5000" in result.result_line()
    always_lonely = lambda texts: [{"loneliness": 1.0} for _ in texts]  # noqa: E731
    assert score_replies(FIXTURE, ["Alone.", "Alone."], settings, always_lonely).emotion_acc == 0.5
    # An empty reply is never read by the classifier and counts as wrong.
    assert score_replies(FIXTURE, ["Alone.", "<|im_end|>"], settings, always_lonely).emotion_acc == 0.0
    no_classifier = score_replies(FIXTURE, ["a.", "b."], settings, classifier=None)
    assert no_classifier.emotion_acc is None and "emotion_acc=nan" in no_classifier.result_line()


def _fixture_file(tmp_path: Path) -> Path:
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(e.to_json() for e in FIXTURE) + "\n", encoding="utf-8")
    return path


FAST = [
    "--split",
    "all",
    "--max-new-tokens",
    "6",
    "--emotion-classifier",
    "none",
    "--num-threads",
    "1",
    "--rewards",
    "reference_agreement,safety,format_compliance,repetition_penalty",
    "--reward-weights",
    "1,2,0.5,1",
]


def test_eval_command_on_a_tiny_hf_model(tiny_model, tmp_path, capsys):
    run = tmp_path / "grpo-run"
    run.mkdir()
    (run / "metrics.jsonl").write_text(
        json.dumps({"step": 1, "reward": 0.1, "rewards/safety/mean": 1.0})
        + "\n"
        + json.dumps({"step": 2, "reward": 0.3, "rewards/safety/mean": 0.8})
        + "\n",
        encoding="utf-8",
    )
    out = tmp_path / "eval"
    code = main(
        [
            "eval",
            "--model",
            str(tiny_model),
            "--data",
            str(_fixture_file(tmp_path)),
            "--output-dir",
            str(out),
            "--runs",
            str(run),
            *FAST,
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out.strip().splitlines()
    keys = [pair.split("=")[0] for pair in printed[-1].split()[1:]]
    assert printed[-1].startswith("RESULT ") and keys == ["bleu", "rouge1", "rouge2", "rougeL", "meteor", "emotion_acc"]
    assert all(0 <= float(pair.split("=")[1]) <= 1 or pair.endswith("=nan") for pair in printed[-1].split()[1:])
    report = (out / "report.md").read_text(encoding="utf-8")
    assert report.rstrip().endswith(printed[-1])
    assert "| ROUGE-1 |" in report and "0.1397" in report and "0.6696" in report
    assert ("without WordNet synonyms" in report) != wordnet_available()
    assert (out / "reward_curves.png").stat().st_size > 1000 and (out / "reward_components.png").is_file()
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert results["result"]["examples"] == 2


def test_eval_command_on_a_gguf(tiny_gguf, tmp_path, capsys):
    out = tmp_path / "eval"
    data = _fixture_file(tmp_path)
    code = main(
        ["eval", "--model", str(tiny_gguf), "--data", str(data), "--output-dir", str(out), "--save-replies", *FAST]
    )
    assert code == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("RESULT bleu=")
    # Each reply with its own reward total, whose mean is the reported one; results.json keeps the means only.
    replies = [json.loads(line) for line in (out / "replies.jsonl").read_text(encoding="utf-8").splitlines()]
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))["result"]
    assert [r["id"] for r in replies] == ["a", "b"] and "reward_totals" not in results
    assert sum(r["reward_total"] for r in replies) / 2 == pytest.approx(results["reward_total"], abs=1e-5)


def test_eval_command_reports_bad_input(tmp_path, capsys):
    assert main(["eval", "--model", str(tmp_path / "missing"), "--data", str(_fixture_file(tmp_path)), *FAST]) == 2
    assert "error:" in capsys.readouterr().err
    assert (
        main(
            [
                "eval",
                "--model",
                "x",
                "--data",
                str(_fixture_file(tmp_path)),
                "--rewards",
                "safety",
                "--reward-weights",
                "1,2",
            ]
        )
        == 2
    )
    assert "1 names but reward_weights 2" in capsys.readouterr().err


@pytest.mark.parametrize("decoding, shown_per_round", [(["--drafts", "3"], 3), (["--best-of", "4"], 3)])
def test_eval_runs_the_apps_rounds_and_counts_shown_drafts(tiny_gguf, tmp_path, decoding, shown_per_round):
    out = tmp_path / "eval"
    code = main(
        [
            "eval",
            "--model",
            str(tiny_gguf),
            "--data",
            str(_fixture_file(tmp_path)),
            "--output-dir",
            str(out),
            *FAST,
            *decoding,
        ]
    )
    assert code == 0
    result = json.loads((out / "results.json").read_text(encoding="utf-8"))["result"]
    assert 0 < result["shown_drafts"] <= shown_per_round * result["examples"]
    assert 0 <= result["repeated_rounds"] <= 1 and result["violations_per_100"] >= 0
    if "--best-of" in decoding:  # the gate: nothing unsafe is ever shown, nothing twice
        assert result["violations_per_100"] == 0 and result["repeated_rounds"] == 0
    assert "Shown drafts:" in (out / "report.md").read_text(encoding="utf-8")


def test_eval_refuses_rounds_on_a_hugging_face_folder_and_both_modes_at_once(tiny_model, tmp_path, capsys):
    data = str(_fixture_file(tmp_path))
    assert main(["eval", "--model", str(tiny_model), "--data", data, *FAST, "--best-of", "4"]) == 2
    assert "need a GGUF" in capsys.readouterr().err
    assert main(["eval", "--model", "x.gguf", "--data", data, *FAST, "--best-of", "4", "--drafts", "3"]) == 2
    assert "not both" in capsys.readouterr().err
