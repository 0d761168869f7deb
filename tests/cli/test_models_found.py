"""`therapist-app models found` and `models add --found`: models other apps downloaded."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from tests.model_homes import ollama_pull
from therapist_app.cli import main
from therapist_app.core.model_file import sha256_file

PASS = "a long enough passphrase"
FAST_KDF = ["--kdf-time-cost", "1", "--kdf-memory-kib", "8", "--kdf-parallelism", "1"]


@pytest.fixture
def home(tmp_path, monkeypatch, tiny_gguf) -> Path:
    """A home folder where LM Studio and Ollama each downloaded the tiny model."""
    home = tmp_path / "home"
    lm = home / ".lmstudio/models/tiny-org/tiny-GGUF/tiny-llama.f32.gguf"
    lm.parent.mkdir(parents=True)
    shutil.copy(tiny_gguf, lm)
    ollama_pull(home, tiny_gguf)
    monkeypatch.setenv("HOME", str(home))
    for variable in ("OLLAMA_MODELS", "XDG_DATA_HOME", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(variable, raising=False)
    return home


@pytest.fixture
def db(tmp_path, fd) -> str:
    path = str(tmp_path / "s.db")
    assert main(["store", "init", "--db", path, "--passphrase-fd", fd(PASS), *FAST_KDF]) == 0
    return path


def _policy(tmp_path: Path, text: str = "") -> list[str]:
    system = tmp_path / "system.toml"
    system.write_text(text)
    return ["--system-policy", str(system), "--user-policy", str(tmp_path / "none.toml")]


def test_models_found_lists_each_app_and_scanned_folders(home, tmp_path, tiny_gguf, capsys):
    assert main(["models", "found"]) == 0
    lines = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert [(n, source, name) for n, source, name, _, _ in lines] == [
        ("1", "LM Studio", "tiny-llama.f32.gguf"),
        ("2", "Ollama", "tiny:f32"),
    ]
    assert lines[1][3].endswith("MB") and lines[1][4] == str(
        home / ".ollama/models/blobs" / f"sha256-{sha256_file(tiny_gguf)}"
    )
    mine = tmp_path / "my-models"
    mine.mkdir()
    shutil.copy(tiny_gguf, mine / "counsel.gguf")
    (mine / "readme.gguf").write_text("not a model")
    assert main(["models", "found", "--scan", str(mine)]) == 0
    assert capsys.readouterr().out.splitlines()[2].split("\t")[:3] == ["3", "Folder", "counsel.gguf"]


def test_models_found_names_the_folders_it_searched_when_it_finds_none(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("OLLAMA_MODELS", raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    assert main(["models", "found"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("no GGUF models found") and str(tmp_path / ".lmstudio" / "models") in out
    assert str(tmp_path / ".ollama" / "models") in out


def test_add_found_uses_the_file_in_place(home, db, fd, tmp_path, tiny_gguf, capsys):
    from therapist_app.core.store import Store

    app_models = tmp_path / "app-models"
    assert (
        main(
            [
                "models",
                "add",
                "--found",
                "tiny:f32",
                "--db",
                db,
                "--passphrase-fd",
                fd(PASS),
                "--models-folder",
                str(app_models),
                *_policy(tmp_path),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "tiny:f32 (Ollama)" in out and "used where it is" in out and "registered as model 1" in out
    with Store.open(db, PASS) as store:
        [record] = store.models()
    blob = home / ".ollama/models/blobs" / f"sha256-{sha256_file(tiny_gguf)}"
    assert (Path(record.path), record.sha256, record.approved) == (blob, sha256_file(tiny_gguf), False)
    assert not app_models.exists()  # nothing copied


def test_add_found_copies_when_asked_and_policy_decides(home, db, fd, tmp_path, tiny_gguf, capsys):
    from therapist_app.core.store import Store

    sha = sha256_file(tiny_gguf)
    app_models = tmp_path / "app-models"
    deny = _policy(tmp_path, f'[policy]\nrequire_approved_models = true\nallowed_model_hashes = ["{"0" * 64}"]\n')
    assert (
        main(
            [
                "models",
                "add",
                "--found",
                "1",
                "--copy",
                "--models-folder",
                str(app_models),
                "--db",
                db,
                "--passphrase-fd",
                fd(PASS),
                *deny,
            ]
        )
        == 1
    )
    assert "not approved" in capsys.readouterr().err
    assert not app_models.exists()  # refused before anything was copied

    allow = _policy(tmp_path, f'[policy]\nrequire_approved_models = true\nallowed_model_hashes = ["{sha}"]\n')
    assert (
        main(
            [
                "models",
                "add",
                "--found",
                "tiny-llama.f32.gguf",
                "--copy",
                "--models-folder",
                str(app_models),
                "--db",
                db,
                "--passphrase-fd",
                fd(PASS),
                *allow,
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    copy = app_models / "tiny-llama.f32.gguf"
    assert f"copied to {copy}" in out and "approved by clinic policy" in out
    assert sha256_file(copy) == sha
    with Store.open(db, PASS) as store:
        assert [(Path(r.path), r.approved) for r in store.models()] == [(copy, True)]


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["--found", "no-such-model"], 1, "no found model is numbered or called no-such-model"),
        (["--found", "9"], 1, "no found model is numbered or called 9"),
        (["some.gguf", "--found", "1"], 2, "name a model file, or --found"),
        (["--copy", "some.gguf"], 2, "name a model file, or --found"),
        ([], 2, "name a model file, or --found"),
    ],
)
def test_add_found_refuses_unclear_requests(home, db, fd, tmp_path, capsys, args, code, message):
    assert main(["models", "add", *args, "--db", db, "--passphrase-fd", fd(PASS), *_policy(tmp_path)]) == code
    assert message in capsys.readouterr().err


def test_a_damaged_ollama_blob_is_refused(home, db, fd, tmp_path, capsys):
    [blob] = (home / ".ollama/models/blobs").iterdir()
    data = bytearray(blob.read_bytes())
    data[-10] ^= 0xFF  # a flipped bit deep in the weights: only the hash can tell
    blob.write_bytes(bytes(data))
    assert hashlib.sha256(data).hexdigest() not in blob.name
    assert (
        main(["models", "add", "--found", "tiny:f32", "--db", db, "--passphrase-fd", fd(PASS), *_policy(tmp_path)]) == 1
    )
    assert "does not match the SHA-256 its app recorded" in capsys.readouterr().err
