"""Checks an exported GGUF against the Hugging Face model it came from.

- it loads in llama.cpp;
- next-token logits agree with the Hugging Face model on a fixed set of prompts rendered
  by the dialogue format (the same token ids go into both, so only the weights and the
  graph are compared); the tokenizers are compared separately;
- the GGUF's chat template renders the dialogue format byte for byte;
- `<|im_end|>` is the model's end-of-generation token, and short sampled generations
  end on it instead of running into a new turn.
"""

from __future__ import annotations

import ctypes
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from therapist_app.core import dialogue_format as fmt
from therapist_app.core.dialogue_format import EmotionReading, SuggestionRequest, Turn
from therapist_app.core.llama_runtime import Batch, Context, Model, Sampler, SamplingParams
from therapist_app.core.model_manifest import Verification

log = logging.getLogger(__name__)

FLOAT_TYPES = ("f32", "f16")


@dataclass(frozen=True)
class ParityThresholds:
    min_top1: float = 0.99
    """Least top-1 agreement a float export (f32/f16) must reach."""
    max_rel_logit_error: float = 0.05
    """Largest |llama.cpp - HF| logit difference of a float export, as a fraction of the
    spread (standard deviation) of the reference logits at that position."""
    positions_per_prompt: int = 24
    """Next-token positions compared per prompt, counted back from its end."""
    generation_tokens: int = 96
    """Most tokens generated per prompt by the stop check."""
    require_stop: bool = True
    """Whether it fails the export when no sampled reply reaches `<|im_end|>` (a reply
    running into a new turn always fails it)."""

    def __post_init__(self) -> None:
        if not 0.0 < self.min_top1 <= 1.0:
            raise ValueError("min_top1 must be within (0, 1]")
        if self.max_rel_logit_error <= 0 or self.positions_per_prompt < 1 or self.generation_tokens < 1:
            raise ValueError("thresholds and counts must be positive")


def parity_requests() -> list[SuggestionRequest]:
    """The fixed prompt set: short authored exchanges across emotions and strategies."""
    return [
        SuggestionRequest("I can't sleep before work and I keep going over everything I said."),
        SuggestionRequest(
            "My sister didn't call on my birthday again.",
            (Turn("client", "Family stuff has been hard."), Turn("therapist", "Tell me more about that.")),
            EmotionReading("sadness", 0.8),
            "reflection",
        ),
        SuggestionRequest(
            "I finally told my boss no, and nothing bad happened.",
            emotion=EmotionReading("hope", 0.9),
            strategy="affirmation",
        ),
        SuggestionRequest(
            "Everyone expects me to hold it together all the time.",
            emotion=EmotionReading("anger", 0.6),
            strategy="question",
        ),
        SuggestionRequest("I don't know if therapy is working for me.", strategy="restatement"),
        SuggestionRequest(
            "I keep checking the door lock three or four times.",
            emotion=EmotionReading("fear", 0.7),
            strategy="information",
        ),
    ]


@dataclass(frozen=True)
class Reference:
    """The Hugging Face model's logits at the compared positions of each prompt."""

    tokens: list[list[int]]
    positions: list[list[int]]
    logits: list[np.ndarray]
    hf_tokens: list[list[int]]


def _probe_messages() -> list[list[fmt.Message]]:
    return [fmt.build_messages(r) for r in parity_requests()]


def prompt_tokens(model: Model) -> list[list[int]]:
    """Prompt token ids as the app makes them (turn markers read as special tokens).

    The prompts are our own text, so the only markers in them are the real ones.
    """
    return [model.tokenize(fmt.render_prompt(r), special=True) for r in parity_requests()]


def hf_reference(hf_dir: Path, tokens: list[list[int]], thresholds: ParityThresholds, threads: int) -> Reference:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(threads)
    tokenizer = AutoTokenizer.from_pretrained(hf_dir)
    model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32)
    model.eval()
    positions, logits, hf_tokens = [], [], []
    with torch.inference_mode():
        for request, ids in zip(parity_requests(), tokens):
            hf_tokens.append(tokenizer(fmt.render_prompt(request), add_special_tokens=False)["input_ids"])
            chosen = list(range(max(0, len(ids) - thresholds.positions_per_prompt), len(ids)))
            out = model(torch.tensor([ids])).logits[0, chosen].float().numpy()
            positions.append(chosen)
            logits.append(out)
    return Reference(tokens, positions, logits, hf_tokens)


def llama_logits(model: Model, tokens: list[int], positions: list[int], threads: int) -> np.ndarray:
    """llama.cpp's logits at `positions` after decoding `tokens` in one batch."""
    wanted = set(positions)
    n = len(tokens)
    batch = Batch(max(n, 8), 1)
    try:
        with Context(model, max(256, n + 8), max(n, 8), 1, threads) as ctx:
            index = {}
            for pos, token in enumerate(tokens):
                i = batch.add(token, pos, (0,), pos in wanted)
                if pos in wanted:
                    index[pos] = i
            ctx.decode(batch)
            rows = [
                np.ctypeslib.as_array(llama_cpp_logits(ctx, index[pos]), shape=(model.n_vocab,)).copy()
                for pos in positions
            ]
    finally:
        batch.close()
    return np.stack(rows)


def llama_cpp_logits(ctx: Context, batch_index: int):
    import llama_cpp

    ptr = llama_cpp.llama_get_logits_ith(ctx.ptr, batch_index)
    if not ptr:
        raise RuntimeError("llama.cpp returned no logits for that position")
    return ctypes.cast(ptr, ctypes.POINTER(ctypes.c_float))


