"""Finding the GGUF models other apps downloaded: fake folder trees per app and OS."""

from __future__ import annotations

import doctest
import hashlib
import json
import struct
from pathlib import Path

import pytest

import therapist_app.core.model_discovery as discovery
from therapist_app.core.model_discovery import (
    FOLDER,
    GPT4ALL,
    JAN,
    LM_STUDIO,
    OLLAMA,
    FoundModel,
    Places,
    copy_and_inspect,
    copy_into,
    discover,
    gpt4all_folders,
    inspect_model,
    jan_folders,
    lm_studio_folders,
    ollama_folders,
    searched_folders,
)
from therapist_app.core.model_file import ModelFileError, sha256_file


def gguf(path: Path, payload: bytes = b"") -> Path:
    """A file that starts like a GGUF (discovery reads only the magic)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 1, 1) + payload + bytes(64))
    return path


def found(home: Path, env: dict | None = None, platform: str = "linux", **kwargs) -> list[tuple[str, str]]:
    return [(m.source, m.name) for m in discover(home, env or {}, platform=platform, root=home / "ROOT", **kwargs)]


def ollama_pull(models: Path, name: tuple[str, str, str, str], content: bytes = b"weights") -> Path:
    """What `ollama pull` leaves: a manifest naming a config and a model layer, and blobs."""
    blob_bytes = b"GGUF" + struct.pack("<IQQ", 3, 1, 1) + content
    digest = hashlib.sha256(blob_bytes).hexdigest()
    blob = models / "blobs" / f"sha256-{digest}"
    blob.parent.mkdir(parents=True, exist_ok=True)
    blob.write_bytes(blob_bytes)
    config = models / "blobs" / f"sha256-{'c' * 64}"
    config.write_text("{}")
    manifest = models.joinpath("manifests", *name)
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text(
        json.dumps(
            {
                "schemaVersion": 2,
                "layers": [
                    {"mediaType": "application/vnd.ollama.image.params", "digest": f"sha256:{'c' * 64}", "size": 2},
                    {
                        "mediaType": "application/vnd.ollama.image.model",
                        "digest": f"sha256:{digest}",
                        "size": len(blob_bytes),
                    },
                ],
            }
        )
    )
    return blob


def test_the_module_doctests_pass():
    result = doctest.testmod(discovery, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 4 and result.failed == 0


def test_nothing_is_found_where_no_app_was_installed(tmp_path):
    assert discover(tmp_path / "empty-home", {}, platform="linux", root=tmp_path) == []
    assert discover(tmp_path, {}, extra_folders=[tmp_path / "no-such-folder"], platform="win32") == []


def test_lm_studio_current_older_and_configured_folders(tmp_path):
    home = tmp_path / "home"
    gguf(home / ".lmstudio/models/lmstudio-community/Qwen-GGUF/Qwen-0.5B-Q4_K_M.gguf")
    gguf(home / ".cache/lm-studio/models/TheBloke/phi-2-GGUF/phi-2.Q4_K_S.gguf")
    elsewhere = tmp_path / "big-disk/lmstudio"
    gguf(elsewhere / "bartowski/Llama-GGUF/Llama-3.2-1B-Q8_0.gguf")
    (home / ".lmstudio/settings.json").write_text(json.dumps({"downloadsFolder": str(elsewhere)}))
    # Beside the models: a vision projector, a split model, a partial download, a
    # download that is an HTML error page, and the app's own bookkeeping.
    gguf(home / ".lmstudio/models/lmstudio-community/Qwen-GGUF/mmproj-Qwen-f16.gguf")
    gguf(home / ".lmstudio/models/x/Big-GGUF/Big-00001-of-00002.gguf")
    gguf(home / ".lmstudio/models/x/Big-GGUF/Big-00002-of-00002.gguf")
    gguf(home / ".lmstudio/models/x/y/.downloading-model.gguf")
    (home / ".lmstudio/models/x/y/error.gguf").write_text("<html>rate limited</html>")
    (home / ".lmstudio/models/x/y/model.yaml").write_text("model: y")
    assert found(home) == [
        (LM_STUDIO, "Llama-3.2-1B-Q8_0.gguf"),
        (LM_STUDIO, "phi-2.Q4_K_S.gguf"),
        (LM_STUDIO, "Qwen-0.5B-Q4_K_M.gguf"),
    ]
    folders = lm_studio_folders(Places(home, {}, "linux"))
    assert folders[0] == elsewhere  # the configured folder first


def test_lm_studio_follows_its_home_pointer_and_the_electron_settings(tmp_path):
    home = tmp_path / "home"
    moved = tmp_path / "lms-home"
    gguf(moved / "models/a/b/moved.gguf")
    home.mkdir()
    (home / ".lmstudio-home-pointer").write_text(f"{moved}\n")
    configured = tmp_path / "old-downloads"
    gguf(configured / "a/b/old.gguf")
    settings = tmp_path / "Roaming/LM Studio/settings.json"
    settings.parent.mkdir(parents=True)
    settings.write_text(json.dumps({"downloadsFolder": str(configured)}))
    assert found(home, {"APPDATA": str(tmp_path / "Roaming")}, "win32") == [
        (LM_STUDIO, "moved.gguf"),
        (LM_STUDIO, "old.gguf"),
    ]
    (home / ".lmstudio").mkdir()
    (home / ".lmstudio/settings.json").write_text("{not json")  # ignored, not fatal
    assert len(found(home, {"APPDATA": str(tmp_path / "Roaming")}, "win32")) == 2


def test_ollama_manifests_name_their_blobs(tmp_path):
    home = tmp_path / "home"
    store = home / ".ollama/models"
    blob = ollama_pull(store, ("registry.ollama.ai", "library", "llama3.2", "3b"))
    ollama_pull(store, ("registry.ollama.ai", "someone", "counsel", "latest"), b"other")
    ollama_pull(store, ("hf.co", "bartowski", "Phi-3.5-mini-instruct-GGUF", "Q4_K_M"), b"third")
    # The same blob under a second tag is listed once.
    ollama_pull(store, ("registry.ollama.ai", "library", "llama3.2", "latest"))
    # A manifest whose digest tries to leave the store, one with no model layer, one
    # whose blob is gone, and one whose model layer is not a GGUF are ignored.
    bad = store / "manifests/registry.ollama.ai/library"
    (bad / "evil").mkdir()
    (bad / "evil/1").write_text(
        json.dumps(
            {"layers": [{"mediaType": "application/vnd.ollama.image.model", "digest": "sha256:../../../../etc/passwd"}]}
        )
    )
    (bad / "embed").mkdir()
    (bad / "embed/1").write_text(json.dumps({"layers": []}))
    gone = ollama_pull(store, ("registry.ollama.ai", "library", "gone", "1"), b"gone")
    gone.unlink()
    not_gguf = ollama_pull(store, ("registry.ollama.ai", "library", "adapter", "1"), b"x")
    not_gguf.write_bytes(b"PK\x03\x04 not a gguf")
    models = discover(home, {}, platform="darwin")
    assert [(m.source, m.name) for m in models] == [
        (OLLAMA, "hf.co/bartowski/Phi-3.5-mini-instruct-GGUF:Q4_K_M"),
        (OLLAMA, "llama3.2:3b"),
        (OLLAMA, "someone/counsel:latest"),
    ]
    llama = models[1]
    assert llama.path == blob and llama.size_bytes == blob.stat().st_size
    assert llama.expected_sha256 == sha256_file(blob)  # the blob's name is its hash


def test_ollama_models_variable_and_the_linux_service_store(tmp_path):
    home = tmp_path / "home"
    ollama_pull(home / ".ollama/models", ("registry.ollama.ai", "library", "mine", "1"))
    custom = tmp_path / "ollama-elsewhere"
    ollama_pull(custom, ("registry.ollama.ai", "library", "custom", "1"), b"c")
    service = home / "ROOT/usr/share/ollama/.ollama/models"
    ollama_pull(service, ("registry.ollama.ai", "library", "service", "1"), b"s")
    assert found(home) == [(OLLAMA, "mine:1"), (OLLAMA, "service:1")]
    assert found(home, {"OLLAMA_MODELS": str(custom)}) == [(OLLAMA, "custom:1"), (OLLAMA, "service:1")]
    assert found(home, platform="darwin") == [(OLLAMA, "mine:1")]
    assert ollama_folders(Places(home, {}, "win32")) == [home / ".ollama/models"]


@pytest.mark.parametrize(
    "platform, env, folder",
    [
        ("linux", {}, ".local/share/nomic.ai/GPT4All"),
        ("linux", {"XDG_DATA_HOME": "{home}/xdg"}, "xdg/nomic.ai/GPT4All"),
        ("darwin", {}, "Library/Application Support/nomic.ai/GPT4All"),
        ("win32", {}, "AppData/Local/nomic.ai/GPT4All"),
        ("win32", {"LOCALAPPDATA": "{home}/Local"}, "Local/nomic.ai/GPT4All"),
    ],
)
def test_gpt4all_per_platform(tmp_path, platform, env, folder):
    env = {key: value.format(home=tmp_path) for key, value in env.items()}
    gguf(tmp_path / folder / "Meta-Llama-3-8B-Instruct.Q4_0.gguf")
    (tmp_path / folder / "localdocs_v2.db").write_bytes(b"SQLite format 3\x00")
    assert gpt4all_folders(Places(tmp_path, env, platform)) == [tmp_path / folder]
    assert found(tmp_path, env, platform) == [(GPT4ALL, "Meta-Llama-3-8B-Instruct.Q4_0.gguf")]


@pytest.mark.parametrize(
    "platform, data",
    [
        ("linux", ".local/share/Jan/data"),
        ("darwin", "Library/Application Support/Jan/data"),
        ("win32", "AppData/Roaming/Jan/data"),
    ],
)
def test_jan_new_and_old_layouts_per_platform(tmp_path, platform, data):
    # Jan names each model's folder and calls the file model.gguf.
    gguf(tmp_path / data / "llamacpp/models/Qwen3-0.6B-Q4_K_M/model.gguf")
    gguf(tmp_path / data / "models/huggingface.co/author/repo/tinyllama.Q4_0.gguf")
    gguf(tmp_path / "jan/models/mistral-ins-7b-q4/mistral-7b-instruct-v0.2.Q4_K_M.gguf")
    assert found(tmp_path, {}, platform) == [
        (JAN, "mistral-7b-instruct-v0.2.Q4_K_M.gguf"),
        (JAN, "Qwen3-0.6B-Q4_K_M"),
        (JAN, "tinyllama.Q4_0.gguf"),
    ]


def test_jan_reads_its_configured_data_folder(tmp_path):
    moved = tmp_path / "D/jan-data"
    gguf(moved / "llamacpp/models/phi/model.gguf")
    settings = tmp_path / ".local/share/Jan/settings.json"
    settings.parent.mkdir(parents=True)
    settings.write_text(json.dumps({"data_folder": str(moved)}))
    assert found(tmp_path) == [(JAN, "phi")]
    assert jan_folders(Places(tmp_path, {}, "linux"))[0] == moved / "llamacpp/models"


def test_a_folder_the_user_names_a_symlink_loop_and_a_linked_model_folder(tmp_path):
    folder = tmp_path / "models"
    gguf(folder / "a/counsel.q8_0.gguf")
    (folder / "a/loop").symlink_to(folder)  # would recurse for ever if followed blindly
    (folder / "self").symlink_to(folder / "self")  # a link to itself
    shared = gguf(tmp_path / "shared/elsewhere.gguf")
    (folder / "linked").symlink_to(shared.parent, target_is_directory=True)
    (folder / "notes.txt").write_text("GGUF but not a .gguf name")
    models = discover(tmp_path / "home", {}, extra_folders=[folder], platform="linux")
    assert [(m.source, m.name) for m in models] == [(FOLDER, "counsel.q8_0.gguf"), (FOLDER, "elsewhere.gguf")]


def test_each_file_is_listed_once_by_the_first_app_that_has_it(tmp_path):
    home = tmp_path / "home"
    model = gguf(home / ".lmstudio/models/a/b/shared.gguf")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine/link.gguf").symlink_to(model)
    assert found(home, extra_folders=[home / ".lmstudio/models", tmp_path / "mine"]) == [(LM_STUDIO, "shared.gguf")]


def test_depth_and_entry_count_are_bounded(tmp_path, monkeypatch):
    deep = tmp_path.joinpath("models", *"abcdefg", "deep.gguf")
    gguf(deep)
    gguf(tmp_path / "models/a/shallow.gguf")
    names = [m.name for m in discover(tmp_path, {}, extra_folders=[tmp_path / "models"], platform="linux")]
    assert names == ["shallow.gguf"]
    monkeypatch.setattr(discovery, "MAX_ENTRIES", 1)
    assert discover(tmp_path, {}, extra_folders=[tmp_path / "models"], platform="linux") == []


def test_searched_folders_cover_every_app(tmp_path):
    sources = {source for source, _ in searched_folders(Places(tmp_path, {}, "linux"), [tmp_path / "x"])}
    assert sources == {LM_STUDIO, OLLAMA, GPT4ALL, JAN, FOLDER}


def test_inspecting_a_found_model_checks_the_recorded_hash(tiny_gguf, tmp_path):
    sha = sha256_file(tiny_gguf)
    assert inspect_model(tiny_gguf, sha).sha256 == sha
    with pytest.raises(ModelFileError, match="does not match the SHA-256 its app recorded"):
        inspect_model(tiny_gguf, "0" * 64)


def test_a_copy_never_overwrites_and_a_copy_that_fails_its_checks_is_removed(tiny_gguf, tmp_path):
    model = FoundModel(OLLAMA, "tiny:f32", tiny_gguf, tiny_gguf.stat().st_size)
    target = tmp_path / "app-models"
    target.mkdir()
    (target / "tiny-f32.gguf").write_text("someone else's file")
    checked = copy_and_inspect(model, target)
    assert checked.path == target / "tiny-f32-2.gguf" and checked.sha256 == sha256_file(tiny_gguf)
    assert (target / "tiny-f32.gguf").read_text() == "someone else's file"
    with pytest.raises(ModelFileError):
        copy_and_inspect(FoundModel(OLLAMA, "tiny:f32", tiny_gguf, 1, "0" * 64), target)
    assert sorted(p.name for p in target.iterdir()) == ["tiny-f32-2.gguf", "tiny-f32.gguf"]


def test_a_failed_copy_leaves_nothing_behind(tmp_path):
    unreadable = FoundModel(FOLDER, "gone.gguf", tmp_path / "gone.gguf", 10)
    with pytest.raises(OSError):
        copy_into(unreadable, tmp_path / "app-models")
    assert list((tmp_path / "app-models").iterdir()) == []


def test_the_scan_is_quick_on_a_large_tree(tmp_path):
    import time

    for i in range(200):
        for j in range(10):
            (tmp_path / "m" / str(i)).mkdir(parents=True, exist_ok=True)
            (tmp_path / "m" / str(i) / f"f{j}.bin").write_bytes(b"x")
        gguf(tmp_path / "m" / str(i) / "model.q4.gguf")
    started = time.perf_counter()
    models = discover(tmp_path / "home", {}, extra_folders=[tmp_path / "m"], platform="linux")
    assert len(models) == 200 and time.perf_counter() - started < 2.0
