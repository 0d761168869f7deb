"""The behaviour counter and the priming examples; the continual self-training filter."""

from __future__ import annotations

import json

import pytest

from therapist_app.core.dialogue_format import Example
from trainer.behaviours import behaviours_in, count_behaviours, load_priming
from trainer.cli import main
from trainer.config import ConfigError
from trainer.data.records import read_jsonl
from trainer.rewards import build_reward_pack
from trainer.rewards.resources import load_risk_detector
from trainer.self_training import SelfTrainSettings, decide, run_self_training


@pytest.mark.parametrize(
    "reply, expected",
    [
        ("Did I get that right?", ("checking_understanding",)),
        ("Correct me if I'm wrong, but it's the mornings.", ("checking_understanding",)),
        ("What I'm hearing is that work and home both pull at you.", ("summarising",)),
        ("Would it help to try one small thing this week?", ("asking_before_advising",)),
        ("Can I offer an idea?", ("asking_before_advising",)),
        ("So far you've told me it's lonely. Is that right?", ("checking_understanding", "summarising")),
        ("You should go to bed earlier.", ()),
        ("That sounds hard.", ()),
    ],
)
def test_behaviour_counter(reply, expected):
    assert behaviours_in(reply) == expected


def test_priming_examples_all_show_a_behaviour_and_cover_all_three():
    examples = load_priming()
    assert len(examples) >= 20 and len({e.conversation_id for e in examples}) >= 6
    counts = count_behaviours(e.reply for e in examples)
    assert all(count >= 5 for count in counts.values()), counts


def test_priming_loader_refuses_examples_without_behaviours(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(Example("I feel low.", "That sounds hard.", id="x").to_json() + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="shows no reflective behaviour: x"):
        load_priming(path)


EXAMPLES = [
    Example(
        "I feel so alone since the move.", "It sounds lonely.", emotion="loneliness", strategy="reflection", id=f"e{i}"
    )
    for i in range(5)
]
PACK = build_reward_pack(
    ["emotion_alignment", "strategy_adherence", "safety", "format_compliance"],
    [1, 1, 2, 0.5],
    {"emotion_alignment": {"classifier": None}},
)


def test_self_training_keeps_only_valid_confident_replies():
    completions = [
        "It sounds like you feel really alone since the move.",  # kept
        "",  # empty
        "It sounds like you feel alone. And then I",  # cut off
        "You have depression.",  # unsafe
        "Okay.",  # valid but the ensemble is not confident
    ]
    kept, decisions = decide(EXAMPLES, completions, PACK, threshold=0.8, detector=load_risk_detector())
    assert [d.reason for d in decisions] == ["kept", "empty", "truncated", "unsafe: diagnosis", "low confidence"]
    assert [e.id for e in kept] == ["e0-self"]
    assert kept[0].reply == completions[0] and kept[0].source == "self-training"
    assert decisions[0].confidence >= 0.8 > decisions[4].confidence
    assert set(decisions[0].scores) == set(PACK.names)


def test_self_training_writes_data_and_a_text_free_record(tmp_path):
    data = tmp_path / "prompts.jsonl"
    data.write_text("\n".join(e.to_json() for e in EXAMPLES[:2]) + "\n", encoding="utf-8")
    settings = SelfTrainSettings(
        data=str(data),
        output=str(tmp_path / "kept.jsonl"),
        threshold=0.8,
        rewards="emotion_alignment,safety",
        reward_weights="1,1",
        emotion_classifier="none",
    )
    replies = iter(["It sounds like you feel alone since the move.", "Calm down."])
    output, record, decisions = run_self_training(
        settings, generator=lambda requests: [next(replies) for _ in requests]
    )
    assert [e.id for e in read_jsonl(output).examples] == ["e0-self"]
    rows = [json.loads(line) for line in record.read_text(encoding="utf-8").splitlines()]
    assert [r["kept"] for r in rows] == [True, False]
    assert "alone" not in record.read_text(encoding="utf-8")


def test_self_train_command_on_a_tiny_model(tiny_model, tmp_path, capsys):
    out = tmp_path / "kept.jsonl"
    code = main(
        [
            "self-train",
            "--model",
            str(tiny_model),
            "--max-examples",
            "2",
            "--max-new-tokens",
            "6",
            "--output",
            str(out),
            "--emotion-classifier",
            "none",
            "--rewards",
            "safety,format_compliance",
            "--reward-weights",
            "1,1",
        ]
    )
    assert code == 0, capsys.readouterr().err
    assert "of 2 replies" in capsys.readouterr().out
    assert len(out.with_name("kept.decisions.jsonl").read_text(encoding="utf-8").splitlines()) == 2


def test_continual_self_training_runs_rounds_on_the_model_each_round_trained(tiny_model, tmp_path, capsys):
    sft = tmp_path / "sft.toml"
    sft.write_text(
        'finetune = "full"\nbatch_size = 2\nmax_length = 256\nnum_threads = 2\neval_steps = 0\n'
        "learning_rate = 0.01\nwarmup_ratio = 0.0\n"
    )
    out = tmp_path / "self" / "kept.jsonl"
    code = main(
        [
            "self-train",
            "--model",
            str(tiny_model),
            "--max-examples",
            "3",
            "--max-new-tokens",
            "12",
            "--output",
            str(out),
            "--emotion-classifier",
            "none",
            "--rewards",
            "safety,format_compliance",
            "--reward-weights",
            "1,1",
            "--threshold",
            "0",
            "--rounds",
            "2",
            "--sft-steps",
            "1",
            "--sft-config",
            str(sft),
        ]
    )
    assert code == 0, capsys.readouterr().err
    rounds = json.loads((tmp_path / "self" / "rounds.json").read_text())["rounds"]
    # Two trained rounds and a last pass that only scores the final model.
    assert [r["round"] for r in rounds] == [1, 2, 3] and rounds[-1]["evaluation_only"]
    assert rounds[0]["model"] == str(tiny_model)
    for before, after in zip(rounds, rounds[1:]):
        assert after["model"] == str(tmp_path / "self" / f"round-{before['round']}" / "sft" / "final")
    for entry in rounds[:2]:
        assert entry["prompts"] == 3 and sum(entry["reasons"].values()) == 3
        assert entry["kept"] == entry["reasons"]["kept"]
        assert entry["sft"]["global_step"] == 1 and entry["sft"]["train_examples"] == entry["kept"]
        assert entry["sft"]["validation_loss"] > 0
        kept_rows = (tmp_path / "self" / f"round-{entry['round']}" / "train.jsonl").read_text().splitlines()
        assert len(kept_rows) == entry["kept"]
    assert "round 2: kept" in capsys.readouterr().out
    with pytest.raises(ConfigError, match="sft_steps"):
        SelfTrainSettings(model="m", rounds=2)
