"""Inference speed of the suggestion engine on the bundled model, as ratios.

(a) llama_ratio: our decode tokens/s over llama.cpp's own decode rate (its perf
    counters) for the same rounds: what our Python loop and sampling cost.
(b) batch3_ratio: wall time of a round of 3 suggestions over a round of 1 (pairs with
    the same request and seed, a seed per pair).
(c) vs_transformers: our decode tokens/s over transformers' fp32 `generate` decode
    tokens/s (prompt and first token timed apart and left out, as on our side) on the
    same weights, loaded from the same GGUF (needs the train extra: torch, transformers,
    gguf).
(d) warm_ttft_ratio: time to first token on the app's path, over the same request
    from a cold cache. The app primes the session's earlier turns when the therapist's
    reply is recorded, and the client's words when typing pauses (after each word), so
    at submission the cache holds everything up to the last word typed.
    warm_transcript_ratio primes the earlier turns only; warm_unprimed_ratio primes
    nothing (only the previous round's prompt is cached).
(f) tuned_decode_ratio: decode tokens/s of the app's default (the bundled model with
    its tuned LoRA adapter merged in, `core/adapter_merge.py`) over the bundled model
    alone, the same single-draft rounds alternated; adapter_decode_ratio the same with
    the adapter applied by llama.cpp at load instead (only when the build ships an
    adapter).
(e) bestofn_ratio: wall time of the app's best-of-N round (the configured candidates,
    6, decoded together and ranked with the MiniLM embedder and emotion head, 3 shown)
    over today's round of 3 drafts; bestofn_ttft_ratio: their median times to first
    token (pairs with the same request and seed, a seed per pair).

Usage: .venv/bin/python bench/inference.py [--threads 2] [--rounds 4] [--skip-transformers]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

from therapist_app.core.best_of_n import DraftScorer, default_scorer
from therapist_app.core.dialogue_format import EmotionReading, SuggestionRequest, Turn
from therapist_app.core.draft_round import DraftRound
from therapist_app.core.engine import EngineConfig, SuggestionEngine
from therapist_app.core.model_file import bundled_model_path

CLIENT_TURNS = [
    ("I've been feeling on edge all week and I can't switch off at night.", "anxiety"),
    ("Work keeps piling up and my manager doesn't seem to notice how much I do.", "stress"),
    ("Sometimes I just sit in the car after work because I don't want to go in.", "depression"),
    ("My brother says I'm overreacting, and maybe he's right.", "shame"),
    ("I did manage a walk on Sunday though, and that felt good.", "hope"),
]


def conversation(k: int) -> SuggestionRequest:
    """The k-th request of a scripted session: earlier turns become its context."""
    context: list[Turn] = [Turn("therapist", "What would you like to focus on today?")]
    for words, _ in CLIENT_TURNS[:k]:
        context += [Turn("client", words), Turn("therapist", "That sounds like a lot to carry.")]
    words, emotion = CLIENT_TURNS[k]
    return SuggestionRequest(words, tuple(context), EmotionReading(emotion, 0.8))


def measure_decode(engine: SuggestionEngine, rounds: int) -> tuple[float, float]:
    """(our tokens/s, llama.cpp's tokens/s) over single-suggestion rounds."""
    ours_tokens = ours_seconds = 0.0
    llama_ms = llama_calls = 0.0
    for k in range(rounds):
        engine.reset_session()
        engine._ctx.reset_perf()
        result = engine.complete(conversation(k % len(CLIENT_TURNS)), n=1)
        perf = engine.perf()
        # The first token comes from the prompt batch; every later one from a one-token
        # decode step, which is what llama.cpp's decode counters time.
        ours_tokens += result.stats.decode_steps
        ours_seconds += result.stats.decode_s
        llama_ms += perf.decode_ms
        llama_calls += perf.decode_calls
    return ours_tokens / ours_seconds, llama_calls / (llama_ms / 1000)


def measure_batch(engine: SuggestionEngine, rounds: int) -> float:
    """Mean wall time of a round of 3 over a round of 1, same request and seed in a pair.

    A round lasts as long as its longest draft, and where a draft stops depends on
    what is sampled: each pair gets a seed of its own, so the figure averages over
    draft lengths instead of resting on one seed's drafts per request, and there are
    3 * rounds pairs because single rounds on these machines vary by 30%.
    """
    one, three = [], []
    base = engine.config
    for k in range(3 * rounds):
        request = conversation(k % len(CLIENT_TURNS))
        engine.config = dataclasses.replace(base, seed=base.seed + 101 * k)
        for n, bucket in ((1, one), (3, three)) if k % 2 == 0 else ((3, three), (1, one)):
            engine.reset_session()
            started = time.perf_counter()
            engine.complete(request, n=n)
            bucket.append(time.perf_counter() - started)
    engine.config = base
    return statistics.mean(three) / statistics.mean(one)


def measure_bestofn(engine: SuggestionEngine, scorer: DraftScorer, rounds: int) -> tuple[float, float]:
    """(best-of-N round time / round-of-3 time, best-of-N TTFT / round-of-3 TTFT)."""
    three, best, three_ttft, best_ttft = [], [], [], []
    for k in range(3 * rounds):
        request = conversation(k % len(CLIENT_TURNS))
        seed = engine.config.seed + 101 * k
        runs = (("three", three, three_ttft), ("best", best, best_ttft))
        for kind, times, ttfts in runs if k % 2 == 0 else runs[::-1]:
            engine.reset_session()
            started = time.perf_counter()
            if kind == "three":
                stats = engine.complete(request, n=3, seed=seed).stats
            else:
                stats = DraftRound(engine, request, scorer, seed=seed).complete().stats
            times.append(time.perf_counter() - started)
            ttfts.append(stats.ttft_s)
    return (
        statistics.mean(best) / statistics.mean(three),
        statistics.median(best_ttft) / statistics.median(three_ttft),
    )


def measure_tuned(threads: int, rounds: int) -> dict[str, float]:
    """Decode tokens/s of the tuned default (merged, and with the adapter applied at
    load) over the bundled model alone, rounds alternated."""
    from therapist_app.core.model_file import default_adapter_path

    adapter = default_adapter_path()
    if adapter is None:
        return {}
    setups = {"base": (None, True), "merged": (adapter, True), "at_load": (adapter, False)}
    rates: dict[str, list[float]] = {name: [] for name in setups}
    engines = {
        name: SuggestionEngine(
            EngineConfig(adapter_path=lora, merge_adapter=merge, n_threads=threads, max_tokens=48, seed=11)
        )
        for name, (lora, merge) in setups.items()
    }
    try:
        for k in range(2 * rounds):
            order = list(setups) if k % 2 == 0 else list(reversed(setups))
            for name in order:
                engine = engines[name]
                engine.reset_session()
                stats = engine.complete(conversation(k % len(CLIENT_TURNS)), n=1).stats
                if stats.decode_s > 0:
                    rates[name].append(stats.decode_steps / stats.decode_s)
    finally:
        for engine in engines.values():
            engine.close()
    base = statistics.median(rates["base"])
    return {
        "tuned_decode_ratio": statistics.median(rates["merged"]) / base,
        "adapter_decode_ratio": statistics.median(rates["at_load"]) / base,
    }


def measure_ttft(engine: SuggestionEngine) -> dict[str, float]:
    """Medians of time to first token, each over the same request from a cold cache."""
    paths = {"warm_ttft_ratio": [], "warm_transcript_ratio": [], "warm_unprimed_ratio": []}
    cold = []
    for k in range(1, len(CLIENT_TURNS)):
        request = conversation(k)
        # Typing pauses after each word; submission follows the last one at once.
        typed = request.client_words.rsplit(" ", 1)[0]
        for name, primes in (
            ("warm_ttft_ratio", ("", typed)),
            ("warm_transcript_ratio", ("",)),
            ("warm_unprimed_ratio", ()),
        ):
            engine.reset_session()
            engine.complete(conversation(k - 1), n=1)
            for draft in primes:
                engine.prime(request.context, draft)
            paths[name].append(engine.complete(request, n=1).stats.ttft_s)
        engine.reset_session()
        cold.append(engine.complete(request, n=1).stats.ttft_s)
    base = statistics.median(cold)
    return {name: statistics.median(times) / base for name, times in paths.items()}


def transformers_tokens_per_second(threads: int, new_tokens: int = 48) -> float:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from therapist_app.core import dialogue_format as fmt

    torch.set_num_threads(threads)
    path = bundled_model_path()
    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
    model.eval()
    inputs = tokenizer(fmt.render_prompt(conversation(0)), return_tensors="pt", add_special_tokens=False)

    def seconds(n: int) -> float:
        started = time.perf_counter()
        out = model.generate(**inputs, max_new_tokens=n, min_new_tokens=n, do_sample=False)
        assert out.shape[1] - inputs["input_ids"].shape[1] == n
        return time.perf_counter() - started

    with torch.inference_mode():
        seconds(4)  # warm-up
        # Decode only, as on our side: a one-token run times the prompt and the first
        # token, and the difference leaves the new_tokens - 1 decode steps.
        first = min(seconds(1) for _ in range(3))
        total = seconds(new_tokens)
    return (new_tokens - 1) / (total - first)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--skip-transformers", action="store_true")
    args = parser.parse_args()

    config = EngineConfig(n_threads=args.threads, max_tokens=48, seed=11)
    with SuggestionEngine(config) as engine:
        engine.complete(conversation(0), n=1)  # warm-up: page the weights in
        ours, llama = measure_decode(engine, args.rounds)
        batch3 = measure_batch(engine, args.rounds)
        ttft = measure_ttft(engine)
        scorer = default_scorer()
        DraftRound(engine, conversation(0), scorer).complete()  # warm-up: MiniLM and the head
        bestofn, bestofn_ttft = measure_bestofn(engine, scorer, args.rounds)
    tuned = measure_tuned(args.threads, args.rounds)
    print(f"decode: ours {ours:.1f} tok/s, llama.cpp perf counters {llama:.1f} tok/s")
    print(f"3 suggestions / 1 suggestion wall time: {batch3:.2f}")
    print("warm / cold time to first token: " + ", ".join(f"{k} {v:.3f}" for k, v in ttft.items()))
    print(f"best-of-{config.candidates} round / round of 3: {bestofn:.2f} (time to first token {bestofn_ttft:.2f})")
    figures = {"llama_ratio": ours / llama, "batch3_ratio": batch3}
    if not args.skip_transformers:
        hf = transformers_tokens_per_second(args.threads)
        print(f"transformers fp32 generate: {hf:.1f} tok/s")
        figures["vs_transformers"] = ours / hf
    figures.update(ttft)
    figures.update(bestofn_ratio=bestofn, bestofn_ttft_ratio=bestofn_ttft)
    if tuned:
        print(
            f"decode of the tuned default / the bundled model: merged {tuned['tuned_decode_ratio']:.3f}, "
            f"adapter applied at load {tuned['adapter_decode_ratio']:.3f}"
        )
        figures.update(tuned)
    print("RESULT " + " ".join(f"{k}={v:.3f}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
