"""The emotion reader with a hand-written head (fast), and the shipped head (slow)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.bag_of_words import keyword_head, keyword_layers
from therapist_app.core.dialogue_format import EmotionReading, Turn
from therapist_app.core.emotion import (
    UNCERTAIN_BELOW,
    EmotionClassifier,
    EmotionHeadError,
    EmotionResult,
    effective_emotion,
    read_conversation,
)
from therapist_app.core.taxonomy import emotions
from therapist_app.core.text_head import TextHead

LABELS = list(emotions())
KEYWORDS = ["worried", "alone", "died", "furious", "thursday", "hello"]
VOTES = {
    "worried": {"anxiety": 6.0},
    "alone": {"loneliness": 6.0},
    "died": {"grief": 6.0},
    "furious": {"anger": 6.0},
    "thursday": {"neutral": 6.0},
    "hello": {"neutral": 6.0},
}


def classifier() -> EmotionClassifier:
    return EmotionClassifier(keyword_layers(KEYWORDS), keyword_head(LABELS, KEYWORDS, VOTES, {}))


def test_reads_a_single_text_with_confidence_and_runner_up():
    result = classifier().classify("I'm so worried about tomorrow")
    assert result.label == "anxiety" and 0.5 < result.confidence <= 1.0
    assert result.runner_up != result.label and result.runner_up_confidence <= result.confidence


def test_therapist_turns_are_ignored_and_a_clear_change_of_feeling_is_followed():
    turns = [
        Turn("client", "I feel so alone"),
        Turn("therapist", "You sound furious, worried and alone"),
        Turn("client", "My dad died in May"),
    ]
    result = classifier().classify(turns)
    assert {result.label, result.runner_up} == {"grief", "loneliness"}
    grieving = ["My dad died in May.", "Since he died the house is quiet.", "He died so fast."]
    assert classifier().classify(grieving + ["I'm furious with the hospital."]).label == "grief"
    assert classifier().classify(grieving + ["I'm furious with the hospital.", "Furious, honestly."]).label == "anger"


def test_small_talk_does_not_drown_the_feeling_said_before():
    turns = ["My dad died in May.", "Hello again.", "Same time on Thursday then?"]
    assert classifier().classify(turns).label == "grief"
    assert classifier().classify(["Hello again."]).label == "neutral"


def test_the_conversation_reading_is_a_distribution_and_one_turn_reads_as_itself():
    turn = {label: 1 / len(LABELS) for label in LABELS}
    assert read_conversation([turn]) == pytest.approx(turn)
    mixed = read_conversation([turn, {**{label: 0.0 for label in LABELS}, "anger": 1.0}])
    assert sum(mixed.values()) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        read_conversation([])


def test_empty_input_is_an_error():
    with pytest.raises(ValueError):
        classifier().classify([Turn("therapist", "Hello"), Turn("client", "  ")])


def test_probabilities_cover_every_label_and_earlier_turns_are_not_embedded_again():
    calls = []
    embed = keyword_layers(KEYWORDS)

    def counting(texts):
        calls.append(list(texts))
        return embed(texts)

    reader = EmotionClassifier(counting, keyword_head(LABELS, KEYWORDS, VOTES, {}))
    (probs,) = reader.probabilities(["worried"])
    assert set(probs) == set(LABELS) and sum(probs.values()) == pytest.approx(1.0, abs=1e-5)
    reader.classify(["worried", "alone"])
    assert calls == [["worried"], ["alone"]]


def test_therapist_correction_wins_and_an_uncertain_reading_is_not_used():
    detected = EmotionResult("anxiety", 0.7, "stress", 0.2)
    assert effective_emotion(detected, "grief") == EmotionReading("grief", 1.0)
    assert effective_emotion(detected, None) == EmotionReading("anxiety", 0.7)
    unsure = EmotionResult("anxiety", UNCERTAIN_BELOW - 0.01, "stress", 0.2)
    assert unsure.uncertain and effective_emotion(unsure, None) is None
    assert effective_emotion(unsure, "stress") == EmotionReading("stress", 1.0)
    assert effective_emotion(None, None) is None
    with pytest.raises(ValueError):
        effective_emotion(detected, "not-an-emotion")


def test_a_head_for_other_labels_is_refused():
    with pytest.raises(EmotionHeadError, match="taxonomy"):
        EmotionClassifier(keyword_layers(KEYWORDS), keyword_head(LABELS[:-1] + ["joy"], KEYWORDS, {}, {}))


def test_head_files_round_trip_and_bad_files_are_clear_errors(tmp_path):
    head = keyword_head(LABELS, KEYWORDS, VOTES, {})
    path = tmp_path / "head.safetensors"
    head.save(path)
    loaded = TextHead.load(path, tuple(LABELS))
    probe = keyword_layers(KEYWORDS)(["so worried and alone"])
    assert np.allclose(loaded.probabilities(probe), head.probabilities(probe))
    with pytest.raises(EmotionHeadError, match="differ"):
        TextHead.load(path, ("a", "b"))
    (tmp_path / "bad.safetensors").write_bytes(b"{not a head")
    with pytest.raises(EmotionHeadError, match="cannot read"):
        TextHead.load(tmp_path / "bad.safetensors")


def test_the_authored_batches_hold_at_least_150_turns_per_label_mostly_indirect():
    from therapist_app.core.assets import asset_path

    rows = [
        json.loads(line)
        for path in sorted((asset_path("corpus") / "emotion").glob("*.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    assert len({r["batch"] for r in rows}) >= 5
    for label in LABELS:
        assert sum(r["emotion"] == label for r in rows) >= 150
    assert sum(r["indirect"] for r in rows) >= 0.75 * len(rows)
    assert len({r["text"] for r in rows}) == len(rows)


@pytest.mark.slow
def test_the_shipped_reader_reads_indirect_cases_and_is_calibrated():
    from therapist_app.core.emotion import default_classifier

    reader = default_classifier()
    assert reader.classify("My husband passed away in March and I still set his place at the table.").label == "grief"
    assert reader.classify(
        "I've been really on edge this week. My manager wants the report by Friday and I can't sleep."
    ).label in {"stress", "anxiety"}
    assert reader.head.temperature != 1.0


def test_analysis_runs_risk_even_when_the_emotion_reader_fails():
    from therapist_app.core.analysis import Analyzer
    from therapist_app.core.risk import RiskDetector

    analyzer = Analyzer(RiskDetector(), classifier())
    result = analyzer.analyse("I'm so worried I want to kill myself", [Turn("client", "Hello, see you Thursday")])
    assert result.risk.categories == ("suicide_selfharm",)
    assert result.emotion.label == "anxiety"  # the greeting before weighs little

    def broken(texts):
        raise RuntimeError("model fault")

    silent = Analyzer(RiskDetector(), EmotionClassifier(broken, keyword_head(LABELS, KEYWORDS, VOTES, {})))
    result = silent.analyse("My husband hits me.")
    assert result.risk.categories == ("abuse",) and result.emotion is None
    assert Analyzer(RiskDetector(), None).analyse("   ").risk.severity == "none"


def test_one_call_may_read_more_texts_than_are_remembered():
    small = EmotionClassifier(keyword_layers(KEYWORDS), keyword_head(LABELS, KEYWORDS, VOTES, {}), remember=2)
    texts = ["worried", "alone", "died", "furious"]
    assert [max(p, key=p.get) for p in small.probabilities(texts)] == ["anxiety", "loneliness", "grief", "anger"]
    assert small.probabilities([]) == []
