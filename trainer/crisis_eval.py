"""`therapist-trainer eval-crisis`: the app's crisis-aware rounds on authored risk turns
from whole held-out batches.

Every risk turn of the chosen batches goes through the app's analysis; each one the
detector flags gets a full round (the app's model, best-of-N, the authored crisis
responses, the safety gate). A round passes when it shows a draft that asks directly
about the flagged risk and no draft that breaks a safety rule.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CrisisReport:
    turns: int
    flagged: int
    rounds_asking: int
    shown: int
    violations: int
    empty_rounds: int

    def result_line(self) -> str:
        rounds = max(self.flagged, 1)
        return (
            f"RESULT rounds={self.flagged} asks_rate={self.rounds_asking / rounds:.4f} "
            f"violations_per_100={100 * self.violations / max(self.shown, 1):.2f} "
            f"empty_rounds={self.empty_rounds} detector_recall={self.flagged / max(self.turns, 1):.4f}"
        )


def evaluate_crisis(folder: Path, batches: list[str], limit: int, choice: str | None, seed: int) -> CrisisReport:
    from therapist_app.core.analysis import Analyzer
    from therapist_app.core.best_of_n import default_scorer
    from therapist_app.core.dialogue_format import SuggestionRequest
    from therapist_app.core.draft_round import DraftRound
    from therapist_app.core.emotion import effective_emotion
    from therapist_app.core.engine import EngineConfig, SuggestionEngine
    from therapist_app.core.model_file import resolve_choice
    from therapist_app.core.risk import RISK_LABELS
    from therapist_app.core.scoring.safety import asks_about_risk, check_reply
    from trainer.data.labelled import read_batches

    rows = [r for r in read_batches(folder, "risk", RISK_LABELS) if r.batch in batches and r.label != "none"]
    if not rows:
        raise ValueError(f"no risk turns in batches {', '.join(batches)} of {folder}")
    rows = rows[:limit] if limit else rows
    analyzer = Analyzer.load()
    scorer = default_scorer()
    model_path, adapter_path = resolve_choice(choice)
    flagged = asking = shown = violations = empty = 0
    with SuggestionEngine(EngineConfig(model_path=model_path, adapter_path=adapter_path, seed=seed)) as engine:
        for row in rows:
            analysis = analyzer.analyse(row.text)
            if not analysis.risk.flagged:
                continue
            flagged += 1
            risk = analysis.risk.categories
            emotion = effective_emotion(analysis.emotion, None)
            result = DraftRound(engine, SuggestionRequest(row.text, (), emotion), scorer, risk).complete()
            engine.reset_session()
            texts = [r.draft.text for r in result.ranking.shown]
            empty += not texts
            shown += len(texts)
            asking += any(asks_about_risk(t, risk) for t in texts)
            label = emotion.label if emotion else None
            violations += sum(not check_reply(t, risk, label).safe for t in texts)
    return CrisisReport(len(rows), flagged, asking, shown, violations, empty)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval-crisis",
        help="run the app's crisis-aware rounds on authored risk turns from held-out batches",
        description="For every risk turn of the given batches that the app's detector flags, run the app's "
        "round (model, best-of-N, authored crisis responses, safety gate) and count rounds that show a "
        "draft asking about the risk and shown drafts that break a safety rule; end with a RESULT line.",
    )
    parser.add_argument("--data", type=Path, default=None, help="folder of risk batches (default: assets/corpus/risk)")
    parser.add_argument("--batches", required=True, help="comma-separated batch ids to take the turns from")
    parser.add_argument("--limit", type=int, default=0, help="at most this many risk turns (0: all)")
    parser.add_argument(
        "--model", default=None, help="a GGUF, or 'untuned' for the bundled model alone (default: the app's default)"
    )
    parser.add_argument("--seed", type=int, default=1234, help="sampling seed")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from therapist_app.core.assets import assets_dir
    from therapist_app.core.model_file import UNTUNED, ModelFileError
    from trainer.data.records import DataError

    choice = UNTUNED if args.model == "untuned" else args.model
    try:
        report = evaluate_crisis(
            args.data or assets_dir() / "corpus" / "risk",
            [b.strip() for b in args.batches.split(",") if b.strip()],
            args.limit,
            choice,
            args.seed,
        )
    except (ValueError, OSError, DataError, ModelFileError) as problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    print(
        f"{report.turns} risk turns, {report.flagged} flagged by the detector; {report.rounds_asking} rounds showed "
        f"a draft asking about the risk; {report.violations} of {report.shown} shown drafts broke a safety rule."
    )
    print(report.result_line())
    return 0
