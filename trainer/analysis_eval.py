"""`therapist-trainer eval-emotion` and `eval-risk`: the analysis models against labelled sets.

Both print a confusion matrix, per-class precision, recall and F1 and macro-F1, next to
two baselines: the majority class, and zero-shot (each text takes the label of the
nearest label description by MiniLM embedding). Macro-F1 averages over the classes
present in the gold labels, so a set without, say, `disgust` is not penalised for it.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tomllib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from trainer.data.labelled import LabelledRow, read_rows

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClassReport:
    labels: tuple[str, ...]
    confusion: np.ndarray  # rows gold, columns predicted, in `labels` order
    precision: dict[str, float]
    recall: dict[str, float]
    f1: dict[str, float]
    support: dict[str, int]
    accuracy: float
    macro_f1: float


def classification_report(gold: Sequence[str], predicted: Sequence[str], labels: Sequence[str]) -> ClassReport:
    """Confusion matrix and per-class scores.

    >>> r = classification_report(["a", "a", "b"], ["a", "b", "b"], ["a", "b"])
    >>> r.accuracy, r.f1["a"], round(r.macro_f1, 3)
    (0.6666666666666666, 0.6666666666666666, 0.667)
    """
    if len(gold) != len(predicted) or not gold:
        raise ValueError("gold and predicted labels must be non-empty and of equal length")
    labels = tuple(labels)
    index = {label: i for i, label in enumerate(labels)}
    unknown = sorted({*gold, *predicted} - set(labels))
    if unknown:
        raise ValueError(f"labels {unknown} are not among {labels}")
    confusion = np.zeros((len(labels), len(labels)), dtype=int)
    for g, p in zip(gold, predicted):
        confusion[index[g], index[p]] += 1
    precision, recall, f1, support = {}, {}, {}, {}
    for label, i in index.items():
        tp = int(confusion[i, i])
        predicted_n, gold_n = int(confusion[:, i].sum()), int(confusion[i, :].sum())
        precision[label] = tp / predicted_n if predicted_n else 0.0
        recall[label] = tp / gold_n if gold_n else 0.0
        total = precision[label] + recall[label]
        f1[label] = 2 * precision[label] * recall[label] / total if total else 0.0
        support[label] = int(gold_n)
    present = [label for label in labels if support[label]]
    return ClassReport(
        labels,
        confusion,
        precision,
        recall,
        f1,
        support,
        accuracy=float(np.trace(confusion) / len(gold)),
        macro_f1=float(np.mean([f1[label] for label in present])),
    )


def binary_scores(gold: Sequence[bool], predicted: Sequence[bool]) -> tuple[float, float, float]:
    """Recall, precision and F1 of the positive class.

    >>> binary_scores([True, True, False], [True, False, True])
    (0.5, 0.5, 0.5)
    """
    tp = sum(g and p for g, p in zip(gold, predicted))
    recall = tp / max(1, sum(gold))
    precision = tp / max(1, sum(predicted))
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return recall, precision, f1


def format_report(report: ClassReport, title: str) -> str:
    width = max(8, *(len(label) for label in report.labels)) + 1
    short = [label[:6] for label in report.labels]
    lines = [
        title,
        "confusion matrix (rows: gold, columns: predicted)",
        " " * width + " ".join(f"{s:>6}" for s in short),
    ]
    for label, row in zip(report.labels, report.confusion):
        lines.append(f"{label:<{width}}" + " ".join(f"{n:>6d}" for n in row))
    lines.append(f"{'class':<{width}}{'prec':>7}{'recall':>8}{'f1':>7}{'n':>5}")
    for label in report.labels:
        lines.append(
            f"{label:<{width}}{report.precision[label]:>7.3f}{report.recall[label]:>8.3f}"
            f"{report.f1[label]:>7.3f}{report.support[label]:>5d}"
        )
    lines.append(f"accuracy {report.accuracy:.4f}  macro-F1 {report.macro_f1:.4f}")
    return "\n".join(lines)


def nearest_description(embed: Callable, texts: Sequence[str], descriptions: Sequence[tuple[str, str]]) -> list[str]:
    """Zero-shot: each text takes the label of its most similar (label, description)."""
    anchors = np.asarray(embed([d for _, d in descriptions]))
    sims = np.asarray(embed(list(texts))) @ anchors.T
    return [descriptions[i][0] for i in np.argmax(sims, axis=1)]


def _select(rows: list[LabelledRow], split: str) -> list[LabelledRow]:
    chosen = rows if split == "all" else [r for r in rows if r.split == split]
    if not chosen:
        raise ValueError(f"no rows in split {split!r} (use --split all for a file without splits)")
    return chosen


def majority_label(rows: list[LabelledRow], split: str) -> str:
    """The most frequent label outside the evaluated split (the rows a model could learn
    from), or of all rows when everything is evaluated."""
    pool = [r for r in rows if split != "all" and r.split != split] or rows
    return Counter(r.label for r in pool).most_common(1)[0][0]


# ---- emotion ------------------------------------------------------------------------


def read_esconv(path: Path) -> list[tuple[str, list[str]]]:
    """(emotion_type, seeker turns) per conversation of an ESConv-format JSON file."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as problem:
        raise ValueError(f"cannot read ESConv file {path}: {problem}") from None
    conversations = data.values() if isinstance(data, dict) else data
    found = []
    for conversation in conversations:
        try:
            emotion = conversation["emotion_type"]
            turns = [
                t.get("content") or t.get("text") or ""
                for t in conversation["dialog"]
                if str(t.get("speaker", "")).lower() in ("seeker", "usr", "user")
            ]
        except (KeyError, TypeError, AttributeError) as problem:
            raise ValueError(f"{path}: a conversation lacks emotion_type or dialog: {problem}") from None
        turns = [t for t in turns if t.strip()]
        if turns:
            found.append((emotion, turns))
    if not found:
        raise ValueError(f"{path} holds no conversations with seeker turns")
    return found


