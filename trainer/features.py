"""MiniLM layer features of many texts, cached on disk: the emotion and risk heads are
trained and evaluated on thousands of texts, and their features do not change unless the
text or the embedding model does."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Sequence

import numpy as np

log = logging.getLogger(__name__)

DEFAULT_CACHE = Path("runs") / "features"
_LOADED: dict[Path, dict[str, np.ndarray]] = {}


def _key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def layer_features(texts: Sequence[str], cache_dir: Path | None = DEFAULT_CACHE, embed_layers=None) -> np.ndarray:
    """[texts, layers, 384] from `embed_layers` (default: the bundled MiniLM), reading
    and extending a cache file named for the embedding model."""
    from therapist_app.core.embedder import default_embedder

    embed_layers = embed_layers or default_embedder().embed_layers

    def compute(missing: list[str]) -> dict[str, np.ndarray]:
        log.info("embedding %d texts (%d cached)", len(missing), len(texts) - len(missing))
        return {_key(text): vector for text, vector in zip(missing, embed_layers(missing))}

    if not texts:
        return np.zeros((0, 6, 384), dtype=np.float32)
    known = _cached({_key(t): t for t in texts}, compute, cache_dir)
    return np.stack([known[_key(t)] for t in texts]).astype(np.float32)


def unit_features(texts: Sequence[str], cache_dir: Path | None = DEFAULT_CACHE) -> list[np.ndarray]:
    """Per text, the rows the risk detector's learned channel reads of it: [units, layers,
    384], the turn and then each of its sentences pooled from the turn's own pass, as
    `RiskDetector` computes them (an empty array when idioms are all it says)."""
    from therapist_app.core.embedder import default_embedder
    from therapist_app.core.risk import learned_reading

    readings = {t: learned_reading(t) for t in texts}

    def unit_keys(text: str) -> list[str]:
        masked, spans = readings[text]
        return [_key(f"span {a}:{b}\0{masked}") for a, b in spans]

    def compute(missing: list[str]) -> dict[str, np.ndarray]:
        log.info("embedding %d turns with their sentences", len(missing))
        embedder, found = default_embedder(), {}
        for text in missing:
            masked, spans = readings[text]
            found.update(zip(unit_keys(text), embedder.embed_spans(masked, spans[1:])))
        return found

    wanted = {k: t for t in readings for k in unit_keys(t)}
    known = _cached(wanted, compute, cache_dir)
    return [np.stack([known[k] for k in unit_keys(t)]) if unit_keys(t) else np.zeros((0, 6, 384)) for t in texts]


def _cached(wanted: dict[str, str], compute, cache_dir: Path | None) -> dict[str, np.ndarray]:
    """Rows by key: those in the cache file named for the embedding model, and `compute`
    (the distinct texts behind the missing keys -> rows by key) for the rest, which are
    added to the file."""
    from therapist_app.core.embedder import model_version

    known: dict[str, np.ndarray] = {}
    path = None
    if cache_dir is not None:
        path = Path(cache_dir).resolve() / f"minilm-layers-{_key(model_version())}.npz"
        # Read once per process: training a head asks for features five times, and the
        # file holds every row ever embedded (half a gigabyte).
        known = _LOADED.setdefault(path, {})
        if not known and path.is_file():
            with np.load(path) as stored:
                known.update(zip(stored["keys"].tolist(), stored["features"]))
    missing = list(dict.fromkeys(text for key, text in wanted.items() if key not in known))
    if missing:
        known.update(compute(missing))
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp.npz")
            np.savez(tmp, keys=np.array(list(known)), features=np.stack(list(known.values())))
            tmp.replace(path)
    return known
