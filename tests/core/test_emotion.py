"""The emotion classifier with a hand-built head (fast), and the shipped head (slow)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from therapist_app.core.dialogue_format import EmotionReading, Turn
from therapist_app.core.embedder import MODEL_ID
from therapist_app.core.emotion import (
    EmotionClassifier,
    EmotionHead,
    EmotionHeadError,
    EmotionResult,
    effective_emotion,
)
from therapist_app.core.taxonomy import emotions

LABELS = list(emotions())
KEYWORDS = {"worried": "anxiety", "alone": "loneliness", "died": "grief", "furious": "anger"}


def keyword_embed(texts):
    """One dimension per label, lit by a keyword: a stand-in for MiniLM."""
    out = np.full((len(texts), len(LABELS)), 0.01, dtype=np.float32)
    for row, text in enumerate(texts):
        for word, label in KEYWORDS.items():
            if word in text.lower():
                out[row, LABELS.index(label)] = 1.0
    return out


def head(**overrides) -> EmotionHead:
    record = {
        "labels": LABELS,
        "weights": (np.eye(len(LABELS)) * 8).tolist(),
        "bias": [0.0] * len(LABELS),
        "embedding_model": MODEL_ID + "@test",
    }
    record.update(overrides)
    return EmotionHead.from_dict(record)


CLASSIFIER = EmotionClassifier(keyword_embed, head())


def test_reads_a_single_text_with_confidence_and_runner_up():
    result = CLASSIFIER.classify("I'm so worried about tomorrow")
    assert result.label == "anxiety"
    assert 0.5 < result.confidence <= 1.0
    assert result.runner_up != result.label
    assert result.runner_up_confidence <= result.confidence


def test_latest_client_turn_weighs_most_and_therapist_turns_are_ignored():
    turns = [Turn("client", "I feel so alone"), Turn("therapist", "You sound furious"),
             Turn("client", "My dad died in May")]
    result = CLASSIFIER.classify(turns)
    assert (result.label, result.runner_up) == ("grief", "loneliness")


def test_equal_weights_read_the_whole_conversation():
    texts = ["worried", "worried", "alone"]
    assert CLASSIFIER.classify(texts, weights=[1.0, 1.0, 1.0]).label == "anxiety"
    assert CLASSIFIER.classify(texts).label == "loneliness"  # latest first by default


def test_empty_input_is_an_error():
    with pytest.raises(ValueError):
        CLASSIFIER.classify([Turn("therapist", "Hello"), Turn("client", "  ")])


def test_probabilities_cover_every_label_and_sum_to_one():
    (probs,) = CLASSIFIER.probabilities(["worried"])
    assert set(probs) == set(LABELS)
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-5)


def test_therapist_correction_wins():
    detected = EmotionResult("anxiety", 0.7, "stress", 0.2)
    assert effective_emotion(detected, "grief") == EmotionReading("grief", 1.0)
    assert effective_emotion(detected, None) == EmotionReading("anxiety", 0.7)
    assert effective_emotion(None, None) is None
    with pytest.raises(ValueError):
        effective_emotion(detected, "not-an-emotion")


@pytest.mark.parametrize("overrides,message", [
    ({"labels": LABELS[:-1] + ["joy"]}, "taxonomy"),
    ({"embedding_model": "some/other-model"}, "trained on"),
    ({"bias": [0.0] * 3}, "shape"),
])
def test_head_rejects_mismatches(overrides, message):
    with pytest.raises(EmotionHeadError, match=message):
        head(**overrides)


def test_head_file_that_is_not_json_is_a_clear_error(tmp_path):
    path = tmp_path / "head.json"
    path.write_text("{not json")
    with pytest.raises(EmotionHeadError, match="cannot read"):
        EmotionHead.load(path)


def test_shipped_head_records_its_provenance():
    shipped = EmotionHead.load()
    assert shipped.metadata["held_out"]["rows"] > 0
    assert len(shipped.metadata["training_data_sha256"]) == 64
    assert shipped.weights.shape == (len(LABELS), 384)


def test_authored_set_has_forty_per_label_and_a_held_out_split():
    from therapist_app.core.assets import asset_path

    rows = [json.loads(line) for line in asset_path("emotion_utterances.jsonl").read_text().splitlines()]
    for label in LABELS:
        mine = [r for r in rows if r["emotion"] == label]
        assert len(mine) >= 40
        assert {r["split"] for r in mine} == {"train", "test"}
    assert len({r["text"] for r in rows}) == len(rows)


@pytest.mark.slow
def test_shipped_classifier_reads_clear_cases():
    from therapist_app.core.emotion import default_classifier

    classifier = default_classifier()
    assert classifier.classify("My husband passed away in March and I still set his place at the table.").label == "grief"
    assert classifier.classify("I'm so furious with my landlord I could scream.").label == "anger"


def test_analysis_runs_risk_even_when_the_emotion_reader_fails():
    from therapist_app.core.analysis import Analyzer
    from therapist_app.core.risk import RiskDetector

    analyzer = Analyzer(RiskDetector(), CLASSIFIER)
    result = analyzer.analyse("I'm so worried I want to kill myself", [Turn("client", "I feel alone")])
    assert result.risk.categories == ("suicide_selfharm",)
    assert result.emotion.label == "anxiety"

    def broken(texts):
        raise RuntimeError("model fault")

    silent = Analyzer(RiskDetector(), EmotionClassifier(broken, head()))
    result = silent.analyse("My husband hits me.")
    assert result.risk.categories == ("abuse",) and result.emotion is None
    assert Analyzer(RiskDetector(), None).analyse("   ").risk.severity == "none"
