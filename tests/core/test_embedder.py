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


def test_gelu_is_the_exact_erf_based_one():
    xs = np.linspace(-6, 6, 241, dtype=np.float32)
    exact = [0.5 * x * (1 + math.erf(x / math.sqrt(2))) for x in xs.tolist()]
    assert np.max(np.abs(embedder._gelu(xs) - exact)) < 1e-6
    assert np.max(np.abs(embedder._gelu(xs) - 0.5 * xs * (1 + np.tanh(0.79788456 * (xs + 0.044715 * xs**3))))) > 1e-4


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


@pytest.mark.slow
def test_a_turn_and_its_sentences_come_from_one_pass():
    model = embedder.default_embedder()
    text = "Work was fine. The lights are going out for me soon."
    rows = model.embed_spans(text, [(0, len(text)), (15, len(text))])
    assert rows.shape == (3, model.layers, embedder.DIMENSION)
    # The text's row is `embed_layers`', and a span over every word pools every token.
    assert np.allclose(rows[0], model.embed_layers([text])[0], atol=1e-5)
    assert np.allclose(rows[1], rows[0], atol=1e-5)
    # A sentence read in its setting is close to, not the same as, the sentence alone.
    alone = model.embed_layers([text[15:]])[0]
    assert 0.6 < float(np.sum(rows[2, -1] * alone[-1])) < 0.999
    # A span that truncation cut off is encoded on its own, never read as nothing.
    long = "word " * 300 + "I bought rope."
    tail = model.embed_spans(long, [(1500, len(long))])
    assert np.allclose(tail[1], model.embed_layers(["I bought rope."])[0], atol=1e-5)


def test_the_memo_embeds_each_text_once_and_keeps_a_passes_turn():
    calls = []

    def embed_layers(texts):
        calls.append(list(texts))
        return np.stack([np.full((1, 4), len(t), dtype=np.float32) for t in texts])

    def embed_spans(text, spans):
        calls.append([text, *spans])
        return np.stack(
            [np.full((1, 4), len(text), dtype=np.float32)]
            + [np.full((1, 4), b - a, dtype=np.float32) for a, b in spans]
        )

    memo = embedder.LayerMemo(embed_layers, size=2, embed_spans=embed_spans)
    rows = memo.spans("ab. cde.", [(0, 3), (4, 8)])
    assert rows[:, 0, 0].tolist() == [8, 3, 4]
    assert memo(["ab. cde."])[0, 0, 0] == 8 and len(calls) == 1  # the pass's turn row is remembered
    memo(["x", "yy", "x"])
    assert calls[-1] == ["x", "yy"] and len(calls) == 2
    # Without the embedder's `embed_spans` (a stand-in) each sentence is a text of its own.
    plain = embedder.LayerMemo(embed_layers)
    assert plain.spans("ab. cde.", [(0, 3), (4, 8)])[:, 0, 0].tolist() == [8, 3, 4]
    assert calls[-1] == ["ab. cde.", "ab.", "cde."]
