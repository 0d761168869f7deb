"""llama.cpp as scripts/setup.sh builds it, patches included (packaging/llama_cpp).

The patches replace ggml's attention loop below 64 query rows, its AMX matrix product
for 2 to 4 rows, and the start of llama.cpp's sampling. These tests hold them to what
they replace: a batch decodes to the logits that one token at a time gives, attention
to what llama.cpp's unfused attention gives, a decode step of several sequences to what
each gives alone, and a chain that starts with top-k samples the tokens that the same
chain samples without the shortcut.
"""

from __future__ import annotations

import contextlib
from unittest import mock

import llama_cpp
import numpy as np
import pytest

from therapist_app.core.llama_runtime import Batch, Context, Model

TEXT = (
    "Client: Work has been piling up for weeks and I lie awake going over it. "
    "Therapist: That sounds exhausting. What goes through your mind at night? "
    "Client: Mostly that I will be found out, that I am not as good as they think. "
) * 6


_default_params = llama_cpp.llama_context_default_params


def params_without_flash_attention():
    # Without flash attention ggml multiplies Q by K, applies a softmax and multiplies
    # by V as three plain operations: none of the patched attention code runs.
    params = _default_params()
    params.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
    return params


class Decoder:
    """One llama.cpp context, and the logits of the tokens a batch asked them for."""

    def __init__(self, model: Model, n_threads: int = 2, flash_attention: bool = True) -> None:
        self.model = model
        params = (
            contextlib.nullcontext()
            if flash_attention
            else mock.patch.object(llama_cpp, "llama_context_default_params", params_without_flash_attention)
        )
        with params:
            self.ctx = Context(model, n_ctx=1024, n_batch=512, n_seq_max=4, n_threads=n_threads)
        self.batch = Batch(512, 4)

    def decode(self, rows: list[tuple[int, int, int, bool]]) -> list[np.ndarray]:
        """rows: (token, position, sequence, wants logits)."""
        self.batch.clear()
        wanted = [self.batch.add(token, pos, (seq,), logits) for token, pos, seq, logits in rows]
        self.ctx.decode(self.batch)
        return [self.logits(i) for i, (*_, logits) in zip(wanted, rows) if logits]

    def logits(self, index: int) -> np.ndarray:
        raw = llama_cpp.llama_get_logits_ith(self.ctx.ptr, index)
        return np.ctypeslib.as_array(raw, shape=(self.model.n_vocab,)).copy()

    def one_at_a_time(self, tokens: list[int], start: int, seq: int, want_last: int) -> list[np.ndarray]:
        out = []
        for i, token in enumerate(tokens):
            out += self.decode([(token, start + i, seq, i >= len(tokens) - want_last)])
        return out

    def close(self) -> None:
        self.batch.close()
        self.ctx.close()


