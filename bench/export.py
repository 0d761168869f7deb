"""Export of the imported SmolLM2: export time, and each quantisation's decode speed in
llama.cpp relative to f16, with the f16 file's next-token agreement with Hugging Face.

The bundled SmolLM2 GGUF is imported into a Hugging Face folder first (not timed), then
exported to f16, q8_0 and q4_k_m with the full verification (timed as export_s). Decode
speed: greedy one-token decodes after a dialogue-format prompt, for a fixed number of
steps (end-of-turn is ignored so every file decodes the same count); the files are
measured in turn, several rounds, and each one's median is compared with f16's.

Usage: .venv/bin/python bench/export.py [--threads 2] [--tokens 64] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from therapist_app.core.dialogue_format import EmotionReading, SuggestionRequest, render_prompt
from therapist_app.core.llama_runtime import Batch, Context, Model
from trainer.export.model import ExportSettings, export_model
from trainer.export.verify import llama_cpp_logits
from trainer.models import bundled_gguf, import_gguf

QUANTS = ("f16", "q8_0", "q4_k_m")
REQUEST = SuggestionRequest(
    "I've been feeling on edge all week and I can't switch off at night.",
    emotion=EmotionReading("anxiety", 0.8),
    strategy="reflection",
)


def decode_rate(path: Path, tokens: int, threads: int) -> float:
    """Tokens per second of greedy one-token decodes after the prompt."""
    with Model(str(path), 0) as model:
        prompt = model.tokenize(render_prompt(REQUEST), special=True)
        batch = Batch(512, 1)
        try:
            with Context(model, 1024, 512, 1, threads) as ctx:
                for pos, token in enumerate(prompt):
                    batch.add(token, pos, (0,), pos == len(prompt) - 1)
                ctx.decode(batch)
                last, pos = batch.n_tokens - 1, len(prompt)
                started = time.perf_counter()
                for _ in range(tokens):
                    logits = np.ctypeslib.as_array(llama_cpp_logits(ctx, last), shape=(model.n_vocab,))
                    batch.clear()
                    batch.add(int(np.argmax(logits)), pos, (0,), True)
                    ctx.decode(batch)
                    last, pos = 0, pos + 1
                return tokens / (time.perf_counter() - started)
        finally:
            batch.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (default 2)")
    parser.add_argument("--tokens", type=int, default=64, help="decode steps per measurement (default 64)")
    parser.add_argument("--rounds", type=int, default=3, help="measurements per file (default 3)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        hf = import_gguf(bundled_gguf(), Path(tmp) / "smollm2")
        result = export_model(
            ExportSettings(
                source=hf,
                output_dir=Path(tmp) / "out",
                license="apache-2.0",
                quantisations=QUANTS,
                name="smollm2-135m-instruct",
                threads=args.threads,
            )
        )
        rates: dict[str, list[float]] = {q: [] for q in QUANTS}
        for _ in range(args.rounds):
            for q in QUANTS:
                rates[q].append(decode_rate(result.file(q).path, args.tokens, args.threads))
        median = {q: statistics.median(r) for q, r in rates.items()}
        for q in QUANTS:
            m = result.file(q).manifest
            v = m.verification
            print(
                f"{q:7s} {m.size_bytes / 1e6:7.1f} MB  decode {median[q]:6.1f} tok/s  "
                f"top-1 {v.top1_agreement:.4f} ({v.positions_compared} positions)  "
                f"max |dlogit| {v.max_abs_logit_error:.4f}  mean |dlogit| {v.mean_abs_logit_error:.5f}  "
                f"stops {v.generation_stopped}  quantise {result.quantise_seconds.get(q, 0.0):.1f}s"
            )
        print(f"conversion (convert_hf_to_gguf + metadata) {result.convert_seconds:.1f}s of {result.seconds:.1f}s")
        f16 = result.file("f16").manifest.verification
        print(
            f"RESULT export_s={result.seconds:.1f} q8_0_speedup={median['q8_0'] / median['f16']:.2f} "
            f"q4_k_m_speedup={median['q4_k_m'] / median['f16']:.2f} f16_top1={f16.top1_agreement:.4f}"
        )


if __name__ == "__main__":
    main()
