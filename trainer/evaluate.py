"""`therapist-trainer eval`: score a model's replies on held-out data and write a report.

Replies come from a Hugging Face folder (transformers) or a GGUF (the app's llama.cpp
engine), greedy by default. The report puts BLEU, ROUGE, METEOR and emotion accuracy
beside the published GPT-2 SFT+RL numbers, adds distinct-n, every reward component,
the reflective-behaviour counts and optionally an LLM judge, plots reward curves of
training runs, and ends with one machine-readable RESULT line.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

from therapist_app.core.dialogue_format import Example, parse_reply
from therapist_app.core.scoring.safety import check_reply
from therapist_app.core.scoring.text import near_duplicate
from trainer.behaviours import count_behaviours
from trainer.config import ConfigError, setting
from trainer.metrics import bleu, distinct, emotion_accuracy, meteor, rouge
from trainer.progress import progress
from trainer.rewards import parse_list
from trainer.rewards.resources import load_emotion_classifier
from trainer.rewards.settings import RewardSettings, reward_pack
from trainer.run import DataSettings
from trainer.run_folder import plot_curves, reward_curves

log = logging.getLogger(__name__)

# Published results of the context-emotion aware GPT-2 (SFT then RL) on its test set.
PUBLISHED = {
    "bleu": 0.0111,
    "rouge1": 0.1397,
    "rouge2": 0.0213,
    "rougeL": 0.1317,
    "meteor": 0.0581,
    "emotion_acc": 0.9934,
}
PUBLISHED_BASE_EMOTION_ACC = 0.6696
RESULT_KEYS = ("bleu", "rouge1", "rouge2", "rougeL", "meteor", "emotion_acc")


@dataclass(frozen=True)
class EvalSettings(RewardSettings, DataSettings):
    model: str = setting(
        "",
        "model to evaluate: a Hugging Face folder, a .gguf file run through llama.cpp, "
        "'bundled' for the model the app uses by default (the bundled SmolLM2 with the "
        "shipped tuned adapter), or 'base' for the untuned bundled SmolLM2",
    )
    adapter: str = setting("", "a LoRA adapter GGUF applied to a .gguf model (as the app applies its tuned default)")
    split: str = setting(
        "test",
        "which part of the data: test, validation or train (split as SFT splits it), or all",
        ("test", "validation", "train", "all"),
    )
    seed: int = setting(0, "split seed (the same as the SFT run's, so the held-out split matches)")
    max_examples: int = setting(0, "evaluate at most this many examples; 0 means all", at_least=0)
    max_new_tokens: int = setting(64, "most tokens generated per reply", at_least=1)
    drafts: int = setting(
        1,
        "drafts per example: 1 is greedy; N > 1 samples N with the app's sampling and shows all "
        "(the app's rounds before best-of-N; GGUF only); the first is scored",
        at_least=1,
    )
    best_of: int = setting(
        0,
        "K > 1 runs the app's best-of-N round: K candidates sampled, gated and ranked, the best "
        "3 shown and the best scored (GGUF only); 0 is off",
        at_least=0,
    )
    batch_size: int = setting(8, "prompts generated together (Hugging Face models)", at_least=1)
    output_dir: str = setting("runs/eval", "folder for report.md, results.json and the plots")
    judge: str = setting("", "a GGUF to run as LLM judge with the documented rubric; empty means no judge")
    runs: str = setting("", "comma-separated training run folders whose reward curves to plot")
    save_replies: bool = setting(False, "also write replies.jsonl (generated text: keep it where the data may live)")
    num_threads: int = setting(0, "CPU threads; 0 means the available cores", at_least=0)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.best_of == 1 or (self.best_of and self.drafts > 1):
            raise ConfigError("best_of must be 0 or at least 2, and best_of and drafts > 1 not both at once")


@dataclass(frozen=True)
class EvalResult:
    examples: int
    bleu: float
    rouge1: float
    rouge2: float
    rougeL: float
    meteor: float
    meteor_synonyms: bool
    distinct1: float
    distinct2: float
    emotion_acc: float | None
    emotion_classifier: bool
    rewards: dict[str, float | None]
    reward_total: float
    behaviours: dict[str, int]
    judge: dict[str, float] = field(default_factory=dict)
    judge_unparsed: int = 0
    tokens_per_second: float | None = None
    shown_drafts: int = 0
    """Drafts the app would have shown over all rounds (one per example for greedy)."""
    violations_per_100: float = 0.0
    """Shown drafts breaking a safety rule (the app's rules, the client's risk and emotion), per 100."""
    repeated_rounds: float = 0.0
    """Share of rounds that show two identical or near-identical drafts."""
    reward_totals: tuple[float, ...] = field(default=(), repr=False)
    """Each example's weighted reward total, in example order: written to replies.jsonl (not
    results.json), so two runs on the same examples can be compared pair by pair."""

    def result_line(self) -> str:
        values = asdict(self)
        parts = []
        for key in RESULT_KEYS:
            value = values[key]
            parts.append(f"{key}={'nan' if value is None else f'{value:.4f}'}")
        return "RESULT " + " ".join(parts)


def select_examples(settings: EvalSettings) -> list[Example]:
    """The examples of the chosen split, with replies, split exactly as SFT splits them."""
    splits, _ = settings.read_splits((settings.split,), settings.seed)
    examples = splits[settings.split]
    return examples[: settings.max_examples] if settings.max_examples else examples


def shown_draft_figures(
    shown: Sequence[Sequence[str]], examples: Sequence[Example], risks: Sequence[Sequence[str]]
) -> tuple[int, float, float]:
    """(drafts shown, safety violations per 100 shown drafts, share of rounds showing a
    repeated draft), by the app's own safety rules and duplicate test."""
    count = sum(len(texts) for texts in shown)
    violations = sum(
        not check_reply(text, risk, example.emotion).safe
        for texts, risk, example in zip(shown, risks, examples)
        for text in texts
    )
    repeated = sum(any(near_duplicate(a, b) for i, a in enumerate(texts) for b in texts[i + 1 :]) for texts in shown)
    return count, 100 * violations / max(count, 1), repeated / max(len(shown), 1)


