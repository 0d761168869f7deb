"""Training the app's text heads (emotion reader, risk channel): a one-hidden-layer
network over MiniLM layer features, scored leave-batch-out, calibrated by temperature.

Leave-batch-out is the honest measure: every batch was written by another writer with
another brief, so a head trained without a batch and scored on it shows what text
nobody on the team wrote will get. The same out-of-fold logits fit the temperature
(each fold's calibration measured with a temperature fitted on the other folds).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import numpy as np

from therapist_app.core.text_head import softmax


@dataclass(frozen=True)
class MLPSettings:
    hidden: int = 512
    epochs: int = 60
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    dropout: float = 0.3
    input_dropout: float = 0.1
    label_smoothing: float = 0.05
    batch_size: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        if self.hidden < 1 or self.epochs < 1 or self.batch_size < 1 or not self.learning_rate > 0:
            raise ValueError("hidden, epochs and batch_size must be >= 1 and learning_rate > 0")
        for name in ("dropout", "input_dropout", "label_smoothing", "weight_decay"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name} must be within [0, 1)")

    def as_dict(self) -> dict:
        return asdict(self)


def fit_mlp(
    features: np.ndarray,
    targets: np.ndarray,
    classes: int,
    settings: MLPSettings = MLPSettings(),
    weights: np.ndarray | None = None,
) -> tuple[np.ndarray, ...]:
    """(hidden_w, hidden_b, output_w, output_b) of a GELU network fitted with AdamW;
    `weights` scales each class's loss (None: equal). Deterministic for a seed."""
    import torch

    torch.manual_seed(settings.seed)
    generator = torch.Generator().manual_seed(settings.seed)
    hidden = torch.nn.Linear(features.shape[1], settings.hidden)
    output = torch.nn.Linear(settings.hidden, classes)
    model = torch.nn.Sequential(
        torch.nn.Dropout(settings.input_dropout), hidden, torch.nn.GELU(), torch.nn.Dropout(settings.dropout), output
    )
    optimiser = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)
    x, y = torch.tensor(features, dtype=torch.float32), torch.tensor(targets, dtype=torch.long)
    loss_weights = None if weights is None else torch.tensor(weights, dtype=torch.float32)
    model.train()
    for _ in range(settings.epochs):
        order = torch.randperm(len(y), generator=generator)
        for start in range(0, len(order), settings.batch_size):
            rows = order[start : start + settings.batch_size]
            optimiser.zero_grad()
            loss = torch.nn.functional.cross_entropy(
                model(x[rows]), y[rows], weight=loss_weights, label_smoothing=settings.label_smoothing
            )
            loss.backward()
            optimiser.step()
    return tuple(
        t.detach().numpy().astype(np.float32) for t in (hidden.weight, hidden.bias, output.weight, output.bias)
    )


def fit_temperature(logits: np.ndarray, targets: np.ndarray) -> float:
    """The temperature minimising negative log-likelihood (a 1-D golden-section search
    over log T in [-3, 3]).

    >>> logits = np.array([[4.0, 0.0], [4.0, 0.0], [4.0, 0.0], [0.0, 4.0]])
    >>> round(fit_temperature(logits, np.array([0, 0, 1, 1])), 2) > 1  # overconfident: soften
    True
    """

    def nll(log_t: float) -> float:
        p = softmax(logits, math.exp(log_t))[np.arange(len(targets)), targets]
        return float(-np.log(np.maximum(p, 1e-12)).mean())

    low, high = -3.0, 3.0
    ratio = (math.sqrt(5) - 1) / 2
    for _ in range(60):
        a, b = high - ratio * (high - low), low + ratio * (high - low)
        if nll(a) < nll(b):
            high = b
        else:
            low = a
    return math.exp((low + high) / 2)


def expected_calibration_error(probs: np.ndarray, targets: np.ndarray, bins: int = 15) -> float:
    """Mean |accuracy - confidence| over equal-width confidence bins, weighted by count.

    >>> round(expected_calibration_error(np.array([[0.9, 0.1], [0.9, 0.1]]), np.array([0, 1])), 2)
    0.4
    """
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == targets
    edges = np.linspace(0.0, 1.0, bins + 1)
    error = 0.0
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (confidence > low) & (confidence <= high)
        if inside.any():
            error += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(error)


def out_of_fold(
    features: np.ndarray,
    targets: np.ndarray,
    batches: np.ndarray,
    fit: Callable[[np.ndarray, np.ndarray], Callable[[np.ndarray], np.ndarray]],
    folds: Sequence[str] | None = None,
) -> np.ndarray:
    """Each row's logits from a model fitted without its batch (rows of batches not in
    `folds` train every fold and get no prediction: NaN)."""
    logits = None
    for batch in folds if folds is not None else sorted(set(batches.tolist())):
        held = batches == batch
        predict = fit(features[~held], targets[~held])
        scored = predict(features[held])
        if logits is None:
            logits = np.full((len(targets), scored.shape[1]), np.nan, dtype=np.float64)
        logits[held] = scored
    return logits


def fold_temperatures(
    logits: np.ndarray, targets: np.ndarray, batches: np.ndarray, folds: Sequence[str]
) -> dict[str, float]:
    """For each fold, the temperature fitted on the other folds' out-of-fold logits:
    calibration judged on a batch that played no part in it."""
    return {
        b: fit_temperature(
            logits[(batches != b) & np.isin(batches, folds)], targets[(batches != b) & np.isin(batches, folds)]
        )
        for b in folds
    }
