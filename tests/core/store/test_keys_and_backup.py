"""Passphrase changes, rekey (and its crash recovery), the keychain, backup and restore."""

from __future__ import annotations

import os
import sqlite3

import keyring
import pytest
from keyring.backends.fail import Keyring as NoKeyring

from tests.core.store.helpers import PASSPHRASE, fill, snapshot
from therapist_app.core.store import (
    KdfParams,
    KeychainUnavailable,
    NotEncrypted,
    Store,
    StoreExists,
    WrongPassphrase,
    restore,
)
from therapist_app.core.store.connection import SQLITE_HEADER

TABLES = (
    "profile",
    "clients",
    "sessions",
    "utterances",
    "suggestions",
    "decisions",
    "notes",
    "models",
    "schema_migrations",
)


def content(store: Store) -> dict[str, list]:
    conn = store._require()
    return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in TABLES}


def test_change_passphrase_rewraps_without_touching_data(store):
    fill(store, "one")
    before = content(store)
    with pytest.raises(WrongPassphrase):
        store.change_passphrase("wrong passphrase", "a new passphrase")
    store.change_passphrase(PASSPHRASE, "a new passphrase")
    store.lock()
    with pytest.raises(WrongPassphrase):
        Store.open(store.path, PASSPHRASE)
    with Store.open(store.path, "a new passphrase") as reopened:
        assert content(reopened) == before
        assert reopened.audit_log(limit=1)[0].action == "passphrase_changed"


def test_rekey_changes_the_data_key_and_keeps_content(store):
    fill(store, "two")
    before, old_key = content(store), bytes(store._data_key)
    store.rekey(PASSPHRASE)
    assert bytes(store._data_key) != old_key
    assert content(store) == before
    store.lock()
    with Store.open(store.path, PASSPHRASE) as reopened:
        assert content(reopened) == before
        assert reopened.integrity_check().ok


@pytest.mark.parametrize("crash_at", [1, 2])
def test_rekey_interrupted_by_a_crash_is_settled_at_next_open(store, monkeypatch, crash_at):
    """crash_at 1: after the pending key is written, before the file swap;
    2: after the swap, before the key file is settled."""
    fill(store, "three")
    before = content(store)
    real_replace, real_write = (
        os.replace,
        __import__("therapist_app.core.store.keys", fromlist=["write_key_file"]).write_key_file,
    )
    calls = {"write": 0}

    class Crash(BaseException):
        pass

    def crashing_replace(src, dst):
        if crash_at == 1 and str(src).endswith(".rekey"):
            raise Crash
        return real_replace(src, dst)

    def crashing_write(db_path, key_file):
        calls["write"] += 1
        if crash_at == 2 and calls["write"] == 2:
            raise Crash
        return real_write(db_path, key_file)

    monkeypatch.setattr("therapist_app.core.store.store.os.replace", crashing_replace)
    monkeypatch.setattr("therapist_app.core.store.keys.write_key_file", crashing_write)
    with pytest.raises(Crash):
        store.rekey(PASSPHRASE)
    monkeypatch.undo()
    assert store.locked and bytes(store._data_key) == bytes(32)
    with Store.open(store.path, PASSPHRASE) as reopened:
        assert content(reopened) == before
        assert not reopened._key_file.pending
    assert not (store.path.parent / "store.db.rekey").exists()


def test_backup_and_restore_give_identical_content(store, tmp_path):
    fill(store, "four")
    fill(store, "five")
    before, audit_before = content(store), store.audit_log()
    backup = tmp_path / "backups" / "b.db"
    backup.parent.mkdir()
    store.backup(backup, "a backup passphrase")
    assert not backup.read_bytes().startswith(SQLITE_HEADER)
    assert store.audit_log(limit=1)[0].action == "backup"
    with pytest.raises(StoreExists):
        store.backup(backup, "a backup passphrase")
    store.lock()
    with pytest.raises(WrongPassphrase):
        restore(backup, PASSPHRASE, tmp_path / "restored.db")
    with restore(backup, "a backup passphrase", tmp_path / "restored.db") as restored:
        assert content(restored) == before
        assert restored.integrity_check().ok
        restored_audit = restored.audit_log()
        assert restored_audit[0].action == "restore"
        assert restored_audit[1:] == audit_before  # the backup's own row came after the copy