def score_replies(
    examples: Sequence[Example],
    completions: Sequence[str],
    settings: RewardSettings,
    classifier="auto",
    judge=None,
    shown: Sequence[Sequence[str]] | None = None,
    risks: Sequence[Sequence[str]] | None = None,
) -> EvalResult:
    """Every metric for raw `completions` (one per example) against the examples' replies.
    `shown` holds the drafts each round showed (default: the completion alone) and
    `risks` the risk categories of each client turn (default: none)."""
    replies = [parse_reply(c).text for c in completions]
    references = [e.reply or "" for e in examples]
    rouges = rouge(replies, references)
    met = meteor(replies, references)
    if classifier == "auto":
        classifier = load_emotion_classifier(optional=True)
    accuracy = None
    if classifier is not None:
        spoken = [i for i, r in enumerate(replies) if r]
        predicted: list[str | None] = [None] * len(replies)  # an empty reply counts as wrong
        for i, probs in zip(spoken, classifier([replies[i] for i in spoken]) if spoken else []):
            predicted[i] = max(probs, key=probs.get)
        accuracy = emotion_accuracy(predicted, [e.emotion for e in examples])
    pack = reward_pack(settings)
    columns = {
        "client_words": [e.client_words for e in examples],
        "reference": references,
        "emotion": [e.emotion for e in examples],
        "strategy": [e.strategy for e in examples],
    }
    scores = pack.score(list(completions), **columns)
    means = {}
    for name, values in scores.items():
        present = [v for v in values if v is not None]
        means[name] = sum(present) / len(present) if present else None
    totals = pack.total(scores)
    judged = judge.summarise(zip(columns["client_words"], replies)) if judge is not None else None
    shown = shown if shown is not None else [[r] if r else [] for r in replies]
    count, violations, repeated = shown_draft_figures(shown, examples, risks or [()] * len(examples))
    return EvalResult(
        examples=len(examples),
        bleu=bleu(replies, references),
        rouge1=rouges["rouge1"],
        rouge2=rouges["rouge2"],
        rougeL=rouges["rougeL"],
        meteor=met.score,
        meteor_synonyms=met.synonyms,
        distinct1=distinct(replies, 1),
        distinct2=distinct(replies, 2),
        emotion_acc=accuracy,
        emotion_classifier=classifier is not None,
        rewards=means,
        reward_total=sum(totals) / len(totals),
        reward_totals=tuple(totals),
        behaviours=count_behaviours(replies),
        judge=judged.means if judged else {},
        judge_unparsed=judged.unparsed if judged else 0,
        shown_drafts=count,
        violations_per_100=violations,
        repeated_rounds=repeated,
    )


