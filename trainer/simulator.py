"""Simulated sessions for preference data (after PAPRIKA).

A client simulator (an LLM role-playing an authored persona, emotion and problem from
`assets/client_personas.toml`) talks with the model being trained. For each scenario
several trajectories are sampled with min-p from the same opening words; the reward
pack scores every therapist turn, a trajectory's score is the mean of its turns, and
the best and worst trajectories of the scenario become a preference pair on the turn
they share a prompt for (the first): the later turns decide which first reply led
somewhere better. The curriculum picks which scenario groups to simulate.
"""

from __future__ import annotations

import logging
import random
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from statistics import fmean
from typing import Callable, Sequence

from therapist_app.core.assets import asset_path
from therapist_app.core.dialogue_format import EmotionReading, SuggestionRequest, Turn, parse_reply
from therapist_app.core.taxonomy import check_emotion, emotions
from trainer.curriculum import Curriculum
from trainer.preferences import PreferencePair
from trainer.progress import progress
from trainer.rewards import RewardPack

log = logging.getLogger(__name__)

ChatFn = Callable[[list[dict]], str]
Policy = Callable[[Sequence[SuggestionRequest]], list[str]]

CLIENT_INSTRUCTIONS = (
    "You are role-playing a client talking to a counsellor. Stay in character.\n"
    "Who you are: {persona}\nWhat is going on: {problem}\nHow you feel: {feeling}.\n"
    "Answer the counsellor's last message as this client, in the first person, in one to three "
    "sentences. Never speak as the counsellor and never give advice."
)


@dataclass(frozen=True)
class Scenario:
    id: str
    group: str
    emotion: str
    problem: str
    persona: str
    opening: str

    def __post_init__(self) -> None:
        check_emotion(self.emotion)
        for name in ("id", "group", "problem", "persona", "opening"):
            if not getattr(self, name).strip():
                raise ValueError(f"scenario {self.id!r}: {name} is empty")


def load_scenarios(path: str | Path | None = None) -> list[Scenario]:
    path = Path(path) if path else asset_path("client_personas.toml")
    with path.open("rb") as f:
        rows = tomllib.load(f).get("scenario", [])
    try:
        scenarios = [Scenario(**row) for row in rows]
    except TypeError as wrong:
        raise ValueError(f"{path}: malformed scenario ({wrong})") from None
    ids = [s.id for s in scenarios]
    if not scenarios or len(set(ids)) != len(ids):
        raise ValueError(f"{path}: needs at least one scenario and unique ids")
    return scenarios


def client_messages(scenario: Scenario, transcript: Sequence[Turn]) -> list[dict]:
    """The simulator's chat: the persona as system prompt; the therapist speaks as `user`."""
    system = CLIENT_INSTRUCTIONS.format(
        persona=scenario.persona, problem=scenario.problem, feeling=emotions()[scenario.emotion].name.lower()
    )
    messages = [{"role": "system", "content": system}]
    for turn in transcript:
        messages.append({"role": "assistant" if turn.speaker == "client" else "user", "content": turn.text})
    return messages


_OWN_LABEL = re.compile(r"^\s*(?:client|me)\s*:\s*", re.I)
_COUNSELLOR_LINE = re.compile(r"(?im)^\s*(?:therapist|counsell?or|assistant)\s*:")


def client_text(answer: str) -> str:
    """The simulator's answer as the client's words: its own speaker label dropped, then
    cut where it starts speaking for the counsellor (as `parse_reply` does).

    >>> client_text("Client: I suppose. It's been weeks.\\nTherapist: I see.")
    "I suppose. It's been weeks."
    """
    answer = _OWN_LABEL.sub("", answer, count=1)
    return parse_reply(_COUNSELLOR_LINE.split(answer, maxsplit=1)[0]).text


class LlamaChat:
    """A chat model through llama.cpp, sampled with min-p (the client simulator's voice)."""

    def __init__(
        self,
        gguf: str | Path,
        min_p: float = 0.1,
        temperature: float = 1.0,
        seed: int = 0,
        max_tokens: int = 64,
        threads: int | None = None,
    ) -> None:
        from llama_cpp import Llama

        self.llm = Llama(str(gguf), n_ctx=2048, n_threads=threads, seed=seed, verbose=False)
        self.options = {"min_p": min_p, "temperature": temperature, "top_p": 1.0, "top_k": 0, "max_tokens": max_tokens}

    def __call__(self, messages: list[dict]) -> str:
        answer = self.llm.create_chat_completion(messages, **self.options)
        return answer["choices"][0]["message"]["content"] or ""

    def close(self) -> None:
        self.llm.close()


@dataclass(frozen=True)
class Trajectory:
    scenario: str
    requests: tuple[SuggestionRequest, ...]
    replies: tuple[str, ...]
    turn_scores: tuple[float, ...]

    @property
    def score(self) -> float:
        return fmean(self.turn_scores)


