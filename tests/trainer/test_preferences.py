"""Preference pairs from an authored app export and from simulated sessions; the curriculum."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from therapist_app.core.dialogue_format import IM_END, Example, render_prompt
from trainer.curriculum import Curriculum
from trainer.preferences import pairs_from_app_export, pairs_from_decisions
from trainer.rewards import build_reward_pack
from trainer.simulator import Scenario, best_worst_pair, client_messages, load_scenarios, simulate, simulate_pairs

ROOT = Path(__file__).resolve().parents[2]
EXPORT = ROOT / "assets" / "app_export_sample.jsonl"


def test_pairs_from_the_authored_app_export():
    pairs, stats = pairs_from_app_export(EXPORT)
    assert (stats.rounds, stats.pairs, stats.rounds_without_kept, stats.rounds_without_turned_down) == (4, 1, 1, 1)
    # The accepted reflection makes no suggestion and gives no information, so it is not
    # paired with the drafts decoded to do those (`off_directive`).
    assert stats.off_directive == 3
    got = {(p.group, p.chosen[:30], p.rejected[:30], p.request.strategy) for p in pairs}
    assert got == {("app-demo-1-4", "When you lie awake like that, ", "What do you think about?", "question")}
    edited = next(p for p in pairs if p.rejected == "What do you think about?")
    assert edited.request.client_words == "Mostly I lie awake going over what I didn't finish."
    assert len(edited.request.context) == 2
    row = edited.to_dpo_row()
    assert row["prompt"] == render_prompt(edited.request)
    assert row["chosen"].endswith(IM_END) and row["rejected"] == "What do you think about?" + IM_END


def _decision(decision, suggestion, reply=None, conversation="c", words="I feel stuck."):
    return Example(words, reply, conversation_id=conversation, decision=decision, suggestion=suggestion, source="app")


def test_pair_rules():
    pairs, stats = pairs_from_decisions(
        [
            _decision("accepted", "That sounds hard.", "That sounds hard."),
            _decision("rejected", "that  sounds HARD."),  # the same text as the kept one: no pair
            _decision("rejected", "Cheer up."),
            _decision("rejected", "Cheer up.", conversation="other"),  # another round: nothing kept there
        ]
    )
    assert [(p.chosen, p.rejected) for p in pairs] == [("That sounds hard.", "Cheer up.")]
    assert stats.identical_skipped == 1 and stats.rounds_without_kept == 1
    unchanged_edit, _ = pairs_from_decisions([_decision("edited", "Tell me more.", "Tell me more.")])
    assert unchanged_edit == []
    with pytest.raises(ValueError, match="not an app decision"):
        pairs_from_decisions([Example("x", "y")])


def test_pairs_from_all_five_decisions():
    """Per round: what answered the client (accepted, edited final text, own reply) over what
    was turned down (rejected, not chosen, the original of a changing edit)."""
    pairs, stats = pairs_from_decisions(
        [
            # Round 1: one draft rejected, one accepted, the third left unchosen by the acceptance.
            _decision("rejected", "Cheer up."),
            _decision("accepted", "That sounds hard.", "That sounds hard."),
            _decision("not_chosen", "Have you tried yoga?"),
            # Round 2 (new words): an edit that changed its draft; the other draft went unchosen.
            _decision("edited", "Why now?", "What made today the day?", words="I quit."),
            _decision("not_chosen", "Good for you.", words="I quit."),
            # Round 3: the therapist typed their own words; every draft went unchosen, one of them
            # the same text as the own reply (no pair).
            _decision("not_chosen", "You sound tired.", words="Long week."),
            _decision("not_chosen", "you sound  TIRED.", words="Long week."),
            Example("Long week.", "You sound tired.", conversation_id="c", decision="own", source="app"),
            # Round 4: only rejections, nothing answered yet.
            _decision("rejected", "Calm down.", words="Ugh."),
        ]
    )
    assert {(p.request.client_words, p.chosen, p.rejected) for p in pairs} == {
        ("I feel stuck.", "That sounds hard.", "Cheer up."),
        ("I feel stuck.", "That sounds hard.", "Have you tried yoga?"),
        ("I quit.", "What made today the day?", "Why now?"),  # over the edit's own original
        ("I quit.", "What made today the day?", "Good for you."),
    }
    assert len(pairs) == 4 and all(p.source == "app" for p in pairs)
    assert (
        stats.rounds,
        stats.pairs,
        stats.rounds_without_kept,
        stats.rounds_without_turned_down,
        stats.identical_skipped,
    ) == (4, 4, 1, 0, 2)
    assert stats.decisions == {"accepted": 1, "edited": 1, "not_chosen": 4, "own": 1, "rejected": 2}
    own_pairs, _ = pairs_from_decisions(
        [
            Example("Long week.", "That is a lot to carry.", conversation_id="c", decision="own", source="app"),
            _decision("not_chosen", "You sound tired.", words="Long week."),
            _decision("rejected", "Sleep more.", words="Long week."),
        ]
    )
    assert [(p.chosen, p.rejected) for p in own_pairs] == [
        ("That is a lot to carry.", "You sound tired."),
        ("That is a lot to carry.", "Sleep more."),
    ]
    row = own_pairs[0].to_dpo_row()
    assert row["chosen"] == "That is a lot to carry." + IM_END and row["prompt"].endswith("assistant\n")


def test_a_pair_is_trained_under_the_directive_its_turned_down_draft_answered():
    # Each draft of a round was decoded under its own strategy's directive. A kept text is
    # preferred over a draft only under that draft's directive, and only when it carries
    # that strategy out too: both then answer the same instruction.
    def draft(decision, strategy, suggestion, reply=None):
        return Example("I quit.", reply, conversation_id="c", strategy=strategy, decision=decision,
                       suggestion=suggestion, source="app")  # fmt: skip

    relieved = "It sounds like you feel relieved, and a bit scared too."
    pairs, stats = pairs_from_decisions(
        [
            draft("rejected", "question", "Why now?"),
            draft("edited", "reflection", "You sound relieved.", relieved),
            draft("not_chosen", "suggestion", "You could write down your reasons."),
            Example("I quit.", "What made today the day?", conversation_id="c", decision="own", source="app"),
        ]
    )
    assert {(p.chosen, p.rejected): p.request.strategy for p in pairs} == {
        (relieved, "You sound relieved."): "reflection",  # the edit over its own original
        ("What made today the day?", "Why now?"): "question",  # the own reply asks, as the draft did
    }
    # Neither kept text makes a suggestion, and the question carries out no reflection.
    assert stats.off_directive == 4
    assert "Strategy: Reflection" in next(p for p in pairs if p.chosen == relieved).to_dpo_row()["prompt"]


def test_an_edit_that_changes_the_move_makes_no_pair_with_its_original():
    # A reflection edited into a question: preferring it under the reflection's directive
    # would teach the model that the directive does not matter.
    rows = [
        Example("I quit.", "What scares you most about it?", conversation_id="c", strategy="reflection",
                decision="edited", suggestion="You sound relieved.", source="app"),
    ]  # fmt: skip
    pairs, stats = pairs_from_decisions(rows)
    assert pairs == [] and stats.off_directive == 1


def test_curriculum_prefers_groups_whose_scores_vary():
    curriculum = Curriculum(["calm", "mixed", "new"], exploration=0.1, seed=3)
    curriculum.record("calm", [0.5, 0.5, 0.5])
    curriculum.record("mixed", [0.0, 1.0, 0.2])
    assert curriculum.select(1) == ["new"]  # untried first
    curriculum.record("new", [0.4, 0.41])
    assert curriculum.select(1) == ["mixed"]
    with pytest.raises(ValueError, match="two trajectory scores"):
        curriculum.record("calm", [1.0])
    with pytest.raises(ValueError, match="unknown scenario group"):
        curriculum.record("other", [1.0, 2.0])


def test_the_authored_scenarios_load():
    scenarios = load_scenarios()
    assert len(scenarios) >= 10 and len({s.group for s in scenarios}) >= 5
    messages = client_messages(scenarios[0], ())
    assert messages[0]["role"] == "system" and scenarios[0].persona in messages[0]["content"]


SCENARIO = Scenario("s1", "anxiety", "anxiety", "exams", "Sam, a student.", "I can't sleep before exams.")


def test_simulated_sessions_pair_the_best_and_worst_trajectory():
    replies = itertools.cycle(["It sounds like you feel anxious about it.", "You have an anxiety disorder."])
    seen_prompts = []

    def policy(requests):
        seen_prompts.extend(render_prompt(r) for r in requests)
        return [next(replies) for _ in requests]

    client_turns = []

    def client(messages):
        client_turns.append(messages)
        return "Client: I suppose. It's been weeks."

    pack = build_reward_pack(["emotion_alignment", "safety"], [1.0, 1.0], {"emotion_alignment": {"classifier": None}})
    trajectories = simulate(SCENARIO, policy, client, pack, trajectories=4, turns=2)
    assert len(trajectories) == 4 and all(len(t.replies) == 2 for t in trajectories)
    # Every trajectory starts from the same prompt; the simulator answered after turn 1 only.
    assert len(set(seen_prompts[:4])) == 1 and len(client_turns) == 4
    assert trajectories[1].requests[1].client_words == "I suppose. It's been weeks."
    assert client_turns[0][-1] == {"role": "user", "content": "It sounds like you feel anxious about it."}
    pair = best_worst_pair(trajectories, margin=0.5)
    assert (
        pair.chosen == "It sounds like you feel anxious about it." and pair.rejected == "You have an anxiety disorder."
    )
    # 1.0 + 1.0 against 0.6 (names the feeling, no reflective frame) - 1.0 (diagnosis)
    assert pair.margin == pytest.approx(2.4) and pair.source == "simulated"
    assert best_worst_pair(trajectories, margin=2.5) is None  # gap below the margin


def test_simulate_pairs_runs_curriculum_rounds():
    replies = itertools.cycle(["It sounds like you feel anxious.", "Calm down."])
    scenarios = [SCENARIO, Scenario("s2", "grief", "grief", "loss", "Ruth.", "My dog died.")]
    pack = build_reward_pack(["emotion_alignment"], [1.0], {"emotion_alignment": {"classifier": None}})
    pairs, log = simulate_pairs(
        scenarios,
        lambda reqs: [next(replies) for _ in reqs],
        lambda m: "Yes.",
        pack,
        rounds=2,
        groups_per_round=2,
        trajectories=2,
        turns=1,
        margin=0.0,
    )
    assert len(log.rounds) == 4 and {r["group"] for r in log.rounds[:2]} == {"anxiety", "grief"}
    assert all(isinstance(s, float) for r in log.rounds for s in r["scores"])
    assert len(pairs) == sum(r["paired"] for r in log.rounds) >= 1
