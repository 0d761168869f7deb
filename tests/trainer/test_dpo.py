"""DPO on a tiny model: pairs from the authored app export and from simulated sessions;
a few steps finish and raise the chosen-vs-rejected log-probability margin."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from trainer.cli import main
from trainer.config import ConfigError

pytest.importorskip("trl")

from trainer.dpo import DPOSettings  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
EXPORT = ROOT / "assets" / "app_export_sample.jsonl"
QUICK = [
    "--finetune",
    "full",
    "--batch-size",
    "2",
    "--learning-rate",
    "0.001",
    "--num-threads",
    "1",
    "--max-length",
    "256",
    "--emotion-classifier",
    "none",
]


def _results(run: Path) -> dict:
    return json.loads((run / "run.json").read_text(encoding="utf-8"))["runs"][-1]


def test_dpo_on_app_decisions_raises_the_preference_margin(tiny_model, tmp_path, capsys):
    code = main(
        [
            "dpo",
            "--model",
            str(tiny_model),
            "--app-export",
            str(EXPORT),
            "--output-dir",
            str(tmp_path),
            "--run-name",
            "app",
            "--max-steps",
            "4",
            "--ld-alpha",
            "0.5",
            *QUICK,
        ]
    )
    assert code == 0, capsys.readouterr().err
    info = _results(tmp_path / "app")
    assert tomllib.loads((tmp_path / "app" / "config.toml").read_text(encoding="utf-8"))["ld_alpha"] == 0.5
    # One pair under the pairing rule: the edit over its own original (trainer/preferences.py).
    assert info["pairs"] == 1 and info["app_export"]["rounds"] == 4
    results = info["results"]
    assert results["global_step"] == 4
    assert results["logprob_margin_after"] > results["logprob_margin_before"]
    rows = [json.loads(line) for line in (tmp_path / "app" / "metrics.jsonl").read_text().splitlines()]
    assert any("rewards/margins" in r for r in rows)
    assert "margin" in capsys.readouterr().out


def test_dpo_on_simulated_sessions(tiny_model, tiny_gguf, tmp_path, capsys):
    code = main(
        [
            "dpo",
            "--model",
            str(tiny_model),
            "--simulate",
            "--simulator-model",
            str(tiny_gguf),
            "--simulation-rounds",
            "1",
            "--groups-per-round",
            "2",
            "--trajectories",
            "3",
            "--turns",
            "2",
            "--max-new-tokens",
            "8",
            "--margin",
            "0",
            "--rewards",
            "emotion_alignment,reference_agreement,safety,format_compliance,repetition_penalty",
            "--reward-weights",
            "1,1,2,0.5,1",
            "--output-dir",
            str(tmp_path),
            "--run-name",
            "sim",
            "--max-steps",
            "2",
            *QUICK,
        ]
    )
    assert code == 0, capsys.readouterr().err
    info = _results(tmp_path / "sim")
    assert len(info["simulation"]) == 2 and all(len(r["scores"]) == 3 for r in info["simulation"])
    assert info["pairs"] == sum(r["paired"] for r in info["simulation"]) >= 1
    assert info["results"]["global_step"] == 2


def test_paprika_rounds_simulate_with_the_policy_the_round_before_trained(tiny_model, tiny_gguf, tmp_path, capsys):
    code = main(
        [
            "dpo",
            "--model",
            str(tiny_model),
            "--simulate",
            "--simulator-model",
            str(tiny_gguf),
            "--rounds",
            "2",
            "--simulation-rounds",
            "1",
            "--groups-per-round",
            "2",
            "--trajectories",
            "2",
            "--turns",
            "1",
            "--max-new-tokens",
            "6",
            "--margin",
            "0",
            "--rewards",
            "emotion_alignment,format_compliance",
            "--reward-weights",
            "1,1",
            "--output-dir",
            str(tmp_path),
            "--run-name",
            "paprika",
            "--max-steps",
            "1",
            *QUICK,
        ]
    )
    assert code == 0, capsys.readouterr().err
    rounds = json.loads((tmp_path / "paprika" / "rounds.json").read_text())["rounds"]
    assert [r["round"] for r in rounds] == [1, 2]
    # Round 2 starts from (and simulates with) the policy round 1 trained.
    assert rounds[0]["model"] == str(tiny_model)
    assert rounds[1]["model"] == str(tmp_path / "paprika" / "round-1" / "final")
    assert f'model = "{rounds[1]["model"]}"' in (tmp_path / "paprika" / "round-2" / "config.toml").read_text()
    first, second = (_results(tmp_path / "paprika" / f"round-{k}")["simulation"] for k in (1, 2))
    assert [r["round"] for r in first] == [0, 0] and [r["round"] for r in second] == [1, 1]
    # The curriculum carried over: round 2 tried the groups round 1 had not (untried first).
    assert not {r["group"] for r in first} & {r["group"] for r in second}
    assert all(r["global_step"] == 1 for r in rounds)


def test_dpo_settings_are_checked(tmp_path, capsys):
    with pytest.raises(ConfigError, match="no preference data"):
        DPOSettings(model="m")
    with pytest.raises(ConfigError, match="rounds above 1 need --simulate"):
        DPOSettings(model="m", app_export="x", rounds=2)
    with pytest.raises(ConfigError, match="ld_alpha"):
        DPOSettings(model="m", app_export="x", ld_alpha=1.5)
    with pytest.raises(ConfigError, match="trajectories"):
        DPOSettings(model="m", simulate=True, trajectories=1)
    assert main(["dpo", "--model", str(tmp_path / "none"), "--app-export", str(EXPORT)]) == 2
    assert "error:" in capsys.readouterr().err
