"""Export on a real tiny model: LoRA training run -> merged, converted, quantised GGUFs with
manifests -> parity with the Hugging Face model -> loaded by the app's engine; and the
clear errors an export must give before writing anything."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("peft")
pytest.importorskip("trl")

from gguf import GGUFReader  # noqa: E402

from therapist_app.core import dialogue_format as fmt  # noqa: E402
from therapist_app.core.dialogue_format import EmotionReading, SuggestionRequest  # noqa: E402
from therapist_app.core.engine import EngineConfig, SuggestionEngine  # noqa: E402
from therapist_app.core.llama_runtime import Model  # noqa: E402
from therapist_app.core.model_manifest import ManifestError, verify_model  # noqa: E402
from trainer.cli import main  # noqa: E402
from trainer.export import model as export_module  # noqa: E402
from trainer.export.model import (  # noqa: E402
    ExportError,
    ExportSettings,
    InsufficientDiskSpace,
    TokenizerMissing,
    UnsupportedArchitecture,
    export_model,
)
from trainer.export.verify import stop_token_is_eog, template_matches  # noqa: E402
from trainer.models import CHATML_TEMPLATE  # noqa: E402
from trainer.sft import SFTSettings, run_sft  # noqa: E402

QUANTS = ("f16", "q8_0", "q4_k_m")


@pytest.fixture(scope="module")
def lora_run(tiny_hf_model, tmp_path_factory) -> Path:
    """Two LoRA updates on the seed corpus through the trainer's own SFT."""
    out = tmp_path_factory.mktemp("runs")
    run_sft(
        SFTSettings(
            model=str(tiny_hf_model),
            output_dir=str(out),
            run_name="lora-run",
            max_steps=2,
            batch_size=2,
            max_length=192,
            eval_steps=0,
            save_steps=100,
            logging_steps=1,
            num_threads=2,
            merge_lora=False,
            learning_rate=2e-2,
            warmup_ratio=0.0,
        )
    )
    return out / "lora-run"


