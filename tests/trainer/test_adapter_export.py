"""A LoRA adapter from training to the app: llama.cpp's converter writes it as GGUF, the
engine applies it at load (changing what the model says), and a damaged or foreign
adapter is a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from therapist_app.core.dialogue_format import SuggestionRequest
from therapist_app.core.engine import EngineConfig, SuggestionEngine
from therapist_app.core.llama_runtime import SamplingParams
from therapist_app.core.model_file import ModelFileError
from trainer.export.adapter import AdapterExportError, _adapter_dir
from trainer.llama_cpp_source import run_lora_converter

REQUEST = SuggestionRequest("Work has been a lot this week.", strategy="question")


@pytest.fixture(scope="module")
def tiny_adapter(tiny_hf_model, tmp_path_factory) -> Path:
    """A LoRA on the tiny model's top layer with non-zero B, so it changes the output."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    model = AutoModelForCausalLM.from_pretrained(tiny_hf_model)
    peft = get_peft_model(
        model,
        LoraConfig(
            r=4,
            lora_alpha=8,
            target_modules=["q_proj", "v_proj", "down_proj"],
            layers_to_transform=[1],
            layers_pattern="layers",
            task_type="CAUSAL_LM",
        ),
    )
    with torch.no_grad():
        for name, param in peft.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    out = tmp_path_factory.mktemp("tiny-adapter") / "final"
    peft.save_pretrained(out)
    gguf = out.parent / "adapter.gguf"
    run_lora_converter(out, tiny_hf_model, gguf, "f16")
    return gguf


def _greedy(model: Path, adapter: Path | None, merge: bool = False) -> str:
    config = EngineConfig(
        model_path=model,
        adapter_path=adapter,
        merge_adapter=merge,
        n_ctx=512,
        max_tokens=8,
        n_threads=2,
        sampling=SamplingParams(temperature=0),
        n_seq_max=1,
        candidates=1,
    )
    with SuggestionEngine(config) as engine:
        assert engine.info.model_name.endswith("+ adapter") == (adapter is not None)
        return engine.complete(REQUEST, 1).suggestions[0].raw_text


def test_the_engine_applies_a_converted_adapter(tiny_gguf, tiny_adapter):
    assert tiny_adapter.stat().st_size < 1_000_000
    assert _greedy(tiny_gguf, tiny_adapter) != _greedy(tiny_gguf, None)


def test_a_merged_adapter_says_what_the_adapter_applied_at_load_says(
    tiny_gguf, tiny_adapter, bundled_model, tmp_path, monkeypatch
):
    from therapist_app.core import adapter_merge
    from therapist_app.core.adapter_merge import MergeError, merge_lora

    merged = merge_lora(tiny_gguf, tiny_adapter, tmp_path / "merged.gguf")
    assert _greedy(merged, None) == _greedy(tiny_gguf, tiny_adapter) != _greedy(tiny_gguf, None)
    # The engine merges by default, once, into the cache.
    monkeypatch.setattr(adapter_merge, "default_cache", lambda: tmp_path / "cache")
    assert _greedy(tiny_gguf, tiny_adapter, merge=True) == _greedy(merged, None)
    assert len(list((tmp_path / "cache").glob("merged-*.gguf"))) == 1
    with pytest.raises(MergeError, match="tensors the model lacks|does not fit"):
        merge_lora(bundled_model, tiny_adapter, tmp_path / "foreign.gguf")
    assert not list(tmp_path.glob("foreign*"))  # nothing half-written is left


def test_a_damaged_or_foreign_adapter_is_a_clear_error(tiny_gguf, tiny_adapter, bundled_model, tmp_path):
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"not a gguf at all" * 10_000)
    with pytest.raises(ModelFileError, match="not a GGUF"):
        _greedy(tiny_gguf, broken)
    with pytest.raises(ModelFileError, match="another model"):
        _greedy(bundled_model, tiny_adapter)  # made for the tiny model


def test_export_needs_an_adapter_folder(tmp_path):
    with pytest.raises(AdapterExportError, match="no PEFT adapter"):
        _adapter_dir(tmp_path)
    (tmp_path / "final").mkdir()
    (tmp_path / "final" / "adapter_config.json").write_text("{}")
    assert _adapter_dir(tmp_path) == tmp_path / "final"


def test_a_merge_made_at_install_is_found_wherever_the_install_moved(tiny_gguf, tiny_adapter, tmp_path, monkeypatch):
    """setup.sh and the package build merge once; a fresh profile then merges nothing."""
    from therapist_app.core import adapter_merge

    installed = tmp_path / "install"
    made = adapter_merge.merge_lora(
        tiny_gguf, tiny_adapter, installed / adapter_merge.merged_name(tiny_gguf, tiny_adapter)
    )
    moved = tmp_path / "elsewhere"  # a package unpacked at another path: same content
    moved.mkdir()
    base, adapter = moved / tiny_gguf.name, moved / tiny_adapter.name
    base.write_bytes(tiny_gguf.read_bytes())
    adapter.write_bytes(tiny_adapter.read_bytes())
    monkeypatch.setattr(adapter_merge, "install_folder", lambda: installed)
    assert adapter_merge.merged_model(base, adapter, cache=tmp_path / "cache") == made
    assert not (tmp_path / "cache").exists()
    adapter.write_bytes(tiny_adapter.read_bytes() + b"\0")  # a changed adapter merges anew
    assert adapter_merge.merged_model(base, adapter, cache=tmp_path / "cache").parent == tmp_path / "cache"