def relative_gap(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


@pytest.fixture(scope="module")
def bundled_decoder(bundled_model):
    with Model(str(bundled_model), 0) as model:
        decoder = Decoder(model)
        yield decoder
        decoder.close()


def batched_and_single(d: Decoder) -> list[tuple[np.ndarray, np.ndarray]]:
    """The last 4 logits of a 160-token batch and of a 40-token batch on top of it,
    each beside the logits of the same tokens decoded one at a time."""
    tokens = d.model.tokenize(TEXT, special=False)
    prompt, tail = tokens[:160], tokens[160:200]
    assert len(tail) == 40
    # 160 rows: ggml's tiled attention and, on AMX, full tiles; one at a time: the
    # row attention path and the one-row product.
    d.ctx.clear()
    batched = d.decode([(t, i, 0, i >= len(prompt) - 4) for i, t in enumerate(prompt)])
    d.ctx.clear()
    single = d.one_at_a_time(prompt, 0, 0, want_last=4)
    # 40 rows on top of the cached prompt: the size of what is left to read when the
    # client's words are submitted (the blocked attention path).
    d.ctx.remove(0, len(prompt))
    batched += d.decode([(t, len(prompt) + i, 0, i >= len(tail) - 4) for i, t in enumerate(tail)])
    d.ctx.remove(0, len(prompt))
    single += d.one_at_a_time(tail, len(prompt), 0, want_last=4)
    return list(zip(batched, single))


@pytest.mark.slow
def test_batches_decode_to_the_logits_of_one_token_at_a_time(bundled_decoder):
    # Different summation orders and the per-row quantisation of activations leave a
    # few percent of the largest logit (measured 2.7%); a wrong kernel is off by the
    # size of the logits themselves. The 64-wide F16 heads take the register kernel.
    for a, b in batched_and_single(bundled_decoder):
        assert relative_gap(a, b) < 0.1
        assert int(b.argmax()) in np.argsort(a)[-3:]


def test_heads_of_other_sizes_match_unfused_attention(tiny_gguf):
    # The tiny model's heads are 16 wide, so the patched attention runs its generic
    # blocked loop (the one non-x86 CPUs and non-F16 caches take), not the row kernel;
    # both the batches and the single tokens go through it. The reference is llama.cpp
    # without flash attention. With F32 weights the two agree to about 2e-5 of the
    # largest logit; a wrong mask or rescale puts them apart by the logits' own size.
    with Model(str(tiny_gguf), 0) as model:
        results = []
        for flash_attention in (True, False):
            decoder = Decoder(model, flash_attention=flash_attention)
            try:
                results.append(batched_and_single(decoder))
            finally:
                decoder.close()
    for (batched, single), (ref_batched, ref_single) in zip(*results):
        assert relative_gap(batched, ref_batched) < 1e-3
        assert relative_gap(single, ref_single) < 1e-3


@pytest.mark.slow
def test_a_step_of_three_sequences_gives_what_each_gives_alone(bundled_decoder):
    d = bundled_decoder
    tokens = d.model.tokenize(TEXT, special=False)
    prompt, nexts = tokens[:120], tokens[120:123]
    d.ctx.clear()
    d.decode([(t, i, 0, False) for i, t in enumerate(prompt)])
    for seq in (1, 2):
        d.ctx.copy_sequence(0, seq, 0, len(prompt))

    together = d.decode([(nexts[seq], len(prompt), seq, True) for seq in range(3)])
    alone = []
    for seq in range(3):
        d.ctx.remove(seq, len(prompt))
        alone += d.decode([(nexts[seq], len(prompt), seq, True)])
    # The same arithmetic per row (bit-identical on the AMX build); each sequence
    # attends to its own tokens only, so the others must not leak in.
    for a, b in zip(together, alone):
        assert relative_gap(a, b) < 1e-3


def sample_tokens(decoder: Decoder, chain, prompt: list[int], steps: int) -> list[int]:
    decoder.ctx.clear()
    decoder.decode([(t, i, 0, i == len(prompt) - 1) for i, t in enumerate(prompt)])
    index, out = len(prompt) - 1, []
    for step in range(steps):
        token = llama_cpp.llama_sampler_sample(chain, decoder.ctx.ptr, 0 if step else index)
        out.append(token)
        decoder.decode([(token, len(prompt) + step, 0, True)])
    return out


def chain_of(*samplers):
    chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
    for sampler in samplers:
        llama_cpp.llama_sampler_chain_add(chain, sampler)
    return chain


def test_top_k_first_samples_what_the_full_candidate_list_samples(tiny_gguf):
    # A chain that starts with top-k takes the patched shortcut (the k best straight
    # from the logits); behind a pass-through temperature of 1 it takes the old path
    # (every token a candidate, then a partial sort).
    with Model(str(tiny_gguf), 0) as model:
        decoder = Decoder(model)
        prompt = model.tokenize(TEXT, special=False)[:40]
        try:
            for k, seed in ((40, 7), (5, 11), (1, 3)):
                shortcut = chain_of(llama_cpp.llama_sampler_init_top_k(k), llama_cpp.llama_sampler_init_dist(seed))
                full = chain_of(
                    llama_cpp.llama_sampler_init_temp(1.0),
                    llama_cpp.llama_sampler_init_top_k(k),
                    llama_cpp.llama_sampler_init_dist(seed),
                )
                try:
                    assert sample_tokens(decoder, shortcut, prompt, 24) == sample_tokens(decoder, full, prompt, 24)
                finally:
                    llama_cpp.llama_sampler_free(shortcut)
                    llama_cpp.llama_sampler_free(full)
            greedy = chain_of(llama_cpp.llama_sampler_init_greedy())
            top1 = chain_of(llama_cpp.llama_sampler_init_top_k(1), llama_cpp.llama_sampler_init_dist(5))
            try:
                assert sample_tokens(decoder, greedy, prompt, 24) == sample_tokens(decoder, top1, prompt, 24)
            finally:
                llama_cpp.llama_sampler_free(greedy)
                llama_cpp.llama_sampler_free(top1)
        finally:
            decoder.close()
