"""Latency of one utterance's analysis (crisis risk, then emotion) with the model loaded.

analysis_ms       median wall time of Analyzer.analyse on one new client utterance in a
                  session, with MiniLM and both heads loaded: the patterns, one MiniLM
                  pass over the turn and its sentences (all layers), the risk head over
                  them and over the window of recent turns, the emotion head and the
                  conversation reading. Target <= 20 ms on 2 cores.
p90_ms            90th percentile of the same runs.
patterns_ms       median of the risk patterns alone (no embedding), for comparison.
load_s            time to load MiniLM and the two heads (a fresh start: nothing is
                  computed at first start any more).

Utterances are distinct authored client turns (assets/corpus/emotion), each analysed
with the two before it as the session's earlier turns (already analysed, as in the
app). BLAS threads are pinned before NumPy loads (default 2, the target machine).

Usage: .venv/bin/python bench/analysis.py [--runs 200] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=200, help="timed analyses (after 10 warm-up runs)")
    parser.add_argument("--threads", type=int, default=2, help="BLAS/OpenMP threads")
    args = parser.parse_args(argv)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)

    from therapist_app.core.analysis import Analyzer
    from therapist_app.core.assets import asset_path
    from therapist_app.core.dialogue_format import Turn
    from therapist_app.core.risk import RiskDetector

    texts = [
        json.loads(line)["text"]
        for path in sorted((asset_path("corpus") / "emotion").glob("*.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    if len(texts) < args.runs + 12:
        print(f"error: {len(texts)} distinct turns cannot fill {args.runs} runs", file=sys.stderr)
        return 2
    started = time.perf_counter()
    analyzer = Analyzer.load()
    load_s = time.perf_counter() - started
    if analyzer.classifier is None or not analyzer.detector.uses_embeddings:
        print("error: the embedding model or the emotion head is missing", file=sys.stderr)
        return 2
    for text in texts[:10]:
        analyzer.analyse(text)
    timings = []
    for i in range(10, 10 + args.runs):
        earlier = (Turn("client", texts[i - 2]), Turn("therapist", "Go on."), Turn("client", texts[i - 1]))
        t0 = time.perf_counter()
        analyzer.analyse(texts[i], earlier)
        timings.append((time.perf_counter() - t0) * 1000)
    patterns = RiskDetector()
    pattern_timings = []
    for i in range(args.runs):
        t0 = time.perf_counter()
        patterns.assess(texts[i % len(texts)])
        pattern_timings.append((time.perf_counter() - t0) * 1000)
    median = statistics.median(timings)
    p90 = statistics.quantiles(timings, n=10)[-1]
    print(
        f"load_s={load_s:.2f} runs={args.runs} threads={args.threads} cpus={os.cpu_count()} "
        f"load_average={os.getloadavg()[0]:.1f}"
    )
    print(f"p90_ms={p90:.2f} patterns_ms={statistics.median(pattern_timings):.3f}")
    print(f"RESULT analysis_ms={median:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
