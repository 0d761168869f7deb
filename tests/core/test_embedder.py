"""The NumPy MiniLM: numerics (fast) and parity with sentence-transformers (slow)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from therapist_app.core import embedder
from therapist_app.core.embedder import Embedder, EmbedderUnavailable

SENTENCES = [
    "I keep worrying that something bad is going to happen.",
    "ok",
    "My mum died in March and I still reach for the phone to call her.",
    "The weather's been mild lately, and we went for a long walk by the river on Sunday "
    "afternoon with the kids, then had dinner at my sister's place.",
    "Ünïcode façade — naïve café déjà vu 🙂",
]


def test_erf_matches_the_standard_library():
    xs = np.linspace(-4, 4, 81)
    assert np.max(np.abs(embedder._erf(xs) - [math.erf(x) for x in xs])) < 2e-7


def test_a_folder_without_weights_is_unavailable(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(EmbedderUnavailable):
        Embedder(tmp_path)


@pytest.mark.slow
def test_embeddings_are_unit_vectors_in_input_order():
    model = embedder.default_embedder()
    vectors = model.embed(SENTENCES)
    assert vectors.shape == (len(SENTENCES), embedder.DIMENSION)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # Batching pads to the longest text: each row must equal the text embedded alone.
    alone = np.stack([model.embed([s])[0] for s in SENTENCES])
    assert np.allclose(vectors, alone, atol=1e-4)
    assert model.embed([]).shape == (0, embedder.DIMENSION)
    with pytest.raises(TypeError):
        model.embed("a bare string")


@pytest.mark.slow
def test_parity_with_sentence_transformers():
    sentence_transformers = pytest.importorskip("sentence_transformers")
    reference = sentence_transformers.SentenceTransformer(str(embedder.bundled_model_dir()), device="cpu").encode(
        SENTENCES + ["word " * 400], normalize_embeddings=True
    )
    ours = embedder.default_embedder().embed(SENTENCES + ["word " * 400])
    cosines = np.sum(ours * reference, axis=1)
    assert cosines.min() >= 0.99, cosines
