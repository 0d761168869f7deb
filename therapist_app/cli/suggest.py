"""`therapist-app suggest` and `therapist-app demo`: the main job without a window."""

from __future__ import annotations

import argparse
import sys
import time
import tomllib
from pathlib import Path

from therapist_app.core.analysis import AnalysisResult, Analyzer
from therapist_app.core.assets import asset_path
from therapist_app.core.best_of_n import DraftScorer, default_scorer
from therapist_app.core.dialogue_format import EmotionReading, SuggestionRequest, Turn
from therapist_app.core.draft_round import DraftRound, RoundResult
from therapist_app.core.engine import EngineConfig, SuggestionEngine
from therapist_app.core.model_file import UNTUNED, ModelFileError, resolve_choice
from therapist_app.core.taxonomy import emotions, strategies, strategy_from_name
from therapist_app.core.text_input import TextInputError, parse_transcript, read_text_file


def register(subparsers: argparse._SubParsersAction) -> None:
    suggest = subparsers.add_parser(
        "suggest",
        help="print reply suggestions for what a client said",
        description="Print N reply suggestions, each with its counselling strategy, "
        "for the client's words (and optional earlier context).",
    )
    suggest.add_argument("words", help="what the client just said")
    suggest.add_argument(
        "--emotion",
        choices=sorted(emotions()),
        help="the client's emotion as the therapist reads it (default: detected from the words)",
    )
    suggest.add_argument(
        "--context-file",
        type=Path,
        help="earlier turns: a text file with lines starting 'Client:' or 'Therapist:'",
    )
    suggest.add_argument("-n", type=int, default=3, help="most suggestions shown (default 3)")
    suggest.add_argument(
        "--strategy",
        help="ask for one strategy (id or name, e.g. reflection); default: one per suggestion",
    )
    _engine_options(suggest)
    suggest.set_defaults(func=run_suggest)

    demo = subparsers.add_parser(
        "demo",
        help="play a short scripted session on the model and print per-turn timings",
        description="Play a short scripted session: each client turn gets suggestions; "
        "the first is accepted as the therapist's reply. Prints timings per turn.",
    )
    _engine_options(demo)
    demo.set_defaults(func=run_demo)


def _engine_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", type=Path, help="GGUF model file (default: the bundled SmolLM2 with its tuned adapter)"
    )
    parser.add_argument("--untuned", action="store_true", help="the bundled SmolLM2 without its tuned adapter")
    parser.add_argument(
        "--gpu-layers",
        type=int,
        help="layers to offload to the GPU (default: as many as fit in its free memory; "
        "a failed GPU load falls back to fewer, then to the CPU)",
    )
    parser.add_argument("--threads", type=int, help="CPU threads (default: available cores)")
    parser.add_argument("--seed", type=int, default=1234, help="sampling seed (default 1234)")
    parser.add_argument("--max-tokens", type=int, default=64, help="most tokens per suggestion")
    parser.add_argument(
        "--candidates",
        type=int,
        default=EngineConfig.candidates,
        help=f"drafts decoded per round, of which the best are shown (default {EngineConfig.candidates})",
    )
    parser.add_argument("--why", action="store_true", help="print why each draft ranked where it did")


def _engine(args: argparse.Namespace) -> SuggestionEngine:
    if args.untuned and args.model:
        raise ValueError("--untuned and --model name two different models; pass one")
    model_path, adapter_path = resolve_choice(UNTUNED if args.untuned else args.model)
    engine = SuggestionEngine(
        EngineConfig(
            model_path=model_path,
            adapter_path=adapter_path,
            n_gpu_layers=args.gpu_layers,
            n_threads=args.threads,
            seed=args.seed,
            max_tokens=args.max_tokens,
            candidates=args.candidates,
        )
    )
    # On stderr, so the suggestions on stdout stay the command's whole output.
    print(f"Device: {engine.info.placement.message}", file=sys.stderr)
    return engine


def _round(
    engine: SuggestionEngine, scorer: DraftScorer, request: SuggestionRequest, analysis: AnalysisResult, shown: int = 3
) -> RoundResult:
    return DraftRound(engine, request, scorer, analysis.risk.categories, shown=shown).complete()


