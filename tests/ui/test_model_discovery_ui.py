"""The model manager's *Found on this computer*: models other apps downloaded, used in
place or copied into the app, under the clinic policy."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.model_homes import ollama_pull
from tests.ui.conftest import unlock
from therapist_app.core.model_discovery import discover
from therapist_app.core.model_file import sha256_file
from therapist_app.core.policy import Policy
from therapist_app.ui.model_manager import ModelManagerDialog

pytestmark = pytest.mark.gui


@pytest.fixture
def home(tmp_path, tiny_gguf) -> Path:
    """A home where Ollama pulled the tiny model (a blob named by its hash, no extension)."""
    home = tmp_path / "home"
    ollama_pull(home, tiny_gguf)
    return home


def _manager(qtbot, window, home: Path, app_models: Path) -> ModelManagerDialog:
    dialog = ModelManagerDialog(
        window.store,
        window.policy,
        window.tasks,
        window.context.settings.model(),
        window,
        settings=window.context.settings,
        discover_models=lambda folders: discover(home, {}, folders, platform="linux", root=home),
        models_folder=app_models,
    )
    dialog.apply_requested.connect(window._apply_model_settings)
    dialog.show()
    qtbot.waitUntil(
        lambda: dialog.found_table.rowCount() > 0 or dialog.found_status.text().startswith("No GGUF"), timeout=5000
    )
    return dialog


def _found_rows(dialog) -> list[list[str]]:
    table = dialog.found_table
    return [[table.item(r, c).text() for c in range(table.columnCount())] for r in range(table.rowCount())]


def test_a_found_model_is_listed_and_used_where_it_is(qtbot, make_window, home, tmp_path, tiny_gguf):
    loaded = []
    from tests.ui.fakes import FakeEngine, FakeScript

    script = FakeScript()

    def factory(config):
        loaded.append(config)
        return FakeEngine(config, script)

    window = make_window(script=script, engine_factory=factory).window
    unlock(qtbot, window)
    app_models = tmp_path / "app-models"
    dialog = _manager(qtbot, window, home, app_models)
    assert not window.tasks.busy  # the search never holds the window's task runner
    [[name, source, size, status]] = _found_rows(dialog)
    assert (name, source, status) == ("tiny:f32", "Ollama", "") and size.endswith("MB")
    assert "1 found (Ollama)" in dialog.found_status.text()

    dialog.found_table.selectRow(0)
    dialog.use_found()
    assert not dialog.use_found_button.isEnabled()  # hashing runs on the worker
    qtbot.waitUntil(lambda: dialog.status.text().startswith("Added"), timeout=10_000)
    assert "used where Ollama keeps it" in dialog.status.text()
    assert "press Apply and reload" in dialog.status.text()
    blob = home / ".ollama/models/blobs" / f"sha256-{sha256_file(tiny_gguf)}"
    [record] = window.store.models()
    assert (Path(record.path), record.sha256) == (blob, sha256_file(tiny_gguf))
    assert not app_models.exists()  # nothing was copied
    assert _found_rows(dialog)[0][3] == "recorded, in use"
    names = [dialog.table.item(r, 0).text() for r in range(dialog.table.rowCount())]
    assert "tiny:f32 (Ollama)" in names  # not the blob's hash-named file
    with qtbot.waitSignal(window.engine.loaded, timeout=5000):
        dialog.apply()
    assert loaded[-1].model_path == blob
    assert window.context.settings.model().model_path == str(blob)


def test_copy_into_the_app_records_the_copy(qtbot, make_window, home, tmp_path, tiny_gguf):
    window = make_window().window
    unlock(qtbot, window)
    app_models = tmp_path / "app-models"
    dialog = _manager(qtbot, window, home, app_models)
    dialog.found_table.selectRow(0)
    dialog.use_found(copy=True)
    qtbot.waitUntil(lambda: dialog.status.text().startswith("Added"), timeout=10_000)
    assert "copied into the app's models folder" in dialog.status.text()
    copy = app_models / "tiny-f32.gguf"
    [record] = window.store.models()
    assert Path(record.path) == copy and sha256_file(copy) == record.sha256 == sha256_file(tiny_gguf)
    assert dialog.chosen_settings().model_path == str(copy)
    assert [p.name for p in (home / ".ollama/models/blobs").iterdir()] == [f"sha256-{record.sha256}"]


def test_policy_still_decides_for_a_found_model(qtbot, make_window, home, tmp_path):
    window = make_window(policy=Policy(require_approved_models=True)).window
    unlock(qtbot, window, model=False)
    dialog = _manager(qtbot, window, home, tmp_path / "app-models")
    before = dialog.chosen_settings().model_path
    dialog.use_found()
    assert "Select a model" in dialog.found_status.text()  # nothing selected yet
    dialog.found_table.selectRow(0)
    dialog.use_found()
    qtbot.waitUntil(lambda: dialog.status.text().startswith("Added"), timeout=10_000)
    assert "blocks it until IT approves" in dialog.status.text()
    [record] = window.store.models()
    assert not record.approved
    assert dialog.chosen_settings().model_path == before  # not made the model in use
    assert _found_rows(dialog)[0][3] == "recorded"


def test_a_damaged_found_model_is_refused(qtbot, make_window, home, tmp_path):
    window = make_window().window
    unlock(qtbot, window)
    [blob] = (home / ".ollama/models/blobs").iterdir()
    data = bytearray(blob.read_bytes())
    data[-10] ^= 0xFF
    blob.write_bytes(bytes(data))
    dialog = _manager(qtbot, window, home, tmp_path / "app-models")
    dialog.found_table.selectRow(0)
    dialog.use_found(copy=True)
    qtbot.waitUntil(lambda: dialog.status.text().startswith("Refused"), timeout=10_000)
    assert "does not match the SHA-256" in dialog.status.text()
    assert window.store.models() == []
    assert list((tmp_path / "app-models").iterdir()) == []  # the bad copy was removed
    assert dialog.copy_found_button.isEnabled()


def test_folders_the_user_adds_are_searched_and_remembered(qtbot, make_window, home, tmp_path, tiny_gguf):
    window = make_window().window
    unlock(qtbot, window)
    mine = tmp_path / "shared models"
    mine.mkdir()
    shutil.copy(tiny_gguf, mine / "counsel.q8_0.gguf")
    dialog = _manager(qtbot, window, home, tmp_path / "app-models")
    dialog.add_folder(mine)
    qtbot.waitUntil(lambda: dialog.found_table.rowCount() == 2, timeout=5000)
    assert _found_rows(dialog)[1][:2] == ["counsel.q8_0.gguf", "Folder"]
    assert str(mine) in dialog.found_status.text()
    assert window.context.settings.model_folders() == (str(mine),)
    dialog.close()

    again = _manager(qtbot, window, home, tmp_path / "app-models")
    qtbot.waitUntil(lambda: again.found_table.rowCount() == 2, timeout=5000)
    again.remove_folder(str(mine))
    qtbot.waitUntil(lambda: again.found_table.rowCount() == 1, timeout=5000)
    assert window.context.settings.model_folders() == ()


def test_the_window_s_model_manager_offers_found_models(qtbot, make_window):
    window = make_window().window
    unlock(qtbot, window)
    window.open_model_manager()
    dialog = window.model_manager
    qtbot.waitUntil(
        lambda: "found" in dialog.found_status.text().lower() or "No GGUF" in dialog.found_status.text(), timeout=5000
    )
    window.lock_action.trigger()  # a search never delays the lock
    assert window.store is None