def _best_of(reading: dict[str, float], allowed: set[str]) -> str:
    """The most probable label among `allowed`.

    >>> _best_of({"neutral": 0.5, "grief": 0.3, "sadness": 0.2}, {"sadness", "anger"})
    'sadness'
    """
    return max((label for label in reading if label in allowed), key=reading.get)


def evaluate_emotion(data: Path, split: str, esconv: Path | None) -> tuple[str, str]:
    """The printed report and its RESULT line."""
    from therapist_app.core.emotion import default_classifier
    from therapist_app.core.taxonomy import emotions, map_emotion, mapping_targets

    labels = tuple(emotions())
    rows = read_rows(data, "emotion")
    evaluated = _select(rows, split)
    classifier = default_classifier()
    texts, gold = [r.text for r in evaluated], [r.label for r in evaluated]
    probs = classifier.probabilities(texts)
    predicted = [max(p, key=p.get) for p in probs]
    majority = majority_label(rows, split)
    zero_shot = nearest_description(
        lambda t: classifier.embed_layers(t)[:, -1],
        texts,
        [(e.id, f"{e.name}: {e.description}") for e in emotions().values()],
    )
    model = classification_report(gold, predicted, labels)
    base_major = classification_report(gold, [majority] * len(gold), labels)
    base_zero = classification_report(gold, zero_shot, labels)
    parts = [
        format_report(model, f"emotion classifier on {data.name} [{split}], {len(gold)} rows"),
        f"majority baseline ({majority}): accuracy {base_major.accuracy:.4f}  macro-F1 {base_major.macro_f1:.4f}",
        f"zero-shot baseline (nearest description): accuracy {base_zero.accuracy:.4f}  "
        f"macro-F1 {base_zero.macro_f1:.4f}",
    ]
    result = (
        f"RESULT accuracy={model.accuracy:.4f} macro_f1={model.macro_f1:.4f} "
        f"majority_macro_f1={base_major.macro_f1:.4f} zero_shot_macro_f1={base_zero.macro_f1:.4f} rows={len(gold)}"
    )
    if esconv is not None:
        conversations = read_esconv(esconv)
        mapped = [map_emotion("esconv", emotion) for emotion, _ in conversations]
        # The conversation-level reading the app uses (turns with feeling weigh more,
        # greetings and logistics little, a clear change is followed), read within the
        # labels the mapping can produce: ESConv has no neutral, hope, grief or
        # loneliness, so a reading of those could never be right.
        possible = set(mapping_targets("esconv"))
        read = [_best_of(classifier.read(turns), possible) for _, turns in conversations]
        esc = classification_report(mapped, read, labels)
        parts.append(
            format_report(
                esc,
                f"ESConv {esconv.name}: {len(mapped)} conversations, labels mapped "
                "through assets/emotion_mappings.toml",
            )
        )
        result += f" esconv_accuracy={esc.accuracy:.4f} esconv_macro_f1={esc.macro_f1:.4f}"
    return "\n\n".join(parts), result


# ---- risk ---------------------------------------------------------------------------


