"""Shared fixtures: the bundled model, and tiny models built once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend

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


class MemoryKeyring(KeyringBackend):
    """An OS keychain stand-in that keeps its secrets in a dict the test can inspect."""

    priority = 1

    def __init__(self) -> None:
        super().__init__()
        self.items: dict = {}

    def get_password(self, service, username):
        return self.items.get((service, username))

    def set_password(self, service, username, password):
        self.items[(service, username)] = password

    def delete_password(self, service, username):
        self.items.pop((service, username), None)


@pytest.fixture
def memory_keyring():
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


@pytest.fixture
def fd():
    """Returns a function that puts lines on a pipe and gives the read end's number
    (how the CLIs take a passphrase without it ever touching argv)."""
    opened = []

    def feed(*lines: str) -> str:
        read_end, write_end = os.pipe()
        os.write(write_end, "".join(line + "\n" for line in lines).encode())
        os.close(write_end)
        opened.append(read_end)
        return str(read_end)

    yield feed
    for descriptor in opened:
        os.close(descriptor)