@pytest.fixture(scope="module")
def exported(lora_run, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export")
    # A random 2-layer model never learns to end a reply in two updates, so the
    # generation-stop gate is waived here; the stop-token metadata is still checked
    # (and the SmolLM2 test keeps the gate on).
    code = main(["export", str(lora_run), "-o", str(out), "--license", "apache-2.0", "--allow-no-stop"])
    assert code == 0
    return out


def _field(reader: GGUFReader, key: str):
    field = reader.get_field(key)
    return field.contents() if field is not None else None


def test_run_folder_exports_each_quantisation_with_a_manifest(exported, lora_run):
    run = json.loads((lora_run / "run.json").read_text())["runs"][-1]
    for q in QUANTS:
        verified = verify_model(exported / f"lora-run.{q}.gguf")
        m = verified.manifest
        assert m.quantisation == q and m.size_bytes == verified.model_path.stat().st_size
        assert m.provenance.run_id == "lora-run" and m.provenance.data_sha256 == run["data_sha256"]
        assert m.provenance.license == "apache-2.0" and m.provenance.base_model
        assert m.provenance.evaluation["global_step"] == 2
        v = m.verification
        assert v.loads and v.template_matches and v.tokenizer_matches and v.stop_token_is_eog
        assert v.positions_compared >= 100 and 0.0 <= v.top1_agreement <= 1.0
    f16 = verify_model(exported / "lora-run.f16.gguf").manifest.verification
    assert f16.top1_agreement >= 0.99 and f16.max_abs_logit_error < 0.01
    # 64-wide rows do not fit q4_K's 256-wide blocks: llama.cpp falls back per tensor,
    # and the manifest says so instead of claiming a pure q4_k_m file.
    q4 = verify_model(exported / "lora-run.q4_k_m.gguf").manifest
    assert any("fall" in note for note in q4.verification.notes)
    assert set(q4.tensor_types) - {"q4_k", "q6_k", "f32"}
    assert not list(exported.glob(".export-*"))  # staging is cleaned up


def test_gguf_carries_template_stop_tokens_and_provenance(exported):
    for q in ("f16", "q4_k_m"):  # metadata written once survives quantisation
        reader = GGUFReader(exported / f"lora-run.{q}.gguf")
        tokens = _field(reader, "tokenizer.ggml.tokens")
        im_end = tokens.index(fmt.IM_END)
        assert _field(reader, "tokenizer.chat_template") == CHATML_TEMPLATE
        assert _field(reader, "tokenizer.ggml.eos_token_id") == im_end
        assert _field(reader, "tokenizer.ggml.eot_token_id") == im_end
        assert _field(reader, "therapist.run_id") == "lora-run"
        assert _field(reader, "general.license") == "apache-2.0"
        assert json.loads(_field(reader, "therapist.evaluation"))["global_step"] == 2


def test_the_lora_update_is_merged_into_the_export(exported, lora_run, tiny_hf_model):
    """The merged weights differ from the base far more than f16 rounding: so the export's
    parity with the merged model shows the adapter is in the GGUF."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from trainer.export.verify import llama_logits

    ids = None
    with Model(str(exported / "lora-run.f16.gguf"), 0) as model:
        ids = model.tokenize(fmt.render_prompt(SuggestionRequest("I feel tired.")), special=True)
        exported_logits = llama_logits(model, ids, [len(ids) - 1], 2)[0]
    base = AutoModelForCausalLM.from_pretrained(tiny_hf_model, dtype=torch.float32)
    with torch.inference_mode():
        base_logits = base(torch.tensor([ids])).logits[0, -1].numpy()
        merged = PeftModel.from_pretrained(base, lora_run / "final").merge_and_unload()
        merged_logits = merged(torch.tensor([ids])).logits[0, -1].numpy()
    to_merged = abs(exported_logits - merged_logits).max()
    to_base = abs(exported_logits - base_logits).max()
    assert to_merged < 0.01 and to_base > 10 * to_merged


@pytest.mark.parametrize("quant", ["f16", "q8_0"])
def test_the_app_loads_the_export_and_suggests(exported, quant):
    path = verify_model(exported / f"lora-run.{quant}.gguf").model_path
    config = EngineConfig(model_path=path, n_ctx=512, n_threads=2, max_tokens=6)
    with SuggestionEngine(config) as engine:
        assert engine.info.template_matches is True
        assert engine.info.model_name == "lora-run"
        result = engine.complete(
            SuggestionRequest("I keep replaying the argument.", emotion=EmotionReading("anxiety", 0.7)), n=2
        )
    assert len(result.suggestions) == 2
    assert all(s.finish_reason in ("stop", "length") for s in result.suggestions)
    assert result.stats.generated_tokens >= 1


def test_a_corrupted_export_is_refused(exported, tmp_path):
    for name in ("lora-run.f16.gguf", "lora-run.f16.manifest.json"):
        shutil.copy(exported / name, tmp_path / name)
    model = tmp_path / "lora-run.f16.gguf"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01
    model.write_bytes(bytes(data))
    with pytest.raises(ManifestError, match="SHA-256 differs"):
        verify_model(model)
    from therapist_app.cli import main as app_main

    assert app_main(["models", "verify", str(model)]) == 1


def test_checks_catch_a_wrong_template_and_stop_token(exported, tmp_path):
    """The failure these checks exist for: a GGUF whose template or end token is off."""
    spec = {
        "input": str(exported / "lora-run.f16.gguf"),
        "output": str(tmp_path / "off.gguf"),
        "chat_template": "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}",
        "special_tokens": {"eos": "<|endoftext|>"},
    }
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(spec))
    import os
    import subprocess
    import sys

    from trainer.llama_cpp_source import source_dir

    env = {**os.environ, "PYTHONPATH": str(source_dir() / "gguf-py")}
    subprocess.run(
        [sys.executable, "-P", str(Path(export_module.__file__).with_name("stamp.py")), str(spec_path)],
        env=env,
        check=True,
        capture_output=True,
    )
    with Model(str(tmp_path / "off.gguf"), 0) as model:
        assert not template_matches(model)
        assert not stop_token_is_eog(model)
    with Model(str(exported / "lora-run.f16.gguf"), 0) as model:
        assert template_matches(model) and stop_token_is_eog(model)


# ---- errors before anything is written ---------------------------------------------


def _copy_model(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_unsupported_architecture_is_named(tiny_hf_model, tmp_path, capsys):
    model = _copy_model(tiny_hf_model, tmp_path / "odd")
    config = json.loads((model / "config.json").read_text())
    config["architectures"] = ["TotallyNewForCausalLM"]
    (model / "config.json").write_text(json.dumps(config))
    with pytest.raises(UnsupportedArchitecture, match="TotallyNewForCausalLM is not supported"):
        export_model(ExportSettings(model, tmp_path / "out", "apache-2.0"))
    assert not (tmp_path / "out").exists()
    assert main(["export", str(model), "-o", str(tmp_path / "out"), "--license", "mit"]) == 2
    assert "not supported by llama.cpp's converter" in capsys.readouterr().err


def test_missing_tokenizer_is_named(tiny_hf_model, tmp_path):
    model = _copy_model(tiny_hf_model, tmp_path / "no-tokenizer")
    (model / "tokenizer.json").unlink()
    with pytest.raises(TokenizerMissing, match="no tokenizer file"):
        export_model(ExportSettings(model, tmp_path / "out", "apache-2.0"))
    assert not (tmp_path / "out").exists()


def test_too_little_disk_space_is_found_before_writing(tiny_hf_model, tmp_path, monkeypatch):
    real = shutil.disk_usage

    def nearly_full(path):
        usage = real(path)
        return type(usage)(usage.total, usage.total - 10_000_000, 10_000_000)

    monkeypatch.setattr(export_module.shutil, "disk_usage", nearly_full)
    with pytest.raises(InsufficientDiskSpace, match=r"needs about \d+ MB and 10 MB are free"):
        export_model(ExportSettings(tiny_hf_model, tmp_path / "out", "apache-2.0", ("f32", "f16", "q8_0")))
    assert not (tmp_path / "out").exists()


def test_settings_and_sources_are_checked(tiny_hf_model, lora_run, tmp_path):
    with pytest.raises(ExportError, match="unknown quantisation"):
        ExportSettings(tiny_hf_model, tmp_path, "mit", ("q3_xs",))
    with pytest.raises(ExportError, match="licence"):
        ExportSettings(tiny_hf_model, tmp_path, " ")
    adapter = _copy_model(lora_run / "final", tmp_path / "adapter")
    config = json.loads((adapter / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = str(tmp_path / "gone")
    (adapter / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(ExportError, match="--base-model"):
        export_model(ExportSettings(adapter, tmp_path / "out", "apache-2.0"))
    with pytest.raises(ExportError, match="neither a model folder"):
        export_model(ExportSettings(tmp_path, tmp_path / "out", "apache-2.0"))


def test_export_command_has_help_for_every_option():
    import argparse

    from trainer.cli import build_parser

    subparsers = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert any(c.dest == "export" and c.help for c in subparsers._choices_actions)
    parser = subparsers.choices["export"]
    assert parser.description and [a.dest for a in parser._actions if not a.help] == []
