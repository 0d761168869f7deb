"""Shared fixtures: the bundled model, and tiny models built once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Tests never reach a hub: anything that tries fails at once instead of hanging.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def bundled_model() -> Path:
    from therapist_app.core.model_file import bundled_model_path

    return bundled_model_path()


@pytest.fixture(scope="session")
def smol_tokenizer_dir(tmp_path_factory) -> Path:
    from tests.tiny_models import save_bundled_tokenizer

    return save_bundled_tokenizer(tmp_path_factory.mktemp("smol-tokenizer"))


@pytest.fixture(scope="session")
def tiny_hf_model(tmp_path_factory, smol_tokenizer_dir) -> Path:
    """A 2-layer random Llama with SmolLM2's tokenizer, as a Hugging Face folder."""
    from tests.tiny_models import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"), smol_tokenizer_dir)


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory, tiny_hf_model) -> Path:
    """The tiny model converted by llama.cpp's own converter (f32 GGUF)."""
    from trainer.llama_cpp_source import run_converter

    out = tmp_path_factory.mktemp("tiny-gguf") / "tiny-llama.f32.gguf"
    run_converter(tiny_hf_model, out, "f32")
    return out
