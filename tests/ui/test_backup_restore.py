"""Records > Back up… and Restore from backup…: real encrypted stores, the fast KDF."""

from __future__ import annotations

import doctest
import shutil
import threading
from pathlib import Path

import pytest
from PySide6.QtWidgets import QFileDialog, QMessageBox

from tests.ui.conftest import PASSPHRASE, new_session, say, unlock
from tests.ui.fakes import FakeScript
from therapist_app.core.store import KdfParams, StorageFailure, Store, WrongPassphrase, restore
from therapist_app.core.store.keys import key_file_path
from therapist_app.ui import backup_restore
from therapist_app.ui.backup_restore import BackupDialog, RestoreDialog

pytestmark = pytest.mark.gui

BACKUP_PASSPHRASE = "amber lighthouse teapot"
WORDS = "The week has been heavy with worry."


def _open(window, action, kind):
    action.trigger()
    [dialog] = [d for d in window.findChildren(kind) if d.isVisible()]
    return dialog


def _backup_dialog(window) -> BackupDialog:
    return _open(window, window.backup_action, BackupDialog)


def _wait_for_backup(qtbot, window, dialog: BackupDialog) -> None:
    qtbot.waitUntil(lambda: not window.tasks.busy, timeout=10_000)


def _restore(qtbot, window, backup: Path, passphrase: str) -> None:
    dialog = _open(window, window.restore_action, RestoreDialog)
    dialog.backup.setText(str(backup))
    dialog.passphrase.setText(passphrase)
    dialog.restore_button.click()


def _set_aside(store_path: Path) -> list[str]:
    return sorted(p.name for p in store_path.parent.glob("*.replaced-*"))


def _open_set_aside(store_path: Path, folder: Path, passphrase: str = PASSPHRASE) -> Store:
    """The one store a restore set aside: its database and key file, copied under a
    new name and opened (so the test cannot change the set-aside files)."""
    names = _set_aside(store_path)
    [db] = [n for n in names if "keys" not in n and not n.endswith(("-wal", "-shm"))]
    [key_file] = [n for n in names if "keys" in n]
    copy = folder / "set-aside-copy.db"
    shutil.copyfile(store_path.parent / db, copy)
    shutil.copyfile(store_path.parent / key_file, key_file_path(copy))
    return Store.open(copy, passphrase)


@pytest.fixture
def other_backup(tmp_path) -> Path:
    """A backup of another store (client C-BACKUP) under its own passphrase."""
    source = tmp_path / "other" / "store.db"
    source.parent.mkdir()
    with Store.create(source, BACKUP_PASSPHRASE, KdfParams.fast()) as store:
        store.add_client("C-BACKUP")
        store.backup(tmp_path / "other-backup.db", BACKUP_PASSPHRASE)
    return tmp_path / "other-backup.db"


def test_backup_with_the_store_passphrase_runs_off_the_gui_thread_and_restores(
    qtbot, make_window, tmp_path, monkeypatch
):
    threads = []
    real_backup = Store.backup

    def spy(store, destination, passphrase, kdf=None):
        threads.append(threading.current_thread())
        return real_backup(store, destination, passphrase, kdf)

    monkeypatch.setattr(Store, "backup", spy)
    h = make_window()
    window = h.window
    assert not window.backup_action.isEnabled() and not window.audit_action.isEnabled()
    assert window.restore_action.isEnabled()  # a damaged store can be restored from here
    unlock(qtbot, window)
    new_session(qtbot, window)
    say(qtbot, window, WORDS)
    dialog = _backup_dialog(window)
    destination = tmp_path / "backups" / "monday.db"
    destination.parent.mkdir()
    dialog.destination.setText(str(destination))
    assert not dialog.backup_button.isEnabled()  # no passphrase yet
    dialog.store_passphrase.setText(PASSPHRASE)
    dialog.backup_button.click()
    assert window.tasks.busy and dialog.status.text() == "Backing up…"  # returned at once
    assert dialog.store_passphrase.text() == ""
    _wait_for_backup(qtbot, window, dialog)
    assert not dialog.error.isVisible()
    assert threads and all(t is not threading.main_thread() for t in threads)
    status = dialog.status.text()
    assert str(destination) in status and "monday.db.keys" in status
    assert backup_restore.size_text(destination.stat().st_size) in status
    assert window.store.audit_log()[0].action == "backup"
    window.close()
    with restore(destination, PASSPHRASE, tmp_path / "restored.db") as restored:
        [client] = restored.list_clients()
        session = restored.sessions(client.id)[0]
        assert client.code == "C-017"
        assert restored.session_transcript(session.id).utterances[0].text == WORDS


