"""`therapist-trainer train-emotion-head`: the emotion classifier's softmax head.

Multinomial logistic regression on MiniLM sentence embeddings, fitted in NumPy by
full-batch gradient descent with L2 regularisation. Full-batch updates from zero
weights make the result deterministic: the same data gives the same head, byte for
byte (the seed only orders the rows, recorded for completeness).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HeadSettings:
    epochs: int = 600
    learning_rate: float = 2.0
    l2: float = 1e-3
    seed: int = 13

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.learning_rate <= 0 or self.l2 < 0:
            raise ValueError("epochs must be >= 1, learning_rate > 0 and l2 >= 0")


@dataclass(frozen=True)
class LabelledText:
    text: str
    label: str
    split: str


def read_labelled(path: Path, field: str) -> list[LabelledText]:
    """JSONL rows `{"text": ..., field: label, "split": ...}`; split defaults to test."""
    rows = []
    with Path(path).open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                rows.append(LabelledText(record["text"], record[field], record.get("split", "test")))
            except (json.JSONDecodeError, KeyError, TypeError) as problem:
                raise ValueError(f"{path}:{number}: expected a JSON object with text and {field}: {problem}") from None
    if not rows:
        raise ValueError(f"{path} holds no rows")
    return rows


def data_hash(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def fit_softmax(x: np.ndarray, y: np.ndarray, classes: int, settings: HeadSettings) -> tuple[np.ndarray, np.ndarray]:
    """Weights [classes, dim] and bias [classes] minimising mean cross-entropy + l2/2 |W|^2.

    >>> x = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]], dtype=np.float32)
    >>> w, b = fit_softmax(x, np.array([0, 0, 1, 1]), 2, HeadSettings(epochs=200))
    >>> (np.argmax(x @ w.T + b, axis=1) == [0, 0, 1, 1]).all()
    True
    """
    order = np.random.default_rng(settings.seed).permutation(len(y))
    x, y = x[order].astype(np.float64), y[order]
    onehot = np.eye(classes)[y]
    w = np.zeros((classes, x.shape[1]))
    b = np.zeros(classes)
    for _ in range(settings.epochs):
        logits = x @ w.T + b
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        grad = (p - onehot) / len(y)
        w -= settings.learning_rate * (grad.T @ x + settings.l2 * w)
        b -= settings.learning_rate * grad.sum(axis=0)
    return w.astype(np.float32), b.astype(np.float32)


def train_head(data: Path, out: Path, settings: HeadSettings) -> dict:
    from therapist_app.core.embedder import default_embedder, model_version
    from therapist_app.core.emotion import EmotionHead
    from therapist_app.core.taxonomy import emotions
    from trainer.analysis_eval import classification_report

    rows = read_labelled(data, "emotion")
    labels = tuple(emotions())
    unknown = sorted({r.label for r in rows} - set(labels))
    if unknown:
        raise ValueError(f"{data} uses unknown emotion labels {unknown}")
    train = [r for r in rows if r.split == "train"]
    test = [r for r in rows if r.split == "test"]
    if not train or not test:
        raise ValueError(f"{data} needs rows in both the train and the test split")
    embed = default_embedder().embed
    started = time.perf_counter()
    x_train = embed([r.text for r in train])
    w, b = fit_softmax(x_train, np.array([labels.index(r.label) for r in train]), len(labels), settings)
    record = {
        "labels": list(labels),
        "embedding_model": model_version(),
        "training_data": Path(data).name,
        "training_data_sha256": data_hash(data),
        "train_rows": len(train),
        "settings": settings.__dict__,
    }
    head = EmotionHead.from_dict({**record, "weights": w.tolist(), "bias": b.tolist()})
    predicted = np.argmax(head.probabilities(embed([r.text for r in test])), axis=1)
    report = classification_report([r.label for r in test], [labels[i] for i in predicted], labels)
    record["held_out"] = {"rows": len(test), "accuracy": round(report.accuracy, 4),
                          "macro_f1": round(report.macro_f1, 4)}
    record["weights"] = [[round(v, 6) for v in row] for row in w.tolist()]
    record["bias"] = [round(v, 6) for v in b.tolist()]
    Path(out).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    log.info("emotion head trained on %d rows in %.1f s", len(train), time.perf_counter() - started)
    return record


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train-emotion-head",
        help="train the emotion classifier's softmax head on MiniLM embeddings of a labelled JSONL set",
        description="Fit a multinomial logistic regression (NumPy, deterministic) on the train split of "
        "a JSONL file of {text, emotion, split} rows, score it on the test split and write the head JSON.",
    )
    parser.add_argument("--data", type=Path, default=None,
                        help="labelled JSONL (default: the shipped assets/emotion_utterances.jsonl)")
    parser.add_argument("--out", type=Path, default=None,
                        help="where to write the head (default: assets/emotion_head.json)")
    parser.add_argument("--epochs", type=int, default=HeadSettings.epochs, help="full-batch gradient steps")
    parser.add_argument("--learning-rate", type=float, default=HeadSettings.learning_rate, help="step size")
    parser.add_argument("--l2", type=float, default=HeadSettings.l2, help="L2 penalty on the weights")
    parser.add_argument("--seed", type=int, default=HeadSettings.seed, help="row-order seed")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from therapist_app.core.assets import assets_dir
    from therapist_app.core.embedder import EmbedderUnavailable

    data = args.data or assets_dir() / "emotion_utterances.jsonl"
    out = args.out or assets_dir() / "emotion_head.json"
    try:
        settings = HeadSettings(args.epochs, args.learning_rate, args.l2, args.seed)
        record = train_head(data, out, settings)
    except (ValueError, OSError, EmbedderUnavailable) as problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    held = record["held_out"]
    print(f"wrote {out}")
    print(f"RESULT heldout_accuracy={held['accuracy']:.4f} heldout_macro_f1={held['macro_f1']:.4f} rows={held['rows']}")
    return 0