def evaluate_risk(data: Path, split: str, patterns_only: bool) -> tuple[str, str]:
    from therapist_app.core.assets import asset_path
    from therapist_app.core.embedder import LayerMemo, default_embedder
    from therapist_app.core.risk import RISK_LABELS, RiskDetector, primary_label

    rows = read_rows(data, "risk")
    evaluated = _select(rows, split)
    texts, gold = [r.text for r in evaluated], [r.label for r in evaluated]
    embedder = default_embedder()
    embed = embedder.embed
    detector = RiskDetector() if patterns_only else RiskDetector.load(LayerMemo.of(embedder))
    predicted = [primary_label(detector.assess(t)) for t in texts]
    with asset_path("risk_descriptions.toml").open("rb") as f:
        table = tomllib.load(f)["category"]
    zero_shot = nearest_description(embed, texts, [(c, d) for c in RISK_LABELS for d in table[c]["descriptions"]])
    majority = majority_label(rows, split)

    def any_risk(labels: Sequence[str]) -> list[bool]:
        return [label != "none" for label in labels]

    lines = [
        format_report(
            classification_report(gold, predicted, RISK_LABELS),
            f"risk detector ({'patterns only' if patterns_only else 'patterns + learned channel'}) "
            f"on {data.name} [{split}], {len(gold)} rows",
        )
    ]
    scores = {}
    for name, guess in (
        ("detector", predicted),
        (f"majority ({majority})", [majority] * len(gold)),
        ("zero-shot (nearest description)", zero_shot),
    ):
        recall, precision, f1 = binary_scores(any_risk(gold), any_risk(guess))
        macro = classification_report(gold, guess, RISK_LABELS).macro_f1
        scores[name] = (recall, precision, f1, macro)
        lines.append(
            f"{name:<34} any-risk recall {recall:.4f} precision {precision:.4f} F1 {f1:.4f}  "
            f"5-class macro-F1 {macro:.4f}"
        )
    recall, precision, f1, macro = scores["detector"]
    result = f"RESULT recall={recall:.4f} precision={precision:.4f} f1={f1:.4f} macro_f1={macro:.4f} rows={len(gold)}"
    return "\n".join(lines), result


def register(subparsers: argparse._SubParsersAction) -> None:
    emotion = subparsers.add_parser(
        "eval-emotion",
        help="evaluate the emotion classifier on labelled JSONL (and optionally ESConv) against baselines",
        description="Score the emotion classifier on JSONL rows {text, emotion[, split]}; print a confusion "
        "matrix, per-class P/R/F1, macro-F1 and the majority and zero-shot baselines; end with a RESULT line.",
    )
    emotion.add_argument(
        "--data", type=Path, default=None, help="labelled JSONL (default: the shipped assets/emotion_utterances.jsonl)"
    )
    emotion.add_argument("--split", default="test", help="which split to score: train, test or all (default test)")
    emotion.add_argument(
        "--esconv",
        type=Path,
        default=None,
        help="an ESConv-format JSON file: emotion_type per conversation, seeker turns as input",
    )
    emotion.set_defaults(func=run_emotion)

    risk = subparsers.add_parser(
        "eval-risk",
        help="evaluate the crisis-risk detector on labelled JSONL against baselines",
        description="Score the risk detector on JSONL rows {text, risk[, split]} (risk one of suicide_selfharm, "
        "harm_others, abuse, substance_medical, none); print a confusion matrix, per-class P/R/F1, macro-F1, "
        "any-risk recall/precision/F1 and the baselines; end with a RESULT line.",
    )
    risk.add_argument(
        "--data", type=Path, default=None, help="labelled JSONL (default: the shipped assets/risk_cases.jsonl)"
    )
    risk.add_argument("--split", default="test", help="which split to score: dev, test or all (default test)")
    risk.add_argument(
        "--patterns-only", action="store_true", help="score the deterministic patterns without the embedding channel"
    )
    risk.set_defaults(func=run_risk)


def _run(evaluate: Callable[[], tuple[str, str]]) -> int:
    from therapist_app.core.embedder import EmbedderUnavailable
    from therapist_app.core.emotion import EmotionHeadError

    try:
        report, result = evaluate()
    except (ValueError, OSError, EmbedderUnavailable, EmotionHeadError) as problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    print(report)
    print(result)
    return 0


def run_emotion(args: argparse.Namespace) -> int:
    from therapist_app.core.assets import assets_dir

    data = args.data or assets_dir() / "emotion_utterances.jsonl"
    return _run(lambda: evaluate_emotion(data, args.split, args.esconv))


def run_risk(args: argparse.Namespace) -> int:
    from therapist_app.core.assets import assets_dir

    data = args.data or assets_dir() / "risk_cases.jsonl"
    return _run(lambda: evaluate_risk(data, args.split, args.patterns_only))
