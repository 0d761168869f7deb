"""The on-disk feature cache behind the heads' training: each text embedded once, the
file read once per process."""

from __future__ import annotations

import numpy as np

from trainer import features


def test_features_are_embedded_once_and_the_cache_file_is_read_once(tmp_path, monkeypatch):
    embedded = []

    def embed_layers(texts):
        embedded.extend(texts)
        return np.stack([np.full((6, 384), len(t), dtype=np.float32) for t in texts])

    loads = []
    real_load = np.load
    monkeypatch.setattr(features.np, "load", lambda *a, **k: loads.append(a[0]) or real_load(*a, **k))
    monkeypatch.setattr(features, "_LOADED", {})
    first = features.layer_features(["ab", "abc"], tmp_path, embed_layers)
    again = features.layer_features(["abc", "abcd"], tmp_path, embed_layers)
    assert first[:, 0, 0].tolist() == [2, 3] and again[:, 0, 0].tolist() == [3, 4]
    assert embedded == ["ab", "abc", "abcd"]
    assert loads == []  # nothing on disk at first, and what was written is already held
    # A new process reads the file once and embeds nothing it holds.
    monkeypatch.setattr(features, "_LOADED", {})
    assert features.layer_features(["abcd", "ab"], tmp_path, embed_layers)[:, 0, 0].tolist() == [4, 2]
    features.layer_features(["abc"], tmp_path, embed_layers)
    assert len(loads) == 1 and embedded == ["ab", "abc", "abcd"]
