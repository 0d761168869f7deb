"""First run, unlock with the right and the wrong passphrase, keychain offer by policy."""

from __future__ import annotations

import pytest

from tests.ui.conftest import PASSPHRASE, unlock
from therapist_app.core.policy import Policy
from therapist_app.core.store import Store
from therapist_app.ui.passphrase_strength import assess_passphrase

pytestmark = pytest.mark.gui


def test_first_run_creates_an_encrypted_profile(qtbot, make_window):
    h = make_window(existing=False)
    window = h.window
    assert window.pages.currentWidget() is window.first_run
    page = window.first_run
    page.name.setText("Dr Rivera")
    page.passphrase.setText("short")
    assert not page.create_button.isEnabled()
    assert page.meter.value() == 0
    page.passphrase.setText("password123")  # long enough, but on every breach list
    page.confirm.setText("password123")
    assert not page.create_button.isEnabled()
    page.passphrase.setText("lantern orchard bicycle")
    page.confirm.setText("lantern orchard bicycl")
    assert not page.create_button.isEnabled()
    page.confirm.setText("lantern orchard bicycle")
    assert page.create_button.isEnabled() and page.meter.value() == 4
    page.create_button.click()
    qtbot.waitUntil(lambda: window.pages.currentWidget() is window.workspace, timeout=5000)
    assert page.passphrase.text() == "" and page.confirm.text() == ""
    assert h.store_path.exists()
    assert window.store.profile().display_name == "Dr Rivera"
    window.lock("test")
    with Store.open(h.store_path, "lantern orchard bicycle") as store:
        assert store.audit_log()[-1].action == "store_created"


def test_unlock_with_the_right_passphrase(qtbot, make_window):
    h = make_window()
    window = h.window
    assert window.pages.currentWidget() is window.unlock
    unlock(qtbot, window)
    assert window.store is not None and not window.store.locked
    assert window.model_label.text() == "Model: Fake model"
    assert window.device_label.text() == "Device: CPU"


def test_wrong_passphrase_says_so_and_changes_nothing(qtbot, make_window):
    h = make_window()
    window = h.window
    before = h.store_path.read_bytes()
    window.unlock.passphrase.setText("violet kettle harbor")
    window.unlock.unlock_button.click()
    qtbot.waitUntil(lambda: window.unlock.error.isVisible(), timeout=5000)
    assert window.unlock.error.text().startswith("Wrong passphrase")
    assert window.pages.currentWidget() is window.unlock
    assert window.store is None
    assert window.unlock.isEnabled() and window.unlock.passphrase.text() == ""
    assert h.store_path.read_bytes() == before
    unlock(qtbot, window, PASSPHRASE)


def test_keychain_unlock_is_offered_only_where_policy_and_store_allow(qtbot, make_window):
    # The template store has no keychain wrap: the button stays hidden either way.
    window = make_window().window
    assert window.unlock.keychain_button.isHidden()
    first_run = make_window(existing=False, policy=Policy(keychain_allowed=False)).window
    assert first_run.first_run.keychain.isHidden()


@pytest.mark.parametrize(
    "passphrase, label",
    [
        ("", "Too short"),
        ("abcdefg", "Too short"),
        ("aaaaaaaaaaaa", "Weak"),
        ("abcdefghij", "Weak"),
        ("Tr0ub4dor&3", "Fair"),
        ("correct horse", "Good"),
        ("correct horse battery staple", "Strong"),
        ("ñandú kiwi émeu", "Good"),
    ],
)
def test_passphrase_feedback_is_about_length_not_composition(passphrase, label):
    assert assess_passphrase(passphrase).label == label


def test_a_passphrase_containing_the_profile_name_is_weak():
    assert assess_passphrase("riveraclinic2026", "Rivera").label == "Weak"


def test_keychain_unlock_after_opting_in_at_first_run(qtbot, make_window, memory_keyring):
    h = make_window(existing=False)
    window = h.window
    page = window.first_run
    assert not page.keychain.isHidden()
    page.passphrase.setText("lantern orchard bicycle")
    page.confirm.setText("lantern orchard bicycle")
    page.keychain.setChecked(True)
    page.create_button.click()
    qtbot.waitUntil(lambda: window.pages.currentWidget() is window.workspace, timeout=5000)
    assert window.store.uses_keychain and len(memory_keyring.items) == 1
    window.lock("Locked for the test.")
    assert window.pages.currentWidget() is window.unlock
    assert not window.unlock.keychain_button.isHidden()
    window.unlock.keychain_button.click()
    qtbot.waitUntil(lambda: window.pages.currentWidget() is window.workspace, timeout=5000)
    assert not window.store.locked
    # With the keychain entry gone, the button reports it and the passphrase still works.
    window.lock("Locked for the test.")
    memory_keyring.items.clear()
    window.unlock.keychain_button.click()
    qtbot.waitUntil(lambda: window.unlock.error.isVisible(), timeout=5000)
    assert "keychain" in window.unlock.error.text().lower()
    unlock(qtbot, window, "lantern orchard bicycle")


def test_a_damaged_log_is_explained_and_can_be_opened_keeping_earlier_changes(qtbot, make_window):
    from PySide6.QtWidgets import QMessageBox

    h = make_window()
    with Store.open(h.store_path, PASSPHRASE) as store:
        store._require().execute("PRAGMA wal_autocheckpoint = 0")
        session = store.start_session(store.add_client("C-WAL").id)
        for number in range(30):
            store.append_utterance(session.id, "client", f"commit {number}")
        wal = h.store_path.with_name("store.db-wal")
        crashed = wal.read_bytes()  # the log as a crash would leave it
    data = bytearray(crashed)
    data[32 + 20 * (24 + 4096) + 500] ^= 0x04  # one bit of frame 21
    wal.write_bytes(data)
    window = h.window
    window.unlock.passphrase.setText(PASSPHRASE)
    window.unlock.unlock_button.click()
    qtbot.waitUntil(lambda: window.unlock.error.isVisible(), timeout=5000)
    assert "damaged at frame 21" in window.unlock.error.text()
    [ask] = [d for d in window.findChildren(QMessageBox) if d.isVisible()]
    shown = []
    window.statusBar().messageChanged.connect(shown.append)
    ask.button(QMessageBox.StandardButton.Open).click()
    qtbot.waitUntil(lambda: window.pages.currentWidget() is window.workspace, timeout=5000)
    assert any("damaged log was kept as store.db-wal.damaged-" in m for m in shown)
    assert list(h.store_path.parent.glob("store.db-wal.damaged-*"))
