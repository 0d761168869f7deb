"""Continual self-training: keep the model's own replies only when they are valid and
the reward ensemble is confident about them (after Psy-Interpreter).

A generated reply is valid when it parses to a whole reply (not empty, not cut off)
and breaks no safety rule; the ensemble's confidence is the weighted mean of the reward
components mapped to 0..1 (`RewardPack.confidence`). Kept replies become normalised
examples (source `self-training`) that SFT can train on; every decision, kept or not,
is recorded with its reason and scores (ids and numbers only, no text).

Continual: with `rounds` N and `sft_steps` above 0, each round generates with the
current model, keeps what passes, fine-tunes on it (SFT, validated on conversations held
out of the prompts) and generates the next round with the model that training produced;
a last pass scores the final model. `rounds.json` records what each round kept (and why
the rest was dropped), its mean confidence, and its SFT run and validation loss.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

from therapist_app.core.dialogue_format import Example, parse_reply
from therapist_app.core.scoring.safety import check_reply
from trainer.config import ConfigError, setting
from trainer.rewards import RewardPack
from trainer.rewards.resources import load_risk_detector
from trainer.rewards.settings import RewardSettings


@dataclass(frozen=True)
class SelfTrainSettings(RewardSettings):
    model: str = setting("", "the model whose replies to filter: a Hugging Face folder or a .gguf")
    data: str = setting("assets/seed_corpus.jsonl", "normalised JSONL whose client turns are the prompts")
    output: str = setting("runs/self_training/kept.jsonl", "kept replies as normalised JSONL (SFT data)")
    record: str = setting("", "where to record every decision (JSONL, no text); empty means beside output")
    threshold: float = setting(0.7, "smallest ensemble confidence a reply needs to be kept", at_least=0, at_most=1)
    max_examples: int = setting(0, "use at most this many prompts; 0 means all", at_least=0)
    max_new_tokens: int = setting(64, "most tokens per reply", at_least=1)
    temperature: float = setting(0.7, "sampling temperature (0 for greedy)", at_least=0)
    min_p: float = setting(0.1, "min-p sampling threshold", at_least=0, below=1)
    seed: int = setting(0, "sampling seed")
    rounds: int = setting(
        1, "generate-filter-train rounds; round k+1 generates with the model round k trained", at_least=1
    )
    sft_steps: int = setting(0, "SFT updates per round on the kept replies (0: filter only, one round)", at_least=0)
    sft_config: str = setting(
        "", "TOML of SFT settings for each round's training (model, data, output_dir and run_name are set per round)"
    )
    validation_fraction: float = setting(
        0.2,
        "share of conversations held out of the prompts to validate each round's SFT on (with sft_steps)",
        above=0,
        below=1,
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.rounds > 1 and not self.sft_steps:
            raise ConfigError("rounds above 1 need sft_steps: each round trains the model the next one uses")


@dataclass(frozen=True)
class Decision:
    id: str
    kept: bool
    reason: str  # "kept", "empty", "truncated", "unsafe: <rules>", "low confidence"
    confidence: float
    scores: dict


def decide(
    examples: Sequence[Example], completions: Sequence[str], pack: RewardPack, threshold: float, detector=None
) -> tuple[list[Example], list[Decision]]:
    """Which generated replies to keep, and why each was kept or dropped."""
    columns = {
        "client_words": [e.client_words for e in examples],
        "reference": [e.reply for e in examples],
        "emotion": [e.emotion for e in examples],
        "strategy": [e.strategy for e in examples],
    }
    scores = pack.score(list(completions), **columns)
    confidence = pack.confidence(scores)
    kept, decisions = [], []
    for i, (example, completion) in enumerate(zip(examples, completions)):
        parsed = parse_reply(completion)
        risk = detector.assess(example.client_words).categories if detector is not None else ()
        safety = check_reply(parsed.text, risk, example.emotion)
        if not parsed.text:
            reason = "empty"
        elif parsed.truncated:
            reason = "truncated"
        elif not safety.safe:
            reason = "unsafe: " + ",".join(safety.reasons)
        elif confidence[i] < threshold:
            reason = "low confidence"
        else:
            reason = "kept"
        ident = f"{example.id or i}-self"
        decisions.append(
            Decision(
                ident,
                reason == "kept",
                reason,
                round(confidence[i], 4),
                {k: (None if v[i] is None else round(v[i], 4)) for k, v in scores.items()},
            )
        )
        if reason == "kept":
            kept.append(
                Example(
                    example.client_words,
                    parsed.text,
                    example.context,
                    example.emotion,
                    example.strategy,
                    source="self-training",
                    conversation_id=example.conversation_id,
                    id=ident,
                    extra={"confidence": round(confidence[i], 4)},
                )
            )
    return kept, decisions


def _generate(model: str, examples: Sequence[Example], settings: SelfTrainSettings, generator=None) -> list[str]:
    from trainer.generation import SamplingSettings, load_generator, requests_of

    if generator is None:
        if not model:
            raise ValueError("no model given: pass --model")
        sampling = SamplingSettings(settings.max_new_tokens, settings.temperature, settings.min_p, 1.0, settings.seed)
        generator = load_generator(model, sampling)
    try:
        return generator(requests_of(examples))
    finally:
        if hasattr(generator, "close"):
            generator.close()


def _write_round(kept: Sequence[Example], decisions: Sequence[Decision], output: Path, record: Path) -> None:
    from trainer.data.records import write_jsonl

    output.parent.mkdir(parents=True, exist_ok=True)
    write_jsonl(kept, output)
    with record.open("w", encoding="utf-8") as f:
        for decision in decisions:
            f.write(json.dumps(asdict(decision), sort_keys=True) + "\n")


def _summary(decisions: Sequence[Decision]) -> dict:
    return {
        "prompts": len(decisions),
        "kept": sum(d.kept for d in decisions),
        "reasons": dict(sorted(Counter(d.reason for d in decisions).items())),
        "mean_confidence": round(sum(d.confidence for d in decisions) / max(1, len(decisions)), 4),
    }


def run_self_training(settings: SelfTrainSettings, generator=None) -> tuple[Path, Path, list[Decision]]:
    """Generate, filter and (with sft_steps) train for `rounds` rounds; returns the last
    round's kept file, its decision record and its decisions. `generator` replaces the
    model's generation (one round only: there is no model to train)."""
    from trainer.data.records import read_jsonl
    from trainer.rewards.settings import reward_pack

    examples = [e for e in read_jsonl(settings.data).examples]
    pack, detector = reward_pack(settings), load_risk_detector()
    output = Path(settings.output)
    record = Path(settings.record) if settings.record else output.with_name(output.stem + ".decisions.jsonl")
    if not settings.sft_steps:
        prompts = examples[: settings.max_examples] if settings.max_examples else examples
        kept, decisions = decide(
            prompts, _generate(settings.model, prompts, settings, generator), pack, settings.threshold, detector
        )
        _write_round(kept, decisions, output, record)
        return output, record, decisions
    if generator is not None:
        raise ValueError("a stand-in generator cannot be trained: rounds with sft_steps need --model")

    from trainer.data.split import SplitFractions, split_examples

    parts = split_examples(
        examples, SplitFractions(1 - settings.validation_fraction, settings.validation_fraction, 0), settings.seed
    )
    prompts = parts["train"][: settings.max_examples] if settings.max_examples else parts["train"]
    held_out = [e for e in parts["validation"] if e.reply]
    if not prompts or not held_out:
        raise ValueError(
            f"{settings.data} is too small to hold out validation conversations: add data or change validation_fraction"
        )
    folder, model, rounds = output.parent, settings.model, []
    for number in range(1, settings.rounds + 2):
        decisions_now = decide(prompts, _generate(model, prompts, settings), pack, settings.threshold, detector)
        entry = {"round": number, "model": model, **_summary(decisions_now[1])}
        if number > settings.rounds:  # the last pass only scores the final model
            entry["evaluation_only"] = True
            rounds.append(entry)
            break
        kept, decisions = decisions_now
        round_dir = folder / f"round-{number}"
        _write_round(kept, decisions, round_dir / "train.jsonl", round_dir / "decisions.jsonl")
        if kept:
            sft = _train_round(settings, model, kept, held_out, round_dir)
            model = str(sft.merged_dir or sft.final_dir)
            entry["sft"] = {
                "run_dir": str(sft.run_dir),
                "global_step": sft.global_step,
                "train_examples": sft.train_examples,
                "validation_loss": sft.final_eval_loss,
            }
        else:
            entry["sft"] = None  # nothing kept: the next round generates with the same model
        rounds.append(entry)
        (folder / "rounds.json").write_text(json.dumps({"rounds": rounds}, indent=2) + "\n", encoding="utf-8")
    (folder / "rounds.json").write_text(json.dumps({"rounds": rounds}, indent=2) + "\n", encoding="utf-8")
    _write_round(kept, decisions, output, record)
    return output, record, decisions


def _train_round(
    settings: SelfTrainSettings, model: str, kept: Sequence[Example], held_out: Sequence[Example], round_dir: Path
):
    """SFT from `model` on this round's kept replies, validated on the held-out conversations."""
    from trainer.config import load_config
    from trainer.data.records import write_jsonl
    from trainer.sft import SFTSettings, run_sft

    write_jsonl(held_out, round_dir / "validation.jsonl")
    sft = load_config(
        SFTSettings,
        settings.sft_config or None,
        {
            "model": model,
            "data": str(round_dir),
            "output_dir": str(round_dir),
            "run_name": "sft",
            "max_steps": settings.sft_steps,
            "seed": settings.seed,
        },
    )
    return run_sft(sft)
