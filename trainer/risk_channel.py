"""`therapist-trainer tune-risk-channel`: choose the embedding channel's operating point.

The crisis detector's embedding channel flags a sentence when its best risk label's
score (mean cosine of the 3 nearest authored anchors) reaches a threshold and beats the
safe anchors' score by a margin. This command scores every dev anchor leave-one-out
against all the others and picks the (threshold, margin) with the most recall of dev
risks while flagging at most `--max-safe-rate` of two kinds of safe talk: the safe
anchors the channel would actually read (leave-one-out), and everyday client turns that
are no anchor at all (the client words of the seed corpus, a whole turn counted as
flagged when any sentence of it is): the second is the false-alarm rate a therapist
would see in an ordinary session. Test rows are never used.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

import numpy as np

THRESHOLDS = (0.30, 0.35, 0.40, 0.45, 0.50)
MARGINS = (-0.04, -0.02, 0.0, 0.02, 0.03, 0.04, 0.05, 0.06, 0.08)


def operating_points(embed, anchors, everyday: Sequence[str],
                     k: int = 3) -> list[tuple[float, float, float, float, float]]:
    """(threshold, margin, recall of risk anchors, rate of eligible safe anchors flagged,
    rate of everyday turns flagged)."""
    from therapist_app.core.risk import (
        NONE, anchor_scores, channel_eligible, channel_sentences, channel_verdicts, embed_anchors,
    )

    vectors = embed_anchors(embed, anchors)
    texts = [t for label in anchors.by_label for t in anchors.by_label[label]]
    labels = [label for label in anchors.by_label for _ in anchors.by_label[label]]
    is_risk = np.array([label != NONE for label in labels])
    # Safe sentences the channel would never see (negated, quoted...) are not its job.
    counted = is_risk | np.array([channel_eligible(t) for t in texts])
    scores = anchor_scores(np.concatenate([vectors[l] for l in anchors.by_label]), vectors, k,
                           leave_out_identical=True)
    # Everyday turns, sentence by sentence as the detector reads them.
    read = [channel_sentences(turn) for turn in everyday]
    owner = np.array([i for i, sentences in enumerate(read) for _ in sentences], dtype=int)
    sentences = [s for turn_sentences in read for s in turn_sentences]
    turn_scores = (anchor_scores(np.asarray(embed(sentences), dtype=np.float32), vectors, k,
                                 leave_out_identical=True) if sentences else None)
    points = []
    for threshold in THRESHOLDS:
        for m in MARGINS:
            flagged = channel_verdicts(scores, threshold, m)[1] & counted
            turns_flagged = 0
            if turn_scores is not None:
                turns_flagged = len(set(owner[channel_verdicts(turn_scores, threshold, m)[1]]))
            points.append((threshold, m, flagged[is_risk].mean(),
                           flagged[~is_risk & counted].sum() / max(1, (~is_risk & counted).sum()),
                           turns_flagged / max(1, len(everyday))))
    return points


def choose(points, max_safe_rate: float) -> tuple[float, float, float, float, float]:
    """The most recall with both safe rates within the budget; ties go to the fewer
    false flags."""
    allowed = [p for p in points if p[3] <= max_safe_rate and p[4] <= max_safe_rate]
    if not allowed:
        raise ValueError(f"no operating point flags at most {max_safe_rate:.0%} of safe sentences")
    return max(allowed, key=lambda p: (p[2], -p[4], -p[3]))


def everyday_turns() -> list[str]:
    """The client words of the shipped seed corpus: ordinary session talk, no anchor."""
    from therapist_app.core.assets import asset_path

    with asset_path("seed_corpus.jsonl").open(encoding="utf-8") as f:
        return sorted({json.loads(line)["client_words"] for line in f if line.strip()})


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "tune-risk-channel",
        help="choose the crisis detector's embedding threshold and margin by leave-one-out on dev",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument("--max-safe-rate", type=float, default=0.05,
                        help="most share of safe anchors, and of everyday client turns, the channel may "
                        "flag (default 0.05)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from therapist_app.core.embedder import EmbedderUnavailable, default_embedder
    from therapist_app.core.risk import risk_anchors

    try:
        points = operating_points(default_embedder().embed, risk_anchors(), everyday_turns())
        threshold, margin, recall, safe_rate, turn_rate = choose(points, args.max_safe_rate)
    except (ValueError, OSError, EmbedderUnavailable) as problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    print("threshold margin  recall  safe anchors flagged  everyday turns flagged")
    for t, m, r, f, e in points:
        print(f"{t:9.2f} {m:6.2f} {r:7.3f} {f:21.3f} {e:23.3f}")
    print(f"chosen: threshold {threshold:.2f}, margin {margin:.2f} (recall {recall:.3f} of dev risks, "
          f"{safe_rate:.3f} of safe anchors and {turn_rate:.3f} of everyday turns flagged)")
    print(f"RESULT threshold={threshold:.2f} margin={margin:.2f} recall={recall:.4f} "
          f"safe_rate={safe_rate:.4f} everyday_rate={turn_rate:.4f}")
    return 0
