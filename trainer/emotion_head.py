"""`therapist-trainer train-emotion-head`: the emotion reader's head, scored leave-batch-out.

A one-hidden-layer network over MiniLM layer features (`trainer/text_heads.py`), trained
on the authored client turns: the batches of assets/corpus/emotion (each by another
writer with another brief) and the older one-author set assets/emotion_utterances.jsonl
as batch e00. Every batch is scored by a head trained without it; that mean macro-F1 is
the headline. The same out-of-fold logits fit the temperature (and each fold's
calibration error is measured with a temperature fitted on the other folds). The shipped
head is trained on every batch and written to assets/models with its manifest entry.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from therapist_app.core.text_head import mlp_logits, softmax
from trainer.data.labelled import LabelledRow, read_batches, read_rows
from trainer.text_heads import (
    MLPSettings,
    expected_calibration_error,
    fit_mlp,
    fit_temperature,
    fold_temperatures,
    out_of_fold,
)

log = logging.getLogger(__name__)

LEGACY_BATCH = "e00"
COMMAND = "therapist-trainer train-emotion-head"


def emotion_rows(folder: Path | None = None, legacy: Path | None = None) -> list[LabelledRow]:
    from therapist_app.core.assets import assets_dir
    from therapist_app.core.taxonomy import emotions

    labels = tuple(emotions())
    rows = read_batches(folder or assets_dir() / "corpus" / "emotion", "emotion", labels)
    legacy = legacy if legacy is not None else assets_dir() / "emotion_utterances.jsonl"
    if legacy.is_file():
        rows += read_rows(legacy, "emotion", batch=LEGACY_BATCH, allowed=labels)
    return rows


def macro_f1(gold: np.ndarray, predicted: np.ndarray, classes: int) -> float:
    """>>> macro_f1(np.array([0, 0, 1]), np.array([0, 1, 1]), 2)
    0.6666666666666666
    """
    scores = []
    for c in range(classes):
        tp = int(((predicted == c) & (gold == c)).sum())
        wrong = int(((predicted == c) != (gold == c)).sum())
        scores.append(2 * tp / (2 * tp + wrong) if tp else 0.0)
    return float(np.mean(scores))


@dataclass(frozen=True)
class LeaveBatchOut:
    per_batch: dict[str, float]
    macro_f1: float
    accuracy: float
    ece_uncalibrated: float
    ece: float
    temperature: float
    uncertain_share: float
    accuracy_when_sure: float
    accuracy_when_uncertain: float

    def metrics(self) -> dict:
        return {
            k: (round(v, 4) if isinstance(v, float) else {b: round(s, 4) for b, s in v.items()})
            for k, v in self.__dict__.items()
        }


def leave_batch_out(
    features: np.ndarray,
    targets: np.ndarray,
    batches: np.ndarray,
    classes: int,
    settings: MLPSettings,
    uncertain_below: float,
) -> LeaveBatchOut:
    def fit(x, y):
        params = fit_mlp(x, y, classes, settings)
        return lambda z: mlp_logits(params, z)

    folds = sorted(set(batches.tolist()))
    logits = out_of_fold(features, targets, batches, fit)
    predicted = logits.argmax(axis=1)
    per_batch = {b: macro_f1(targets[batches == b], predicted[batches == b], classes) for b in folds}
    temperatures = fold_temperatures(logits, targets, batches, folds)
    calibrated = np.zeros_like(logits)
    for b, t in temperatures.items():
        calibrated[batches == b] = softmax(logits[batches == b], t)
    confidence = calibrated.max(axis=1)
    right = predicted == targets
    sure = confidence >= uncertain_below
    return LeaveBatchOut(
        per_batch=per_batch,
        macro_f1=float(np.mean(list(per_batch.values()))),
        accuracy=float(right.mean()),
        ece_uncalibrated=expected_calibration_error(softmax(logits), targets),
        ece=expected_calibration_error(calibrated, targets),
        temperature=fit_temperature(logits, targets),
        uncertain_share=float((~sure).mean()),
        accuracy_when_sure=float(right[sure].mean()) if sure.any() else 0.0,
        accuracy_when_uncertain=float(right[~sure].mean()) if (~sure).any() else 0.0,
    )


def train_emotion_head(out: Path, settings: MLPSettings, folder: Path | None = None) -> tuple[LeaveBatchOut, dict]:
    from therapist_app.core.emotion import UNCERTAIN_BELOW
    from therapist_app.core.taxonomy import emotions
    from therapist_app.core.text_head import TextHead
    from trainer.artifacts import record_artifact
    from trainer.data.records import file_sha256
    from trainer.features import layer_features

    labels = tuple(emotions())
    rows = emotion_rows(folder)
    layers = layer_features([r.text for r in rows])
    features = layers.reshape(len(rows), -1)
    targets = np.array([labels.index(r.label) for r in rows])
    batches = np.array([r.batch for r in rows])
    report = leave_batch_out(features, targets, batches, len(labels), settings, UNCERTAIN_BELOW)
    params = fit_mlp(features, targets, len(labels), settings)
    head = TextHead(
        labels,
        *params,
        temperature=report.temperature,
        layers=layers.shape[1],
        metadata={"rows": len(rows), "batches": sorted(set(batches.tolist()))},
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    head.save(out)
    sources = sorted({*(folder or Path()).glob("*.jsonl")}) if folder else None
    from therapist_app.core.assets import assets_dir

    files = sources or sorted((assets_dir() / "corpus" / "emotion").glob("*.jsonl")) + [
        assets_dir() / "emotion_utterances.jsonl"
    ]
    entry = record_artifact(
        out,
        COMMAND,
        file_sha256(*files),
        settings.as_dict(),
        {"leave_batch_out": report.metrics(), "uncertain_below": UNCERTAIN_BELOW},
        {"files": [f.name for f in files], "rows": len(rows)},
    )
    return report, entry


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train-emotion-head",
        help="train the emotion reader's head on the authored batches, scored leave-batch-out",
        description="Fit the emotion head (an MLP over MiniLM layer features) on every authored batch, "
        "score each batch with a head trained without it, fit the temperature on those held-out "
        "predictions, and write assets/models/emotion_head.safetensors with its manifest entry.",
    )
    parser.add_argument(
        "--data", type=Path, default=None, help="a folder of batch files (default: the shipped assets/corpus/emotion)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where to write the head (default: assets/models/emotion_head.safetensors)",
    )
    parser.add_argument("--hidden", type=int, default=MLPSettings.hidden, help="hidden units")
    parser.add_argument("--epochs", type=int, default=MLPSettings.epochs, help="passes over the rows")
    parser.add_argument("--seed", type=int, default=MLPSettings.seed, help="initialisation and order seed")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from therapist_app.core.artifacts import models_dir
    from therapist_app.core.embedder import EmbedderUnavailable
    from trainer.data.records import DataError

    out = args.out or models_dir() / "emotion_head.safetensors"
    try:
        settings = MLPSettings(hidden=args.hidden, epochs=args.epochs, seed=args.seed)
        report, _ = train_emotion_head(out, settings, args.data)
    except (ValueError, OSError, EmbedderUnavailable, DataError) as problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    for batch, score in report.per_batch.items():
        print(f"held out {batch}: macro-F1 {score:.4f}")
    print(f"wrote {out}")
    print(
        f"RESULT lbo_macro_f1={report.macro_f1:.4f} lbo_accuracy={report.accuracy:.4f} "
        f"ece={report.ece:.4f} ece_uncalibrated={report.ece_uncalibrated:.4f} "
        f"temperature={report.temperature:.3f} uncertain_share={report.uncertain_share:.4f}"
    )
    return 0
