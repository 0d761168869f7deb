"""SFT on real tiny models: run folder, resume, full fine-tuning, clear errors, and
(slow) LoRA on the imported SmolLM2 lowering the validation loss on the seed corpus."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from therapist_app.core.dialogue_format import Example, Turn
from trainer.cli import main
from trainer.config import ConfigError, load_config
from trainer.data.records import file_sha256, write_jsonl

pytest.importorskip("trl")

from trainer.run import TrainError, oom_advice  # noqa: E402
from trainer.sft import SFTSettings, run_sft, tokenize_examples  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "assets" / "seed_corpus.jsonl"
QUICK = ["--max-length", "256", "--batch-size", "4", "--logging-steps", "1", "--num-threads", "1"]


def _words(text: str) -> list[int]:
    return [len(w) for w in text.split()]


def test_long_prompts_lose_old_context_not_the_reply():
    long_context = tuple(Turn("client" if i % 2 == 0 else "therapist", "word " * 40) for i in range(6))
    example = Example("I feel tired.", "That sounds hard.", context=long_context, strategy="reflection")
    rows, dropped = tokenize_examples([example], _words, max_length=220)
    assert dropped == 0
    row = rows[0]
    assert len(row["input_ids"]) <= 220 and row["length"] == len(row["input_ids"])
    reply_ids = _words("That sounds hard.<|im_end|>\n")
    assert row["input_ids"][-len(reply_ids) :] == reply_ids
    assert row["completion_mask"] == [0] * (len(row["input_ids"]) - len(reply_ids)) + [1] * len(reply_ids)
    full, _ = tokenize_examples([example], _words, max_length=10_000)
    assert len(full[0]["input_ids"]) > len(row["input_ids"])  # context really was dropped


def test_examples_that_cannot_fit_are_dropped():
    example = Example("word " * 300, "That sounds hard.")
    assert tokenize_examples([example], _words, max_length=100) == ([], 1)


def test_config_precedence_defaults_file_flags(tmp_path):
    config = tmp_path / "sft.toml"
    config.write_text('model = "m"\nmax_length = 128\nlearning_rate = 1\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="learning_rate"):
        load_config(SFTSettings, config)
    config.write_text('model = "m"\nmax_length = 128\nbatch_size = 2\n', encoding="utf-8")
    settings = load_config(SFTSettings, config, {"batch_size": 3, "lora_r": None})
    assert (settings.model, settings.max_length, settings.batch_size, settings.lora_r) == ("m", 128, 3, 16)
    config.write_text("max_lenght = 128\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown setting.*max_lenght"):
        load_config(SFTSettings, config)
    with pytest.raises(ConfigError, match="finetune"):
        SFTSettings(finetune="qlora")


def test_example_configs_load():
    from accelerate.commands.config.config_args import load_config_from_file

    sft_configs = sorted((ROOT / "configs" / "sft").glob("*.toml"))
    assert sft_configs
    for path in sft_configs:
        assert load_config(SFTSettings, path).model
    kinds = {
        load_config_from_file(str(p)).distributed_type.value for p in (ROOT / "configs" / "accelerate").glob("*.yaml")
    }
    assert kinds == {"MULTI_GPU", "FSDP", "DEEPSPEED"}


@pytest.fixture(scope="module")
def tiny_run(tiny_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    code = main(
        [
            "sft",
            "--model",
            str(tiny_model),
            "--output-dir",
            str(out),
            "--run-name",
            "r",
            "--max-steps",
            "4",
            "--save-steps",
            "2",
            "--eval-steps",
            "0",
            "--eval-on-start",
            "--learning-rate",
            "3e-3",
            *QUICK,
        ]
    )
    assert code == 0
    return out / "r"


def test_tiny_run_writes_a_complete_run_folder(tiny_run):
    settings = load_config(SFTSettings, tiny_run / "config.toml")
    assert settings.max_steps == 4 and settings.run_name == "r"
    info = json.loads((tiny_run / "run.json").read_text())["runs"][0]
    assert info["data_sha256"] == file_sha256(SEED)
    assert info["packages"]["trl"] and info["packages"]["torch"] and "git_commit" in info
    assert info["results"]["global_step"] == 4
    rows = [json.loads(line) for line in (tiny_run / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in rows if "loss" in r]
    assert [r["step"] for r in train] == [1, 2, 3, 4]
    assert all("learning_rate" in r for r in train) and all(r["tokens_per_second"] > 0 for r in train[1:])
    assert [r["step"] for r in rows if "eval_loss" in r] == [0, 4]
    assert (tiny_run / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tiny_run / "final" / "adapter_model.safetensors").is_file()
    assert (tiny_run / "merged" / "model.safetensors").is_file()
    assert sorted(p.name for p in tiny_run.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]


def test_resume_continues_from_the_saved_step(tiny_run, tiny_model):
    settings = load_config(
        SFTSettings,
        tiny_run / "config.toml",
        {
            "output_dir": str(tiny_run.parent),
            "max_steps": 6,
            "resume": "latest",
            "eval_on_start": False,
        },
    )
    result = run_sft(settings)
    assert result.global_step == 6
    rows = [json.loads(line) for line in (tiny_run / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in rows if "loss" in r]
    assert steps == [1, 2, 3, 4, 5, 6]  # picked up at 5, nothing retrained
    runs = json.loads((tiny_run / "run.json").read_text())["runs"]
    assert runs[1]["resumed_from"].endswith("checkpoint-4")


def test_full_fine_tuning_saves_the_whole_model(tiny_model, tmp_path):
    code = main(
        [
            "sft",
            "--model",
            str(tiny_model),
            "--output-dir",
            str(tmp_path),
            "--run-name",
            "full",
            "--finetune",
            "full",
            "--max-steps",
            "2",
            "--eval-steps",
            "0",
            "--learning-rate",
            "1e-4",
            *QUICK,
        ]
    )
    assert code == 0
    assert (tmp_path / "full" / "final" / "model.safetensors").is_file()
    assert not (tmp_path / "full" / "merged").exists()


def test_clear_errors(tiny_model, tmp_path, capsys):
    assert main(["sft", "--model", "nobody/no-such-model", "--output-dir", str(tmp_path)]) == 2
    assert "unknown model 'nobody/no-such-model'" in capsys.readouterr().err
    assert main(["sft", "--model", str(tmp_path / "missing"), "--output-dir", str(tmp_path)]) == 2
    assert "unknown model" in capsys.readouterr().err

    split = tmp_path / "split"
    write_jsonl([Example("I feel low.", "That sounds hard.", conversation_id="a")], split / "train.jsonl")
    (split / "validation.jsonl").write_text("", encoding="utf-8")
    assert main(["sft", "--model", str(tiny_model), "--data", str(split), "--output-dir", str(tmp_path)]) == 2
    assert "validation split is empty" in capsys.readouterr().err

    import torch

    if not torch.cuda.is_available():
        assert main(["sft", "--model", str(tiny_model), "--device", "cuda", "--output-dir", str(tmp_path)]) == 2
        assert "CUDA was requested but is not available" in capsys.readouterr().err


def test_out_of_memory_names_the_settings_to_lower(tiny_model, tmp_path, monkeypatch):
    import torch
    from trl import SFTTrainer

    def exhausted(self, *args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(SFTTrainer, "train", exhausted)
    settings = SFTSettings(model=str(tiny_model), output_dir=str(tmp_path), max_length=256, batch_size=8)
    with pytest.raises(
        TrainError, match=r"out of memory.*--batch-size 4 --grad-accum 2.*--max-length 128.*--gradient-checkpointing"
    ):
        run_sft(settings)
    assert "--finetune lora" in oom_advice(SFTSettings(finetune="full"))


def test_two_cpu_processes_under_accelerate_launch(tiny_model, tmp_path):
    """DDP over gloo with two CPU processes.

    accelerate 1.x's `--cpu` launcher starts a single process unless it is given an
    MPI hostfile; `--multi_gpu` on a machine without GPUs starts torchrun with two
    CPU processes, which is the data-parallel path this test must exercise.
    """
    accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent))
    if accelerate is None:
        pytest.skip("the accelerate launcher is not installed")
    import torch

    if torch.cuda.is_available():
        pytest.skip("this check is for CPU-only machines")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
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
            "-m",
            "trainer.cli",
            "sft",
            "--model",
            str(tiny_model),
            "--output-dir",
            str(tmp_path),
            "--run-name",
            "ddp",
            "--max-steps",
            "2",
            "--eval-steps",
            "0",
            "--merge-lora",
            *QUICK,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    info = json.loads((tmp_path / "ddp" / "run.json").read_text())["runs"][0]
    assert info["world_size"] == 2 and info["results"]["global_step"] == 2
    assert (tmp_path / "ddp" / "final" / "adapter_model.safetensors").is_file()
    assert (tmp_path / "ddp" / "merged" / "model.safetensors").is_file()


@pytest.mark.slow
def test_imported_smollm2_is_a_chatml_model(smollm2):
    from transformers import AutoTokenizer

    from therapist_app.core.dialogue_format import build_messages, render_prompt

    config = json.loads((smollm2 / "config.json").read_text())
    assert "quantization_config" not in config
    assert (smollm2 / "model.safetensors").is_file()
    tokenizer = AutoTokenizer.from_pretrained(smollm2)
    assert tokenizer.eos_token == "<|im_end|>"
    request = Example("I can't sleep before exams.", "x", emotion="anxiety", strategy="question").request()
    messages = [{"role": m.role, "content": m.content} for m in build_messages(request)]
    assert tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) == render_prompt(request)


@pytest.mark.slow
def test_smollm2_lora_lowers_validation_loss_on_the_seed_corpus(smollm2, tmp_path):
    # Sized for a shared 2-core CPU, where one step of this 135M model takes ~20 s.
    settings = SFTSettings(
        model=str(smollm2),
        output_dir=str(tmp_path),
        run_name="smol",
        max_steps=6,
        batch_size=2,
        max_length=192,
        learning_rate=1e-3,
        warmup_ratio=0.0,
        eval_steps=0,
        eval_on_start=True,
        merge_lora=False,
        logging_steps=2,
        save_steps=1000,
        validation_fraction=0.05,
        test_fraction=0.05,
    )
    result = run_sft(settings)
    assert result.global_step == 6
    assert result.final_eval_loss < result.first_eval_loss - 0.05