def _fmt(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def write_report(result: EvalResult, settings: EvalSettings, out: Path, plots: Sequence[Path]) -> Path:
    if settings.best_of:
        decoding = f"the app's best-of-{settings.best_of} rounds (sampled, gated, ranked; the best scored)"
    elif settings.drafts > 1:
        decoding = f"{settings.drafts} sampled drafts per round (the first scored)"
    else:
        decoding = "greedy decoding"
    lines = [
        f"# Evaluation of `{Path(settings.model).name}`",
        "",
        f"Data: `{settings.data}`, split `{settings.split}` (seed {settings.seed}), {result.examples} examples; "
        f"{decoding}, at most {settings.max_new_tokens} new tokens.",
        "",
        "| metric | this model | published GPT-2 SFT+RL |",
        "|---|---|---|",
    ]
    names = {
        "bleu": "BLEU",
        "rouge1": "ROUGE-1",
        "rouge2": "ROUGE-2",
        "rougeL": "ROUGE-L",
        "meteor": "METEOR" + ("" if result.meteor_synonyms else " (no synonyms)"),
        "emotion_acc": "emotion accuracy",
    }
    values = asdict(result)
    for key in RESULT_KEYS:
        published = _fmt(PUBLISHED[key])
        if key == "emotion_acc":
            published += f" (base GPT-2: {PUBLISHED_BASE_EMOTION_ACC:.4f})"
        lines.append(f"| {names[key]} | {_fmt(values[key])} | {published} |")
    lines += [
        "",
        "Fractions, not percentages. The published numbers come from a different test set (their corpus, "
        "their emotion classifier), so the comparison shows scale, not a ranking.",
        "",
    ]
    if not result.meteor_synonyms:
        lines += [
            "METEOR ran without WordNet synonyms: the WordNet data is not installed here, so only exact and "
            "stemmed matches count (`python -m nltk.downloader wordnet` enables synonyms).",
            "",
        ]
    if not result.emotion_classifier:
        lines += ["Emotion accuracy is n/a: the app's emotion classifier is not installed.", ""]
    lines += [
        f"distinct-1 {result.distinct1:.4f}, distinct-2 {result.distinct2:.4f}.",
        "",
        f"Shown drafts: {result.shown_drafts}; safety violations {result.violations_per_100:.2f} per 100 shown "
        f"drafts; rounds showing a repeated draft {result.repeated_rounds:.1%}.",
        "",
        f"## Reward components (means; weighted total {result.reward_total:.4f})",
        "",
        "| reward | weight | mean |",
        "|---|---|---|",
    ]
    weights = dict(zip(parse_list(settings.rewards), parse_list(settings.reward_weights)))
    for name, mean in result.rewards.items():
        lines.append(f"| {name} | {weights[name]} | {_fmt(mean)} |")
    lines += ["", "## Reflective behaviours (replies showing each)", ""]
    lines += [f"- {name.replace('_', ' ')}: {count} of {result.examples}" for name, count in result.behaviours.items()]
    if result.judge:
        lines += ["", f"## LLM judge (`{Path(settings.judge).name}`, 1-5, rubric in docs/evaluation.md)", ""]
        lines += [f"- {k}: {v:.2f}" for k, v in result.judge.items()]
        lines.append(f"- answers the judge did not format as asked: {result.judge_unparsed}")
    if result.tokens_per_second:
        lines += ["", f"Generation: {result.tokens_per_second:.1f} tokens/s."]
    if plots:
        lines += ["", "## Plots", ""] + [f"![{p.stem}]({p.name})" for p in plots]
    lines += ["", result.result_line(), ""]
    path = out / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def plot_rewards(result: EvalResult, runs: Sequence[Path], out: Path) -> list[Path]:
    """`reward_components.png` for this evaluation and `reward_curves.png` for training runs."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    plots = []
    present = {k: v for k, v in result.rewards.items() if v is not None}
    figure, axes = pyplot.subplots(figsize=(7, 3.5), dpi=100)
    axes.barh(list(present), list(present.values()))
    axes.set_xlabel("mean score")
    axes.grid(alpha=0.3, axis="x")
    figure.tight_layout()
    figure.savefig(out / "reward_components.png")
    pyplot.close(figure)
    plots.append(out / "reward_components.png")
    curve_plot = plot_curves(reward_curves(runs), out / "reward_curves.png")
    if curve_plot is not None:
        plots.append(curve_plot)
    return plots


def resolve_model(model: str, adapter: str = "") -> tuple[str, str]:
    """(model, adapter): 'bundled' is what the app loads by default, 'base' the bundled
    GGUF without the tuned adapter; anything else is a path."""
    from therapist_app.core.model_file import bundled_model_path, default_adapter_path

    if model in ("bundled", "base"):
        if adapter:
            raise ValueError(f"--model {model} already decides the adapter; pass the GGUF path to add one")
        tuned = default_adapter_path() if model == "bundled" else None
        return str(bundled_model_path()), str(tuned or "")
    if adapter and not model.endswith(".gguf"):
        raise ValueError("--adapter applies to a .gguf model")
    return model, adapter


def load_app_risk_detector():
    """The app's risk detector (patterns and the MiniLM channel), patterns only when
    MiniLM is not installed: the rounds are crisis-aware exactly as in the app."""
    from therapist_app.core.analysis import Analyzer

    return Analyzer.load().detector


def _generate(generator, requests: Sequence, risks: Sequence, chunk: int) -> tuple[list[str], list | None]:
    """Each request's raw reply and, where the generator runs the app's rounds, the drafts
    each round showed; `chunk` requests at a time, under a progress bar."""
    completions, shown = [], []
    bar = progress(desc="generating", total=len(requests), unit="reply")
    for start in range(0, len(requests), chunk):
        part = slice(start, start + chunk)
        if hasattr(generator, "rounds"):
            rounds = generator.rounds(requests[part], risks[part])
            completions += [r.top for r in rounds]
            shown += [r.shown for r in rounds]
        else:
            completions += generator(requests[part])
        bar.update(len(requests[part]))
    bar.close()
    return completions, shown if hasattr(generator, "rounds") else None


def run_eval(settings: EvalSettings, generator=None, classifier="auto", detector="auto") -> tuple[EvalResult, Path]:
    """Generate, score, and write report.md, results.json and the plots into output_dir."""
    from trainer.generation import SamplingSettings, load_generator, requests_of

    if not settings.model and generator is None:
        raise ValueError("no model given: pass --model FOLDER, --model FILE.gguf or --model bundled")
    runs = [Path(r) for r in parse_list(settings.runs)]
    for run in runs:
        if not (run / "metrics.jsonl").is_file():
            raise ValueError(f"{run} has no metrics.jsonl (not a training run folder)")
    examples = select_examples(settings)
    if detector == "auto":
        detector = load_app_risk_detector()
    risks = [detector.assess(e.client_words).categories for e in examples]
    if generator is None:
        if settings.num_threads:
            import torch

            torch.set_num_threads(settings.num_threads)
        model, adapter = resolve_model(settings.model, settings.adapter)
        generator = load_generator(
            model,
            SamplingSettings(max_new_tokens=settings.max_new_tokens),
            settings.batch_size,
            settings.num_threads or None,
            settings.drafts,
            settings.best_of,
            adapter,
        )
    started = time.perf_counter()
    try:
        completions, shown = _generate(generator, requests_of(examples), risks, settings.batch_size)
    finally:
        if hasattr(generator, "close"):
            generator.close()
    log.info("eval: %d replies in %.1fs", len(completions), time.perf_counter() - started)
    judge = None
    if settings.judge:
        from trainer.judge import LlamaJudge

        judge = LlamaJudge(settings.judge, settings.num_threads or None)
    try:
        result = score_replies(examples, completions, settings, classifier, judge, shown, risks)
    finally:
        if judge is not None:
            judge.close()
    seconds, tokens = getattr(generator, "seconds", 0.0), getattr(generator, "generated_tokens", 0)
    if seconds and tokens:
        result = EvalResult(**{**asdict(result), "tokens_per_second": tokens / seconds})
    out = Path(settings.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    plots = plot_rewards(result, runs, out)
    figures = {k: v for k, v in asdict(result).items() if k != "reward_totals"}
    (out / "results.json").write_text(
        json.dumps({"settings": asdict(settings), "result": figures}, indent=2, sort_keys=True) + "\n",
        encoding="utf-8",
    )
    if settings.save_replies:
        with (out / "replies.jsonl").open("w", encoding="utf-8") as f:
            for example, completion, total in zip(examples, completions, result.reward_totals):
                row = {"id": example.id, "reply": parse_reply(completion).text, "reward_total": round(total, 6)}
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return result, write_report(result, settings, out, plots)