def _print_suggestions(result: RoundResult, why: bool = False) -> None:
    if result.ranking.none_passed:
        print("  No draft passed the safety checks; run again with another --seed, or write your own reply.")
    for ranked in result.ranking.shown:
        draft = ranked.draft
        source = ", reviewed crisis response" if draft.source == "authored" else ""
        print(f"  {ranked.rank}. [{strategies()[draft.strategy].name}{source}] {draft.text}")
        if why:
            print(f"     why: {ranked.explanation()}")


def _print_risk(analysis: AnalysisResult) -> None:
    """The crisis warning comes first and from the deterministic detector, whatever
    the model writes afterwards."""
    risk = analysis.risk
    if risk.flagged:
        phrases = "; ".join(dict.fromkeys(t.phrase for t in risk.triggers))
        print(
            f"!! CRISIS LANGUAGE ({', '.join(risk.categories)}, severity {risk.severity}): "
            f'"{phrases}". Follow your clinic\'s risk protocol.'
        )


def _emotion_used(given: str | None, analysis: AnalysisResult) -> tuple[EmotionReading | None, str]:
    """The therapist's reading wins over the classifier's."""
    if given:
        return EmotionReading(given), f"{given} (given)"
    if analysis.emotion is None:
        return None, "none (no classifier available)"
    detected = analysis.emotion
    described = (
        f"{detected.label} (detected, {detected.confidence:.2f}; "
        f"runner-up {detected.runner_up} {detected.runner_up_confidence:.2f})"
    )
    if detected.uncertain:
        return None, f"uncertain: {described}; suggestions are not told an emotion"
    return detected.reading(), described


def run_suggest(args: argparse.Namespace) -> int:
    try:
        context = parse_transcript(read_text_file(args.context_file)) if args.context_file else ()
        strategy = strategy_from_name(args.strategy) if args.strategy else None
        analysis = Analyzer.load().analyse(args.words, context)
        emotion, described = _emotion_used(args.emotion, analysis)
        request = SuggestionRequest(args.words, context, emotion, strategy)
        _print_risk(analysis)
        with _engine(args) as engine:
            result = _round(engine, default_scorer(), request, analysis, args.n)
    except (TextInputError, ValueError, ModelFileError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"Emotion used: {described}")
    _print_suggestions(result, args.why)
    return 0


def run_demo(args: argparse.Namespace) -> int:
    with asset_path("demo_session.toml").open("rb") as f:
        script = tomllib.load(f)
    try:
        started = time.perf_counter()
        engine = _engine(args)
        analyzer = Analyzer.load()
        scorer = default_scorer()
    except (ModelFileError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    with engine:
        info = engine.info
        print(
            f"Model: {info.model_name} on {info.device.upper()} "
            f"({info.n_threads} threads), loaded in {time.perf_counter() - started:.2f}s"
        )
        context: list[Turn] = [Turn("therapist", script["opening"])]
        print(f"\nTherapist: {script['opening']}")
        engine.prime(context)
        for number, turn in enumerate(script["turn"], start=1):
            analysis = analyzer.analyse(turn["client"], context)
            emotion, described = _emotion_used(None, analysis)
            request = SuggestionRequest(turn["client"], tuple(context), emotion)
            result = _round(engine, scorer, request, analysis)
            stats = result.stats
            rate = stats.generated_tokens / stats.decode_s if stats.decode_s else 0.0
            print(f"\nClient: {turn['client']}")
            _print_risk(analysis)
            print(f"  emotion: {described} (the script's author read {turn['emotion']})")
            _print_suggestions(result, args.why)
            print(
                f"  turn {number}: analysis {analysis.elapsed_ms:.0f} ms, first token "
                f"{stats.ttft_s * 1000:.0f} ms, {len(result.drafts)} drafts ranked in "
                f"{stats.total_s:.2f}s, {rate:.0f} tokens/s, prompt {stats.prompt_tokens} "
                f"tokens ({stats.reused_tokens} already in the cache)"
            )
            shown = result.ranking.shown
            chosen = shown[0].draft.text if shown else turn.get("therapist", "Tell me more about that.")
            print(f"Therapist ({'accepted suggestion 1' if shown else 'own words'}): {chosen}")
            context += [Turn("client", turn["client"]), Turn("therapist", chosen)]
            # As the app does: decode the accepted reply while the client answers.
            engine.prime(context)
    return 0