def template_matches(model: Model) -> bool:
    """The GGUF's template renders each probe exactly as `render_chatml` does."""
    template = model.chat_template()
    if not template:
        return False
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    compiled = ImmutableSandboxedEnvironment().from_string(template)
    for messages in _probe_messages():
        plain = [{"role": m.role, "content": m.content} for m in messages]
        for generation_prompt in (True, False):
            if compiled.render(messages=plain, add_generation_prompt=generation_prompt) != fmt.render_chatml(
                messages, add_generation_prompt=generation_prompt
            ):
                return False
    return True


def stop_token_is_eog(model: Model) -> bool:
    ids = model.tokenize(fmt.IM_END, special=True)
    if len(ids) != 1:
        return False
    eos = model.meta("tokenizer.ggml.eos_token_id")
    return model.is_end_of_generation(ids[0]) and eos == str(ids[0])


@dataclass(frozen=True)
class StopCheck:
    stopped: int
    """Generations that ended on an end-of-generation token within the limit."""
    generations: int
    ran_past_end: bool
    """`<|im_end|>` was generated without ending the generation: the run-on the app must never see."""


def sampled_stops(model: Model, prompts: list[list[int]], max_new: int, threads: int) -> StopCheck:
    """Generate from each prompt with the app's default sampling (repeat penalty included:
    greedy decoding of a small model loops instead of ending), watching how each ends."""
    # Ending the turn without stopping is a file defect (the stop token is not marked as
    # end of generation); whatever else a small model samples is its own quality.
    markers = set(model.tokenize(fmt.IM_END, special=True))
    longest = max(len(p) for p in prompts)
    batch = Batch(max(longest, 8), 1)
    try:
        ctx = Context(model, max(256, longest + max_new + 8), max(longest, 8), 1, threads)
    except RuntimeError:
        batch.close()
        raise
    stopped, ran_past = 0, False
    try:
        for seed, tokens in enumerate(prompts):
            ctx.clear()
            batch.clear()
            for pos, token in enumerate(tokens):
                batch.add(token, pos, (0,), pos == len(tokens) - 1)
            ctx.decode(batch)
            last, pos = batch.n_tokens - 1, len(tokens)
            sampler = Sampler(SamplingParams(), seed, model.n_vocab)
            try:
                for _ in range(max_new):
                    token = sampler.sample(ctx, last)
                    if model.is_end_of_generation(token):
                        stopped += 1
                        break
                    if token in markers:
                        ran_past = True
                        break
                    batch.clear()
                    batch.add(token, pos, (0,), True)
                    ctx.decode(batch)
                    last, pos = 0, pos + 1
            finally:
                sampler.close()
        return StopCheck(stopped, len(prompts), ran_past)
    finally:
        ctx.close()
        batch.close()


def verify_gguf(
    path: Path,
    quantisation: str,
    reference: Reference,
    thresholds: ParityThresholds,
    threads: int,
    notes: tuple[str, ...] = (),
) -> Verification:
    try:
        model = Model(str(path), 0)
    except RuntimeError:
        return Verification(
            False,
            False,
            False,
            False,
            False,
            0.0,
            float("inf"),
            float("inf"),
            0,
            False,
            notes + ("llama.cpp could not load the file",),
        )
    with model:
        tokens = prompt_tokens(model)
        tokenizer_ok = tokens == reference.tokens and tokens == reference.hf_tokens
        agree = compared = 0
        max_err = mean_sum = 0.0
        worst_rel = 0.0
        for ids, positions, expected in zip(reference.tokens, reference.positions, reference.logits):
            got = llama_logits(model, ids, positions, threads)
            errors = np.abs(got - expected)
            agree += int(np.sum(np.argmax(got, axis=1) == np.argmax(expected, axis=1)))
            compared += len(positions)
            max_err = max(max_err, float(errors.max()))
            mean_sum += float(errors.mean(axis=1).sum())
            spread = expected.std(axis=1)
            worst_rel = max(worst_rel, float((errors.max(axis=1) / np.maximum(spread, 1e-6)).max()))
        top1 = agree / compared
        template_ok = template_matches(model)
        eog_ok = stop_token_is_eog(model)
        stops = sampled_stops(model, reference.tokens, thresholds.generation_tokens, threads)
    stopped = stops.stopped > 0 and not stops.ran_past_end
    extra = [
        f"worst logit error / reference spread = {worst_rel:.4f}",
        f"{stops.stopped} of {stops.generations} sampled replies ended at {fmt.IM_END} within "
        f"{thresholds.generation_tokens} tokens",
    ]
    if stops.ran_past_end:
        extra.append(f"a generation produced {fmt.IM_END} without stopping: it ran past the reply")
    passed = (
        template_ok and eog_ok and tokenizer_ok and not stops.ran_past_end and (stopped or not thresholds.require_stop)
    )
    if quantisation in FLOAT_TYPES:
        parity_ok = top1 >= thresholds.min_top1 and worst_rel <= thresholds.max_rel_logit_error
        passed = passed and parity_ok
        if not parity_ok:
            extra.append(
                f"float parity below threshold (top-1 {top1:.4f} >= {thresholds.min_top1}, "
                f"relative error {worst_rel:.4f} <= {thresholds.max_rel_logit_error})"
            )
    log.info(
        "verified %s: top-1 %.4f over %d positions, max |dlogit| %.4f, template %s, stop %s",
        path.name,
        top1,
        compared,
        max_err,
        template_ok,
        stopped,
    )
    return Verification(
        loads=True,
        template_matches=template_ok,
        tokenizer_matches=tokenizer_ok,
        stop_token_is_eog=eog_ok,
        generation_stopped=stopped,
        top1_agreement=round(top1, 6),
        max_abs_logit_error=round(max_err, 6),
        mean_abs_logit_error=round(mean_sum / compared, 6),
        positions_compared=compared,
        passed=passed,
        notes=notes + tuple(extra),
    )
