"""The run layer: one place for training plumbing, enforced by parsing imports; settings
bounds declared once; the one metrics callback's arithmetic; shared splits; exit codes;
progress bars only on a terminal; and (slow) GRPO and DPO under a two-process
`accelerate launch` writing one run folder."""

from __future__ import annotations

import argparse
import ast
import io
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest

from therapist_app.core.dialogue_format import Example
from trainer.config import ConfigError, Settings, add_config_arguments, setting
from trainer.data.records import write_jsonl
from trainer.run import DataSettings, TrainSettings, command

ROOT = Path(__file__).resolve().parents[2]
TRAINER = ROOT / "trainer"
SEED = ROOT / "assets" / "seed_corpus.jsonl"
# The modules that may import trainer.sft: the `sft` command itself, and continual
# self-training, which runs that command as one stage of each round.
SFT_USERS = {"trainer.cli.sft", "trainer.self_training"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[str, tuple[str, ...]]]:
    """(module, names) for every import in the file, top level or inside functions."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, ()) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, tuple(alias.name for alias in node.names)))
    return found


TRAINER_MODULES = {_module_name(p): p for p in TRAINER.rglob("*.py")}


def test_only_the_sft_command_imports_the_sft_module():
    offenders = sorted(
        name
        for name, path in TRAINER_MODULES.items()
        if name not in SFT_USERS | {"trainer.sft"}
        for module, names in _imports(path)
        if module == "trainer.sft" or (module == "trainer" and "sft" in names)
    )
    assert offenders == [], "shared plumbing belongs in trainer.run, not trainer.sft"


def test_no_trainer_module_imports_another_ones_private_names():
    offenders = sorted(
        f"{name}: {module}.{imported}"
        for name, path in TRAINER_MODULES.items()
        for module, names in _imports(path)
        if module.startswith("trainer") and module != name
        for imported in names
        if imported.startswith("_") and not imported.startswith("__")
    )
    assert offenders == []


def test_the_import_check_sees_imports_inside_functions(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from trainer.sft import load_splits\n    from trainer.config import _f\n")
    assert _imports(sample) == [("trainer.sft", ("load_splits",)), ("trainer.config", ("_f",))]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"lora_r": 0}, "lora_r must be at least 1, not 0"),
        ({"learning_rate": 1.0}, r"learning_rate must be within \(0, 1\), not 1.0"),
        ({"lora_dropout": -0.1}, r"lora_dropout must be within \[0, 1\), not -0.1"),
        ({"finetune": "qlora"}, "finetune must be one of lora, full, not 'qlora'"),
        ({"max_steps": 0}, "max_steps must be -1"),
        ({"max_steps": -1, "epochs": 0.0}, "epochs must be above 0"),
        ({"num_threads": -1}, "num_threads must be at least 0"),
    ],
)
def test_train_settings_are_checked_against_their_declared_bounds(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        TrainSettings(**kwargs)


def test_every_command_shares_the_declared_fields_and_changes_only_defaults():
    from dataclasses import fields

    from trainer.dpo import DPOSettings
    from trainer.grpo import GRPOSettings
    from trainer.sft import SFTSettings

    shared = {f.name: f.metadata for f in fields(TrainSettings)}
    for cls in (SFTSettings, GRPOSettings, DPOSettings):
        own = {f.name: f.metadata for f in fields(cls)}
        assert {name: own[name] for name in shared} == shared, cls.__name__
    assert GRPOSettings().lora_target_modules == DPOSettings(app_export="x").lora_target_modules == "all-linear"
    assert (SFTSettings().output_dir, GRPOSettings().output_dir, DPOSettings(app_export="x").output_dir) == (
        "runs/sft",
        "runs/grpo",
        "runs/dpo",
    )


def test_help_shows_the_bounds():
    @dataclass(frozen=True)
    class Demo(Settings):
        rank: int = setting(16, "LoRA rank", at_least=1)

    parser = argparse.ArgumentParser()
    add_config_arguments(parser, Demo)
    assert "LoRA rank (default: 16; at least 1)" in parser.format_help()


def test_lora_targets_are_configurable_for_rl(tiny_model):
    from trainer.grpo import GRPOSettings
    from trainer.models import load_causal_lm
    from trainer.run import lora_config

    model = load_causal_lm(str(tiny_model))
    config = lora_config(GRPOSettings(lora_target_modules="q_proj, v_proj", lora_top_layers=1, lora_r=4), model)
    assert sorted(config.target_modules) == ["q_proj", "v_proj"] and config.r == 4
    assert config.layers_to_transform == [1]
    assert lora_config(GRPOSettings(finetune="full"), model) is None


def test_sft_grpo_and_eval_split_one_file_alike(tmp_path):
    from trainer.evaluate import EvalSettings, select_examples
    from trainer.grpo import GRPOSettings
    from trainer.sft import SFTSettings

    sft, _ = SFTSettings(seed=3).read_splits(("train", "validation", "test"), 3)
    grpo, files = GRPOSettings(seed=3).read_splits(("train",), 3)
    assert files[0].name == "seed_corpus.jsonl"
    assert [e.id for e in grpo["train"]] == [e.id for e in sft["train"]]
    assert [e.id for e in select_examples(EvalSettings(seed=3))] == [e.id for e in sft["test"]]


def test_a_split_folder_gives_each_split_its_file(tmp_path):
    for name in ("train", "validation"):
        write_jsonl([Example(f"{name} words", "A reply.", conversation_id=name, id=name)], tmp_path / f"{name}.jsonl")
    splits, files = DataSettings(data=str(tmp_path)).read_splits(("train", "validation"), 0)
    assert [e.id for e in splits["train"]] == ["train"] and [f.name for f in files] == [
        "train.jsonl",
        "validation.jsonl",
    ]
    every, _ = DataSettings(data=str(tmp_path)).read_splits(("all",), 0)
    assert [e.id for e in every["all"]] == ["train", "validation"]
    from trainer.data.records import DataError

    with pytest.raises(DataError, match="lacks test.jsonl"):
        DataSettings(data=str(tmp_path)).read_splits(("test",), 0)


def test_metrics_callback_measures_tokens_between_training_logs_without_validation(tmp_path, monkeypatch):
    from trainer.run_folder import RunFolder
    from trainer.run_metrics import MetricsCallback

    clock = iter([10.0, 12.0, 13.0, 20.0, 24.0])  # log, log, eval (and its restart), log
    monkeypatch.setattr("trainer.run_metrics.time", SimpleNamespace(perf_counter=lambda: next(clock)))
    callback = MetricsCallback(RunFolder(tmp_path))
    state = SimpleNamespace(global_step=0, epoch=0.0)
    callback.on_train_begin(None, state, None)
    for step, logs in (
        (1, {"loss": 2.0, "num_tokens": 100.0}),
        (2, {"loss": 1.5, "num_tokens": 300.0}),
        (2, {"eval_loss": 1.7}),
        (3, {"loss": 1.0, "num_tokens": 700.0, "rewards/x/mean": float("nan")}),
    ):
        state.global_step = step
        callback.on_log(None, state, None, logs=logs)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r.get("tokens_per_second") for r in rows] == [None, 100.0, None, 100.0]  # 200/2 s, then 400/4 s
    assert "rewards/x/mean" not in rows[-1]  # non-finite values are not written
    assert callback.tokens_per_second() == pytest.approx(600 / 6)


def test_command_turns_expected_failures_into_exit_codes(capsys):
    from trainer.export.errors import ExportError, VerificationFailed
    from trainer.run import TrainError

    @command(ExportError)
    def fails(args):
        raise args

    assert fails(TrainError("lower --batch-size")) == 2
    assert capsys.readouterr().err == "error: lower --batch-size\n"
    assert fails(VerificationFailed("top-1 0.5")) == 1
    with pytest.raises(KeyError):  # an unexpected failure keeps its traceback
        fails(KeyError("bug"))


def test_progress_bars_show_only_on_a_terminal(monkeypatch):
    from trainer.progress import progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert progress(range(2), desc="x").disable
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    bar = progress(range(2), desc="reading", unit="row")
    assert not bar.disable and list(bar) == [0, 1]
    assert "reading" in terminal.getvalue()


@pytest.mark.slow
@pytest.mark.parametrize(
    "command_line",
    [
        [
            "grpo",
            "--num-generations",
            "2",
            "--max-completion-length",
            "4",
            "--rewards",
            "reference_agreement,format_compliance",
            "--reward-weights",
            "1,1",
        ],
        ["dpo", "--app-export", str(ROOT / "assets" / "app_export_sample.jsonl")],
    ],
    ids=["grpo", "dpo"],
)
def test_two_processes_under_accelerate_launch_write_one_run_folder(command_line, tiny_model, tmp_path):
    """Two CPU processes over gloo, the second starting 1.5 s after the first: a run
    folder named by each rank's own clock would be two folders.

    accelerate 1.x's `--cpu --num_processes 2` starts a single process unless given an
    MPI hostfile (mpirun); `--multi_gpu` on a machine without GPUs starts torchrun with
    two CPU processes, the data-parallel path this must exercise.
    """
    accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent))
    if accelerate is None:
        pytest.skip("the accelerate launcher is not installed")
    import torch

    if torch.cuda.is_available():
        pytest.skip("this check is for CPU-only machines")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [
            accelerate,
            "launch",
            "--multi_gpu",
            "--num_processes",
            "2",
            "--num_machines",
            "1",
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
            str(Path(__file__).with_name("launch_staggered.py")),
            *command_line,
            "--model",
            str(tiny_model),
            "--output-dir",
            str(tmp_path),
            "--max-steps",
            "2",
            "--batch-size",
            "1",
            "--max-length",
            "256",
            "--num-threads",
            "1",
            "--emotion-classifier",
            "none",
            "--save-steps",
            "100",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (run,) = tmp_path.iterdir()
    info = json.loads((run / "run.json").read_text())["runs"]
    assert len(info) == 1 and info[0]["world_size"] == 2 and info[0]["results"]["global_step"] == 2
    assert (run / "final" / "adapter_model.safetensors").is_file()
    assert (run / "merged" / "model.safetensors").is_file()