def test_backup_checks_the_store_passphrase_and_never_overwrites(qtbot, make_window, tmp_path):
    h = make_window()
    window = h.window
    unlock(qtbot, window)
    dialog = _backup_dialog(window)
    destination = tmp_path / "b.db"
    dialog.destination.setText(str(destination))
    dialog.store_passphrase.setText("violet kettle harbor")  # a typo of the store's
    dialog.backup_button.click()
    _wait_for_backup(qtbot, window, dialog)
    assert "not your store passphrase" in dialog.error.text()
    assert not destination.exists() and not key_file_path(destination).exists()
    destination.write_bytes(b"keep me")
    dialog.store_passphrase.setText(PASSPHRASE)
    dialog.backup_button.click()
    _wait_for_backup(qtbot, window, dialog)
    assert dialog.error.text().startswith("No backup was made:")
    assert "already exists" in dialog.error.text()
    assert destination.read_bytes() == b"keep me"
    assert "backup" not in [e.action for e in window.store.audit_log()]


def test_a_backup_waits_for_suggestions_in_progress(qtbot, make_window, tmp_path):
    h = make_window(script=FakeScript(token_delay_s=0.05))
    window = h.window
    unlock(qtbot, window)
    new_session(qtbot, window)
    window.input.setPlainText(WORDS)
    window.submit_button.click()
    qtbot.waitUntil(lambda: window.controller.generating, timeout=5000)
    dialog = _backup_dialog(window)
    destination = tmp_path / "b.db"
    dialog.destination.setText(str(destination))
    dialog.store_passphrase.setText(PASSPHRASE)
    dialog.backup_button.click()
    assert "still being made" in dialog.error.text() and not window.tasks.busy
    window.controller.stop()
    qtbot.waitUntil(lambda: not window.controller.generating, timeout=5000)
    dialog.store_passphrase.setText(PASSPHRASE)
    dialog.backup_button.click()
    _wait_for_backup(qtbot, window, dialog)
    assert destination.exists() and "Backup written" in dialog.status.text()


def test_backup_with_a_separate_passphrase(qtbot, make_window, tmp_path):
    h = make_window()
    window = h.window
    unlock(qtbot, window)
    dialog = _backup_dialog(window)
    destination = tmp_path / "separate.db"
    dialog.destination.setText(str(destination))
    dialog.use_separate.setChecked(True)
    assert dialog.separate_box.isVisible() and not dialog.store_box.isVisible()
    fields = dialog.new_passphrase
    fields.passphrase.setText("password123")  # on every breach list
    fields.confirm.setText("password123")
    assert not dialog.backup_button.isEnabled() and fields.meter.value() == 1
    fields.passphrase.setText(BACKUP_PASSPHRASE)
    fields.confirm.setText(BACKUP_PASSPHRASE[:-1])
    assert not dialog.backup_button.isEnabled()
    fields.confirm.setText(BACKUP_PASSPHRASE)
    assert dialog.backup_button.isEnabled()
    dialog.backup_button.click()
    _wait_for_backup(qtbot, window, dialog)
    assert "Backup written" in dialog.status.text()
    assert fields.passphrase.text() == "" and fields.confirm.text() == ""
    window.close()
    with pytest.raises(WrongPassphrase):
        restore(destination, PASSPHRASE, tmp_path / "r1.db")
    with restore(destination, BACKUP_PASSPHRASE, tmp_path / "r2.db") as restored:
        assert restored.profile().display_name == "Dr Test"


def test_the_file_dialogs_are_qt_own(qtbot, make_window, tmp_path, monkeypatch):
    asked = []

    def fake(parent, caption, directory, filter, options):
        asked.append(options)
        return str(tmp_path / "picked.db"), filter

    monkeypatch.setattr(QFileDialog, "getSaveFileName", fake)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", fake)
    h = make_window()
    dialog = BackupDialog(tmp_path, h.window)
    dialog.choose_destination()
    assert dialog.destination.text() == str(tmp_path / "picked.db")
    restore_dialog = RestoreDialog(h.store_path, store_open=False, parent=h.window)
    restore_dialog.choose_backup()
    assert restore_dialog.backup.text() == str(tmp_path / "picked.db")
    assert len(asked) == 2
    assert all(options & QFileDialog.Option.DontUseNativeDialog for options in asked)


