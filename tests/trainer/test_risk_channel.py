"""Choosing the crisis detector's embedding operating point, with a bag-of-words embedder."""

from __future__ import annotations

import pytest

from tests.bag_of_words import bag_of_words_embed
from therapist_app.core.risk import RiskAnchors
from trainer.risk_channel import MARGINS, THRESHOLDS, choose, operating_points


ANCHORS = RiskAnchors({
    "suicide_selfharm": ("nobody would notice if I was gone for good",
                         "I keep thinking everyone would be fine if I was gone",
                         "I have been thinking I would be gone soon"),
    "harm_others": ("I keep picturing breaking his jaw", "I keep picturing hurting him badly",
                    "picturing his jaw breaking"),
    "abuse": ("he reads my texts and keeps my bank card", "he keeps my bank card and my passport",
              "she reads my texts every night"),
    "substance_medical": ("my chest is crushing and my arm is numb", "my arm went numb and my chest hurts",
                          "chest crushing since this morning"),
    "none": ("work was busy and I felt tired", "I felt tired after a busy week at work",
             "the weekend was quiet and nice", "I felt nervous about the exam",
             "my sister visited and we cooked", "I was annoyed at the train delays",
             "I would never hurt myself"),  # negated: the patterns handle it, not the channel
})


# Everyday client turns that are no anchor: the first shares words with a risk anchor.
EVERYDAY = ("I keep picturing the exam hall and my hands shaking.",
            "The weekend was quiet. We cooked with my sister.",
            "Work was busy and the trains were late again.")


def test_every_point_is_scored_leave_one_out():
    points = operating_points(bag_of_words_embed, ANCHORS, EVERYDAY)
    assert len(points) == len(THRESHOLDS) * len(MARGINS)
    assert all(0.0 <= recall <= 1.0 and 0.0 <= rate <= 1.0 and 0.0 <= turns <= 1.0
               for _, _, recall, rate, turns in points)
    # A lower threshold never catches fewer risks, nor flags fewer everyday turns.
    by_margin = {}
    for threshold, margin, recall, _, turns in points:
        by_margin.setdefault(margin, []).append((threshold, recall, turns))
    for series in by_margin.values():
        ordered = sorted(series)
        assert [r for _, r, _ in ordered] == sorted((r for _, r, _ in ordered), reverse=True)
        assert [t for _, _, t in ordered] == sorted((t for _, _, t in ordered), reverse=True)
    # Everyday turns are scored turn by turn: a rate is a count of the three turns.
    assert {round(turns * 3) for *_, turns in points} <= {0, 1, 2, 3}
    assert max(turns for *_, turns in points) > 0  # the look-alike turn flags at a low point


def test_the_choice_keeps_both_safe_rates_within_the_budget_and_maximises_recall():
    points = [(0.35, 0.0, 0.9, 0.20, 0.10), (0.45, 0.0, 0.7, 0.04, 0.08),
              (0.45, 0.02, 0.7, 0.02, 0.04), (0.5, 0.0, 0.5, 0.0, 0.0)]
    assert choose(points, 0.05) == (0.45, 0.02, 0.7, 0.02, 0.04)
    assert choose(points, 0.25)[2] == 0.9
    with pytest.raises(ValueError, match="at most"):
        choose([(0.35, 0.0, 0.9, 0.02, 0.2)], 0.05)


@pytest.mark.slow
def test_the_shipped_operating_point_is_what_the_tuner_chooses(capsys):
    """Anchors added without re-running tune-risk-channel would leave the detector at a
    point nobody measured: the defaults must be the tuner's choice on the shipped data."""
    import inspect

    from therapist_app.core.risk import RiskDetector
    from trainer.cli import main

    assert main(["tune-risk-channel"]) == 0
    result = dict(item.split("=") for item in capsys.readouterr().out.strip().splitlines()[-1].split()[1:])
    defaults = inspect.signature(RiskDetector).parameters
    assert float(result["threshold"]) == defaults["threshold"].default
    assert float(result["margin"]) == defaults["margin"].default