def test_backup_refuses_a_plaintext_destination(store, tmp_path):
    plain = tmp_path / "plain.db"
    sqlite3.connect(plain).execute("CREATE TABLE t(x)").connection.close()
    before = plain.read_bytes()
    with pytest.raises(NotEncrypted, match="plaintext"):
        store.backup(plain, PASSPHRASE)
    assert plain.read_bytes() == before


def test_restore_refuses_a_plaintext_backup(tmp_path):
    plain = tmp_path / "plain.db"
    sqlite3.connect(plain).execute("CREATE TABLE t(x)").connection.close()
    with pytest.raises(NotEncrypted):
        restore(plain, PASSPHRASE, tmp_path / "target.db")
    assert not (tmp_path / "target.db").exists()


def test_restore_sets_a_damaged_store_aside(store, tmp_path):
    fill(store, "six")
    before = content(store)
    backup = tmp_path / "b.db"
    store.backup(backup, PASSPHRASE)
    store.lock()
    damaged = bytearray(store.path.read_bytes())
    damaged[4096 + 100] ^= 0xFF
    store.path.write_bytes(bytes(damaged))
    with pytest.raises(StoreExists):
        restore(backup, PASSPHRASE, store.path)
    with restore(backup, PASSPHRASE, store.path, replace=True) as restored:
        assert content(restored) == before
    kept = [p for p in tmp_path.iterdir() if ".replaced-" in p.name]
    assert any(p.read_bytes() == bytes(damaged) for p in kept)


def test_keychain_unlocks_without_the_passphrase(tmp_path, memory_keyring):
    path = tmp_path / "s.db"
    with Store.create(path, PASSPHRASE, KdfParams.fast(), keychain=True) as store:
        assert store.uses_keychain and store.keychain_message is None
        store.add_client("C-1")
    assert len(memory_keyring.items) == 1
    key_file = (tmp_path / "s.db.keys").read_text()
    assert next(iter(memory_keyring.items.values())) not in key_file
    with Store.open(path) as store:
        assert [c.code for c in store.list_clients()] == ["C-1"]
        store.set_keychain(PASSPHRASE, enabled=False)
    assert memory_keyring.items == {}
    with pytest.raises(KeychainUnavailable, match="no entry"):
        Store.open(path)


def test_missing_keychain_degrades_to_passphrase_only(tmp_path):
    previous = keyring.get_keyring()
    keyring.set_keyring(NoKeyring())
    try:
        path = tmp_path / "s.db"
        with Store.create(path, PASSPHRASE, KdfParams.fast(), keychain=True) as store:
            assert not store.uses_keychain
            assert "passphrase only" in store.keychain_message
        with pytest.raises(KeychainUnavailable, match="passphrase only"):
            Store.open(path)
        Store.open(path, PASSPHRASE).close()
    finally:
        keyring.set_keyring(previous)


def test_backup_creates_nothing_on_failure(store, tmp_path):
    missing_folder = tmp_path / "nope" / "b.db"
    before = snapshot(tmp_path)
    with pytest.raises(Exception):
        store.backup(missing_folder, PASSPHRASE)
    assert snapshot(tmp_path).keys() == before.keys()


def test_failed_creation_leaves_no_files_and_no_keychain_entry(tmp_path, memory_keyring, monkeypatch):
    def failing_migrate(conn):
        raise RuntimeError("simulated failure while creating the schema")

    monkeypatch.setattr("therapist_app.core.store.store.migrate", failing_migrate)
    with pytest.raises(RuntimeError, match="simulated"):
        Store.create(tmp_path / "s.db", PASSPHRASE, KdfParams.fast(), keychain=True)
    assert [p.name for p in tmp_path.iterdir()] == ["s.db.lock"]
    assert memory_keyring.items == {}
