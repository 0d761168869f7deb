"""A small trained classifier over MiniLM features, run in NumPy: no torch in the app.

The emotion reader and the risk detector's learned channel are each one of these: a
one-hidden-layer network over every MiniLM layer's mean-pooled output (`Embedder.
embed_layers`), trained by `therapist-trainer` and shipped as safetensors in
assets/models with a manifest. A fitted temperature divides the logits, so the
probabilities it returns are calibrated on batches the head was not trained on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from therapist_app.core.embedder import MODEL_ID, _gelu

TENSORS = ("hidden.weight", "hidden.bias", "output.weight", "output.bias")


def mlp_logits(params, features: np.ndarray) -> np.ndarray:
    """Logits of the one-hidden-layer GELU network (hidden_w, hidden_b, output_w,
    output_b) over [n, features]: the one implementation the app runs and the trainer
    fits and scores with."""
    hidden_w, hidden_b, output_w, output_b = params
    return _gelu(features @ hidden_w.T + hidden_b) @ output_w.T + output_b


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of logits / temperature.

    >>> softmax(np.array([[0.0, 0.0], [2.0, 0.0]]), 2.0).round(3).tolist()
    [[0.5, 0.5], [0.731, 0.269]]
    """
    z = logits / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class HeadError(ValueError):
    """A head file that is missing, unreadable, or does not fit the labels or the embedder."""


@dataclass(frozen=True)
class TextHead:
    labels: tuple[str, ...]
    hidden_w: np.ndarray  # [hidden, features]
    hidden_b: np.ndarray
    output_w: np.ndarray  # [labels, hidden]
    output_b: np.ndarray
    temperature: float = 1.0
    layers: int = 6
    """How many MiniLM layers' pooled outputs the features hold (the last ones)."""
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        hidden, features = self.hidden_w.shape
        if (
            self.hidden_b.shape != (hidden,)
            or self.output_w.shape != (len(self.labels), hidden)
            or self.output_b.shape != (len(self.labels),)
        ):
            raise HeadError(
                f"head tensors do not fit together: hidden {self.hidden_w.shape}, "
                f"output {self.output_w.shape}, {len(self.labels)} labels"
            )
        if features % 384 or features // 384 != self.layers:
            raise HeadError(f"the head reads {features} features, not {self.layers} MiniLM layers")
        if not self.temperature > 0:
            raise HeadError(f"temperature must be above 0, not {self.temperature}")

    def features(self, layer_outputs: np.ndarray) -> np.ndarray:
        """[n, layers, 384] from the embedder -> the [n, features] this head reads."""
        return np.asarray(layer_outputs[:, -self.layers :], dtype=np.float32).reshape(len(layer_outputs), -1)

    def logits(self, layer_outputs: np.ndarray) -> np.ndarray:
        return mlp_logits((self.hidden_w, self.hidden_b, self.output_w, self.output_b), self.features(layer_outputs))

    def probabilities(self, layer_outputs: np.ndarray) -> np.ndarray:
        """Calibrated probabilities [n, labels]."""
        return softmax(self.logits(layer_outputs), self.temperature)

    def save(self, path: Path) -> None:
        from safetensors.numpy import save_file

        tensors = dict(zip(TENSORS, (self.hidden_w, self.hidden_b, self.output_w, self.output_b)))
        meta = {
            "labels": json.dumps(list(self.labels)),
            "temperature": repr(float(self.temperature)),
            "layers": str(self.layers),
            "embedding_model": MODEL_ID,
            "metadata": json.dumps(self.metadata, sort_keys=True),
        }
        save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}, str(path), meta)

    @classmethod
    def load(cls, path: Path, labels: tuple[str, ...] | None = None) -> "TextHead":
        """Read a head; `labels` (in any order) must be exactly the head's."""
        try:
            from safetensors import SafetensorError, safe_open
        except ImportError as missing:
            raise HeadError(f"reading a head needs the safetensors package: {missing}") from None
        try:
            with safe_open(str(path), framework="numpy") as f:
                meta = f.metadata() or {}
                tensors = [f.get_tensor(name) for name in TENSORS]
        except (OSError, ValueError, KeyError, SafetensorError) as problem:
            raise HeadError(f"cannot read the head {Path(path).name}: {problem}") from None
        try:
            head_labels = tuple(json.loads(meta["labels"]))
            model = meta["embedding_model"]
            head = cls(
                head_labels,
                *tensors,
                temperature=float(meta["temperature"]),
                layers=int(meta["layers"]),
                metadata=json.loads(meta.get("metadata", "{}")),
            )
        except (KeyError, ValueError, TypeError) as problem:
            raise HeadError(f"{Path(path).name} lacks head metadata: {problem}") from None
        if model != MODEL_ID:
            raise HeadError(f"{Path(path).name} was trained on {model!r}, not {MODEL_ID}")
        if labels is not None and set(labels) != set(head_labels):
            raise HeadError(f"{Path(path).name} labels {sorted(head_labels)} differ from {sorted(labels)}")
        return head
