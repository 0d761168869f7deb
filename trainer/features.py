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


def _key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def layer_features(texts: Sequence[str], cache_dir: Path | None = DEFAULT_CACHE, embed_layers=None) -> np.ndarray:
    """[texts, layers, 384] from `embed_layers` (default: the bundled MiniLM), reading
    and extending a cache file named for the embedding model."""
    from therapist_app.core.embedder import default_embedder, model_version

    embed_layers = embed_layers or default_embedder().embed_layers
    keys = [_key(t) for t in texts]
    known: dict[str, np.ndarray] = {}
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"minilm-layers-{_key(model_version())}.npz"
        if path.is_file():
            with np.load(path) as stored:
                known = dict(zip(stored["keys"].tolist(), stored["features"]))
    missing = list(dict.fromkeys(t for t, k in zip(texts, keys) if k not in known))
    if missing:
        log.info("embedding %d texts (%d cached)", len(missing), len(texts) - len(missing))
        for text, vector in zip(missing, embed_layers(missing)):
            known[_key(text)] = vector
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp.npz")
            np.savez(tmp, keys=np.array(list(known)), features=np.stack(list(known.values())))
            tmp.replace(path)
    if not texts:
        return np.zeros((0, 6, 384), dtype=np.float32)
    return np.stack([known[k] for k in keys]).astype(np.float32)
