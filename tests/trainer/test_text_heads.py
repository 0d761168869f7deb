"""Training the analysis heads: the MLP, temperature calibration, leave-batch-out folds,
the risk operating point, and the manifest the app checks artefacts against."""

from __future__ import annotations

import json

import numpy as np
import pytest

from therapist_app.core.artifacts import ArtifactError, verified
from therapist_app.core.text_head import TextHead, mlp_logits, softmax
from trainer.artifacts import record_artifact
from trainer.emotion_head import leave_batch_out, macro_f1
from trainer.risk_head import MAX_EVERYDAY, MIN_PRECISION, choose_threshold
from trainer.text_heads import (
    MLPSettings,
    expected_calibration_error,
    fit_mlp,
    fit_temperature,
    out_of_fold,
)

FAST = MLPSettings(hidden=16, epochs=30, batch_size=16)


def _blobs(seed=0, per_class=30, classes=3, width=768):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, width))
    x = np.concatenate([centres[c] + 0.8 * rng.normal(size=(per_class, width)) for c in range(classes)])
    y = np.repeat(np.arange(classes), per_class)
    return x.astype(np.float32), y


def test_the_mlp_learns_separable_classes_and_is_deterministic():
    x, y = _blobs()
    params = fit_mlp(x, y, 3, FAST)
    assert (mlp_logits(params, x).argmax(1) == y).mean() > 0.95
    again = fit_mlp(x, y, 3, FAST)
    assert all(np.array_equal(a, b) for a, b in zip(params, again))


def test_temperature_softens_an_overconfident_model_and_lowers_its_calibration_error():
    rng = np.random.default_rng(1)
    targets = rng.integers(0, 2, 400)
    right = rng.random(400) < 0.7  # 70% right, but logits say ~99%
    predicted = np.where(right, targets, 1 - targets)
    logits = np.zeros((400, 2))
    logits[np.arange(400), predicted] = 5.0
    temperature = fit_temperature(logits, targets)
    assert temperature > 2
    before = expected_calibration_error(softmax(logits), targets)
    after = expected_calibration_error(softmax(logits, temperature), targets)
    assert after < 0.05 < before


def test_out_of_fold_predictions_never_see_their_batch():
    x, y = _blobs()
    batches = np.array(["a", "b", "c"] * 30)
    seen = []

    def fit(features, targets):
        seen.append(len(targets))
        return lambda z: np.zeros((len(z), 3))

    logits = out_of_fold(x, y, batches, fit)
    assert seen == [60, 60, 60] and not np.isnan(logits).any()


def test_leave_batch_out_reports_per_batch_scores_and_calibration():
    x, y = _blobs(per_class=24)
    batches = np.tile(np.array(["a", "b", "c"]), 24)
    report = leave_batch_out(x, y, batches, 3, FAST, uncertain_below=0.5)
    assert set(report.per_batch) == {"a", "b", "c"} and report.macro_f1 > 0.8
    assert 0 <= report.ece <= 1 and report.temperature > 0
    assert macro_f1(np.array([0, 1]), np.array([0, 1]), 2) == 1.0


def test_the_risk_operating_point_keeps_precision_and_everyday_flags_within_bounds():
    risk = np.array([0.95, 0.9, 0.7, 0.5, 0.4, 0.3, 0.2, 0.1])
    is_risk = np.array([1, 1, 1, 1, 0, 0, 0, 0], bool)
    everyday = np.linspace(0, 0.45, 100)
    point = choose_threshold(risk, np.zeros(8, bool), is_risk, everyday, np.zeros(100, bool))
    assert point.recall == 1.0 and point.precision >= MIN_PRECISION and point.everyday <= MAX_EVERYDAY
    strict = choose_threshold(risk, np.zeros(8, bool), is_risk, np.full(100, 0.99), np.zeros(100, bool))
    assert strict.threshold == max(t for t in np.arange(0.2, 0.96, 0.025).round(3))  # nothing qualifies


def test_artefacts_are_recorded_and_checked_against_the_manifest(tmp_path):
    x, y = _blobs(classes=2, width=384)
    head = TextHead(("a", "b"), *fit_mlp(x, y, 2, FAST), layers=1)
    path = tmp_path / "head.safetensors"
    head.save(path)
    entry = record_artifact(path, "make it", "d" * 64, {"hidden": 16}, {"f1": 0.9})
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["head.safetensors"] == entry and entry["command"] == "make it"
    assert verified(path) == path
    path.write_bytes(path.read_bytes() + b"x")
    with pytest.raises(ArtifactError, match="differs"):
        verified(path)
