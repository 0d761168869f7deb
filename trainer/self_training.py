"""Continual self-training: keep the model's own replies only when they are valid and
the reward ensemble is confident about them (after Psy-Interpreter).

A generated reply is valid when it parses to a whole reply (not empty, not cut off)
and breaks no safety rule; the ensemble's confidence is the weighted mean of the reward
components mapped to 0..1 (`RewardPack.confidence`). Kept replies become normalised
examples (source `self-training`) that SFT can train on; every decision, kept or not,
is recorded with its reason and scores (ids and numbers only, no text).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

from therapist_app.core.dialogue_format import Example, parse_reply
from therapist_app.core.scoring.safety import check_reply

from trainer.config import setting
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


@dataclass(frozen=True)
class Decision:
    id: str
    kept: bool
    reason: str  # "kept", "empty", "truncated", "unsafe: <rules>", "low confidence"
    confidence: float
    scores: dict


def decide(examples: Sequence[Example], completions: Sequence[str], pack: RewardPack, threshold: float,
           detector=None) -> tuple[list[Example], list[Decision]]:
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
        decisions.append(Decision(ident, reason == "kept", reason, round(confidence[i], 4),
                                  {k: (None if v[i] is None else round(v[i], 4)) for k, v in scores.items()}))
        if reason == "kept":
            kept.append(Example(example.client_words, parsed.text, example.context, example.emotion, example.strategy,
                                source="self-training", conversation_id=example.conversation_id, id=ident,
                                extra={"confidence": round(confidence[i], 4)}))
    return kept, decisions


def run_self_training(settings: SelfTrainSettings, generator=None) -> tuple[Path, Path, list[Decision]]:
    from trainer.data.records import read_jsonl, write_jsonl
    from trainer.generation import SamplingSettings, load_generator, requests_of
    from trainer.rewards.settings import reward_pack

    examples = [e for e in read_jsonl(settings.data).examples]
    if settings.max_examples:
        examples = examples[: settings.max_examples]
    if generator is None:
        if not settings.model:
            raise ValueError("no model given: pass --model")
        sampling = SamplingSettings(settings.max_new_tokens, settings.temperature, settings.min_p, 1.0, settings.seed)
        generator = load_generator(settings.model, sampling)
    try:
        completions = generator(requests_of(examples))
    finally:
        if hasattr(generator, "close"):
            generator.close()
    kept, decisions = decide(examples, completions, reward_pack(settings), settings.threshold, load_risk_detector())
    output = Path(settings.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    write_jsonl(kept, output)
    record = Path(settings.record) if settings.record else output.with_name(output.stem + ".decisions.jsonl")
    with record.open("w", encoding="utf-8") as f:
        for decision in decisions:
            f.write(json.dumps(asdict(decision), sort_keys=True) + "\n")
    return output, record, decisions