def test_restore_replaces_the_records_and_sets_the_old_ones_aside(qtbot, make_window, tmp_path, other_backup):
    h = make_window()
    window = h.window
    unlock(qtbot, window)
    new_session(qtbot, window, "C-CURRENT")
    dialog = _open(window, window.restore_action, RestoreDialog)
    explanation = dialog.explanation.text()
    assert "set aside" in explanation and "store.db.replaced-" in explanation
    assert "BACKUP's passphrase" in explanation
    dialog.reject()
    _restore(qtbot, window, other_backup, BACKUP_PASSPHRASE)
    qtbot.waitUntil(lambda: window.store is not None and not window.tasks.busy, timeout=10_000)
    assert window.pages.currentWidget() is window.workspace
    assert [c.code for c in window.store.list_clients()] == ["C-BACKUP"]
    assert window.clients.clients.count() == 1
    assert window.store.audit_log()[0].action == "restore"
    [done] = [d for d in window.findChildren(QMessageBox) if d.isVisible()]
    assert "backup's passphrase" in done.text() and "store.db.replaced-" in done.text()
    assert str(h.store_path.parent) in done.text()
    with _open_set_aside(h.store_path, tmp_path) as old:  # the old records, intact
        assert [c.code for c in old.list_clients()] == ["C-CURRENT"]
    window.lock("test")
    unlock(qtbot, window, BACKUP_PASSPHRASE, model=False)  # the backup's passphrase now
    assert [c.code for c in window.store.list_clients()] == ["C-BACKUP"]


@pytest.mark.parametrize(
    "damage, expected",
    [
        ("wrong passphrase", "Wrong passphrase for this backup"),
        ("flipped byte", "Restore it from a backup"),  # DatabaseCorrupt's own message
        ("missing file", "no store at"),
    ],
)
def test_a_failed_restore_leaves_the_current_store_as_it_was(
    qtbot, make_window, tmp_path, other_backup, damage, expected
):
    passphrase = BACKUP_PASSPHRASE
    if damage == "wrong passphrase":
        passphrase = "amber lighthouse teapots"
    elif damage == "flipped byte":
        data = bytearray(other_backup.read_bytes())
        data[4096 + 10] ^= 0x40
        other_backup.write_bytes(bytes(data))
    else:
        other_backup = tmp_path / "nowhere.db"
    h = make_window()
    window = h.window
    unlock(qtbot, window)
    new_session(qtbot, window, "C-CURRENT")
    window.lock("test")
    before = {p.name: p.read_bytes() for p in h.store_path.parent.iterdir()}
    unlock(qtbot, window, model=False)
    _restore(qtbot, window, other_backup, passphrase)
    assert window.store is None and window.pages.currentWidget() is window.unlock
    qtbot.waitUntil(lambda: window.unlock.error.isVisible(), timeout=10_000)
    error = window.unlock.error.text()
    assert error.startswith("The restore failed:") and expected in error
    assert "Your records were not changed" in error
    assert window.unlock.isEnabled() and window.restore_action.isEnabled()
    assert {p.name: p.read_bytes() for p in h.store_path.parent.iterdir()} == before
    unlock(qtbot, window, model=False)  # the unchanged store, with its own passphrase
    assert [c.code for c in window.store.list_clients()] == ["C-CURRENT"]


def test_a_restore_that_fails_after_the_swap_says_where_the_old_records_went(
    qtbot, make_window, other_backup, monkeypatch
):
    import therapist_app.ui.main_window as main_window

    def restore_then_fail(*args, **kwargs):
        restore(*args, **kwargs).lock()
        raise StorageFailure("the restored records could not be opened")

    monkeypatch.setattr(main_window, "restore", restore_then_fail)
    h = make_window()
    window = h.window
    unlock(qtbot, window)
    _restore(qtbot, window, other_backup, BACKUP_PASSPHRASE)
    qtbot.waitUntil(lambda: window.unlock.error.isVisible(), timeout=10_000)
    error = window.unlock.error.text()
    assert "could not be opened" in error and "not changed" not in error
    assert "set aside as store.db.replaced-" in error and "backup's are in their place" in error
    unlock(qtbot, window, BACKUP_PASSPHRASE, model=False)
    assert [c.code for c in window.store.list_clients()] == ["C-BACKUP"]


def test_restore_from_the_unlock_page(qtbot, make_window, tmp_path, other_backup):
    h = make_window()
    window = h.window
    assert window.pages.currentWidget() is window.unlock
    _restore(qtbot, window, other_backup, BACKUP_PASSPHRASE)
    qtbot.waitUntil(lambda: window.store is not None, timeout=10_000)
    assert [c.code for c in window.store.list_clients()] == ["C-BACKUP"]
    with _open_set_aside(h.store_path, tmp_path) as old:
        assert old.profile().display_name == "Dr Test"


def test_size_text_doctest():
    assert doctest.testmod(backup_restore).failed == 0
