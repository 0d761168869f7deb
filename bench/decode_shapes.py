"""What each shape of llama.cpp batch costs on the bundled model, as ratios.

The engine's figures in bench/inference.py come down to a few batch shapes: a decode
step of one sequence, a step of three (a round of three suggestions), the few dozen
tokens left to read when the client's words are submitted, and a cold prompt. This
times each shape alone after the same cached prompt, interleaved round by round so the
machine's drift hits them alike, plus one draw of the app's sampler chain. Run it
against two llama.cpp builds (PYTHONPATH pointing at each install) to see what a build
flag or a patch in packaging/llama_cpp changes.

step3_ratio: a 3-sequence step over a 1-sequence step.
tail40_ratio: 40 tokens on top of a 250-token cache over the 250-token prompt cold.
sample_ratio: one draw of the app's sampler chain over a 1-sequence step.

Usage: .venv/bin/python bench/decode_shapes.py [--threads 2] [--repeats 40]
"""

from __future__ import annotations

import argparse
import statistics
import time

from therapist_app.core.llama_runtime import Batch, Context, Model, Sampler, SamplingParams
from therapist_app.core.model_file import bundled_model_path

TEXT = (
    "Client: Work has been piling up for weeks and I lie awake going over it. "
    "Therapist: That sounds exhausting. What goes through your mind at night? "
    "Client: Mostly that I will be found out, that I am not as good as they think. "
) * 10
CACHED = 250
TAIL = 40


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=40)
    args = parser.parse_args()

    with Model(str(bundled_model_path()), 0) as model:
        ctx = Context(model, n_ctx=1024, n_batch=512, n_seq_max=4, n_threads=args.threads)
        batch = Batch(512, 4)
        tokens = model.tokenize(TEXT, special=False)[: CACHED + TAIL]
        sampler = Sampler(SamplingParams(), seed=1, n_vocab=model.n_vocab)

        def timed(rows: list[tuple[int, int, int, bool]]) -> float:
            batch.clear()
            for token, pos, seq, logits in rows:
                batch.add(token, pos, (seq,), logits)
            started = time.perf_counter()
            ctx.decode(batch)
            return time.perf_counter() - started

        def cold() -> float:
            ctx.clear()
            seconds = timed([(t, i, 0, i == CACHED - 1) for i, t in enumerate(tokens[:CACHED])])
            for seq in (1, 2):
                ctx.copy_sequence(0, seq, 0, CACHED)
            return seconds

        def after_cache(rows: list[tuple[int, int, int, bool]]) -> float:
            for seq in range(3):
                ctx.remove(seq, CACHED)
            return timed(rows)

        nxt = tokens[CACHED]
        shapes = {
            "cold": cold,
            "step1": lambda: after_cache([(nxt, CACHED, 0, True)]),
            "step3": lambda: after_cache([(nxt, CACHED, seq, True) for seq in range(3)]),
            "tail40": lambda: after_cache([(t, CACHED + i, 0, i == TAIL - 1) for i, t in enumerate(tokens[CACHED:])]),
        }

        def sample() -> float:
            started = time.perf_counter()
            sampler.sample(ctx, 0)
            return time.perf_counter() - started

        times: dict[str, list[float]] = {name: [] for name in [*shapes, "sample"]}
        cold()
        for _ in range(3):  # warm-up: page the weights in, settle the thread pool
            for measure in shapes.values():
                measure()
        for _ in range(args.repeats):
            for name, measure in shapes.items():
                times[name].append(measure())
            after_cache([(nxt, CACHED, 0, True)])
            times["sample"].append(sample())
        sampler.close()
        batch.close()
        ctx.close()

    ms = {name: statistics.median(values) * 1000 for name, values in times.items()}
    print(", ".join(f"{name} {value:.2f} ms" for name, value in ms.items()))
    print(
        f"RESULT step3_ratio={ms['step3'] / ms['step1']:.3f} "
        f"tail40_ratio={ms['tail40'] / ms['cold']:.3f} "
        f"sample_ratio={ms['sample'] / ms['step1']:.3f}"
    )


if __name__ == "__main__":
    main()
