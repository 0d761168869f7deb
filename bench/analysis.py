"""Latency of one utterance's analysis (crisis risk, then emotion) with the model loaded.

analysis_ms       median wall time of Analyzer.analyse on one client utterance, with
                  MiniLM, the risk anchors and the emotion head already loaded (the
                  patterns, one embedding per sentence shared by both channels, the
                  k-nearest-anchor scores and the softmax head). Target <= 20 ms on 2 cores.
p90_ms            90th percentile of the same runs.
patterns_ms       median of the risk patterns alone (no embedding), for comparison.
load_s            time to load MiniLM, embed the risk anchors and read the head.

Utterances are the authored test split of assets/emotion_utterances.jsonl, cycled.
BLAS threads are pinned before NumPy loads (default 2, the project's target machine).

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
    from therapist_app.core.risk import RiskDetector

    texts = [json.loads(line)["text"] for line in asset_path("emotion_utterances.jsonl").read_text().splitlines()
             if json.loads(line)["split"] == "test"]
    started = time.perf_counter()
    analyzer = Analyzer.load()
    load_s = time.perf_counter() - started
    if analyzer.classifier is None or not analyzer.detector.uses_embeddings:
        print("error: the embedding model or the emotion head is missing", file=sys.stderr)
        return 2
    for text in texts[:10]:
        analyzer.analyse(text)
    timings = []
    for i in range(args.runs):
        t0 = time.perf_counter()
        analyzer.analyse(texts[i % len(texts)])
        timings.append((time.perf_counter() - t0) * 1000)
    patterns = RiskDetector()
    pattern_timings = []
    for i in range(args.runs):
        t0 = time.perf_counter()
        patterns.assess(texts[i % len(texts)])
        pattern_timings.append((time.perf_counter() - t0) * 1000)
    median = statistics.median(timings)
    p90 = statistics.quantiles(timings, n=10)[-1]
    print(f"load_s={load_s:.2f} runs={args.runs} threads={args.threads} cpus={os.cpu_count()} "
          f"load_average={os.getloadavg()[0]:.1f}")
    print(f"p90_ms={p90:.2f} patterns_ms={statistics.median(pattern_timings):.3f}")
    print(f"RESULT analysis_ms={median:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