def simulate(
    scenario: Scenario, policy: Policy, client: ChatFn, pack: RewardPack, trajectories: int = 4, turns: int = 2
) -> list[Trajectory]:
    """`trajectories` sessions of `turns` therapist replies from the scenario's opening."""
    if trajectories < 2 or turns < 1:
        raise ValueError("need at least two trajectories and one turn")
    emotion = EmotionReading(scenario.emotion)
    contexts: list[tuple[Turn, ...]] = [()] * trajectories
    client_words = [scenario.opening] * trajectories
    requests: list[list[SuggestionRequest]] = [[] for _ in range(trajectories)]
    replies: list[list[str]] = [[] for _ in range(trajectories)]
    scores: list[list[float]] = [[] for _ in range(trajectories)]
    for turn in range(turns):
        batch = [SuggestionRequest(client_words[i], contexts[i], emotion) for i in range(trajectories)]
        raw = policy(batch)
        columns = {"client_words": client_words, "emotion": [scenario.emotion] * trajectories}
        totals = pack.total(pack.score(raw, **columns))
        for i in range(trajectories):
            reply = parse_reply(raw[i]).text
            requests[i].append(batch[i])
            replies[i].append(reply)
            scores[i].append(totals[i])
            contexts[i] = contexts[i] + (Turn("client", client_words[i]), Turn("therapist", reply or "..."))
        if turn + 1 < turns:
            for i in range(trajectories):
                answer = client_text(client(client_messages(scenario, contexts[i])))
                client_words[i] = answer or "I'm not sure what to say."
    return [
        Trajectory(scenario.id, tuple(requests[i]), tuple(replies[i]), tuple(scores[i])) for i in range(trajectories)
    ]


def best_worst_pair(trajectories: Sequence[Trajectory], margin: float) -> PreferencePair | None:
    """The best vs the worst trajectory's first reply, when their scores differ by `margin`."""
    ranked = sorted(trajectories, key=lambda t: t.score)
    worst, best = ranked[0], ranked[-1]
    gap = best.score - worst.score
    if gap < margin or not best.replies[0] or not worst.replies[0] or best.replies[0] == worst.replies[0]:
        return None
    return PreferencePair(best.requests[0], best.replies[0], worst.replies[0], "simulated", best.scenario, gap)


@dataclass(frozen=True)
class SimulationLog:
    """What was simulated, for the run folder (ids and numbers, no text)."""

    rounds: list[dict]


def curriculum_for(scenarios: Sequence[Scenario], exploration: float = 1.0, seed: int = 0) -> Curriculum:
    """A curriculum over the scenarios' groups (in their first-seen order)."""
    return Curriculum(list(dict.fromkeys(s.group for s in scenarios)), exploration, seed)


def simulate_pairs(
    scenarios: Sequence[Scenario],
    policy: Policy,
    client: ChatFn,
    pack: RewardPack,
    rounds: int = 2,
    groups_per_round: int = 2,
    trajectories: int = 4,
    turns: int = 2,
    margin: float = 0.1,
    seed: int = 0,
    exploration: float = 1.0,
    curriculum: Curriculum | None = None,
    first_round: int = 0,
) -> tuple[list[PreferencePair], SimulationLog]:
    """Curriculum rounds: pick groups by learning potential, simulate one scenario of each, pair.
    A `curriculum` passed in (PAPRIKA's rounds of training) is updated in place, so the
    next call picks from everything simulated so far; `first_round` numbers the rounds on."""
    by_group: dict[str, list[Scenario]] = {}
    for scenario in scenarios:
        by_group.setdefault(scenario.group, []).append(scenario)
    curriculum = curriculum if curriculum is not None else curriculum_for(scenarios, exploration, seed)
    rng = random.Random(seed + first_round)
    pairs, log_rows = [], []
    picked = min(groups_per_round, len(by_group))
    bar = progress(desc="simulating", total=rounds * picked, unit="scenario")
    for number in range(first_round, first_round + rounds):
        for group in curriculum.select(picked):
            scenario = rng.choice(by_group[group])
            sampled = simulate(scenario, policy, client, pack, trajectories, turns)
            curriculum.record(group, [t.score for t in sampled])
            pair = best_worst_pair(sampled, margin)
            if pair is not None:
                pairs.append(pair)
            log_rows.append(
                {
                    "round": number,
                    "group": group,
                    "scenario": scenario.id,
                    "scores": [round(t.score, 4) for t in sampled],
                    "paired": pair is not None,
                }
            )
            log.info("simulated %s (%s): scores %s", scenario.id, group, [round(t.score, 3) for t in sampled])
            bar.update()
    bar.close()
    return pairs, SimulationLog(log_rows)
