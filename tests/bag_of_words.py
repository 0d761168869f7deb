"""A stand-in sentence embedder for tests that must not load MiniLM."""

from __future__ import annotations

import zlib

import numpy as np


def bag_of_words_embed(texts):
    """Bag of words hashed into 64 dimensions: similar wording, similar vector."""
    out = np.zeros((len(texts), 64), dtype=np.float32)
    for row, text in enumerate(texts):
        for word in text.lower().strip(".!?").split():
            out[row, zlib.crc32(word.encode()) % 64] += 1.0
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def keyword_layers(keywords):
    """A stand-in for `Embedder.embed_layers`: one layer whose first dimensions count the
    given keywords in each text (whole words, any case), so a test head can be written
    by hand over them."""

    def embed_layers(texts):
        out = np.zeros((len(texts), 1, 384), dtype=np.float32)
        for row, text in enumerate(texts):
            tokens = [w.strip(".,!?\"'") for w in text.lower().split()]
            for k, keyword in enumerate(keywords):
                out[row, 0, k] = tokens.count(keyword)
        return out

    return embed_layers


def keyword_head(labels, keywords, votes, bias):
    """A TextHead over `keyword_layers`: each keyword adds `votes[keyword]` (a dict of
    label -> logit) and every text starts from `bias` (label -> logit)."""
    from therapist_app.core.text_head import TextHead

    hidden_w = np.zeros((len(keywords), 384), dtype=np.float32)
    hidden_w[np.arange(len(keywords)), np.arange(len(keywords))] = 1.0
    output_w = np.zeros((len(labels), len(keywords)), dtype=np.float32)
    for k, keyword in enumerate(keywords):
        for label, logit in votes.get(keyword, {}).items():
            output_w[labels.index(label), k] = logit / 0.8413  # GELU(1) = 0.8413
    output_b = np.array([bias.get(label, 0.0) for label in labels], dtype=np.float32)
    return TextHead(tuple(labels), hidden_w, np.zeros(len(keywords), np.float32), output_w, output_b, layers=1)
