"""Opening a store: passphrases, damaged or foreign files, a second instance."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import unicodedata

import pytest

from tests.core.store.helpers import PASSPHRASE, copy_store, run_proc, snapshot
from therapist_app.core.store import (
    DatabaseCorrupt,
    DatabaseInUse,
    KdfParams,
    KeyFileDamaged,
    KeyFileMissing,
    NotEncrypted,
    PassphraseTooShort,
    StorageFailure,
    Store,
    StoreExists,
    WrongPassphrase,
    keys,
)
from therapist_app.core.store.connection import SQLITE_HEADER


def test_wrong_passphrase_changes_and_creates_nothing(store_path):
    before = snapshot(store_path.parent)
    with pytest.raises(WrongPassphrase, match="wrong passphrase"):
        Store.open(store_path, "not the passphrase")
    assert snapshot(store_path.parent) == before


@pytest.mark.parametrize("wrong", ["", "short", PASSPHRASE.upper(), PASSPHRASE + " "])
def test_near_miss_passphrases_are_refused(store_path, wrong):
    with pytest.raises((WrongPassphrase, PassphraseTooShort)):
        Store.open(store_path, wrong)


@pytest.mark.parametrize(
    "passphrase",
    [
        "it's \"quoted\" '; DROP TABLE clients; --",
        "x" * 1000,
        "пароль-日本語-🔐-émoji",
    ],
)
def test_unusual_passphrases_work(tmp_path, passphrase):
    path = tmp_path / "s.db"
    with Store.create(path, passphrase, KdfParams.fast()) as store:
        store.add_client("C-1")
    with Store.open(path, passphrase) as store:
        assert [c.code for c in store.list_clients()] == ["C-1"]


def test_nfc_and_nfd_forms_open_the_same_store(tmp_path):
    nfc = unicodedata.normalize("NFC", "Café crème brûlée")
    nfd = unicodedata.normalize("NFD", nfc)
    assert nfc != nfd
    path = tmp_path / "s.db"
    Store.create(path, nfc, KdfParams.fast()).close()
    Store.open(path, nfd).close()


def test_short_passphrase_is_refused_at_creation(tmp_path):
    with pytest.raises(PassphraseTooShort, match="at least 8"):
        Store.create(tmp_path / "s.db", "seven77", KdfParams.fast())
    assert list(tmp_path.iterdir()) == []


def test_create_refuses_an_existing_file(store_path):
    before = snapshot(store_path.parent)
    with pytest.raises(StoreExists):
        Store.create(store_path, PASSPHRASE, KdfParams.fast())
    assert snapshot(store_path.parent) == before


def _page_offsets(path):
    pages = path.stat().st_size // 4096
    # One byte in the salt, then one in the middle of every page.
    return [5] + [page * 4096 + 2048 for page in range(pages)]


def test_every_page_is_authenticated(template, tmp_path):
    for offset in _page_offsets(template):
        path = copy_store(template, tmp_path / f"flip{offset}.db")
        data = bytearray(path.read_bytes())
        data[offset] ^= 0x01
        path.write_bytes(bytes(data))
        before = _without_locks(snapshot(tmp_path))
        with pytest.raises(DatabaseCorrupt, match="Restore it from a backup") as error:
            Store.open(path, PASSPHRASE)
        assert "damaged" in str(error.value) or "integrity" in str(error.value)
        # Nothing overwritten; at most the (empty) instance lock file appears.
        assert _without_locks(snapshot(tmp_path)) == before


def _without_locks(files):
    return {name: data for name, data in files.items() if not name.endswith(".lock")}


def test_zero_byte_and_truncated_files_are_refused(store_path):
    data = store_path.read_bytes()
    store_path.write_bytes(b"")
    with pytest.raises(DatabaseCorrupt, match="empty"):
        Store.open(store_path, PASSPHRASE)
    assert store_path.read_bytes() == b""
    store_path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatabaseCorrupt):
        Store.open(store_path, PASSPHRASE)
    assert len(store_path.read_bytes()) == len(data) // 2


def test_plaintext_sqlite_file_is_refused_untouched(store_path):
    store_path.unlink()
    with sqlite3.connect(store_path) as plain:
        plain.execute("CREATE TABLE t(x)")
    plain.close()
    before = store_path.read_bytes()
    assert before.startswith(SQLITE_HEADER)
    with pytest.raises(NotEncrypted, match="plaintext"):
        Store.open(store_path, PASSPHRASE)
    assert store_path.read_bytes() == before


def test_missing_key_file_is_explained(store_path):
    (store_path.parent / "store.db.keys").unlink()
    with pytest.raises(KeyFileMissing, match="key file"):
        Store.open(store_path, PASSPHRASE)


def test_key_file_never_holds_the_data_key(store):
    key_file = (store.path.parent / "store.db.keys").read_text()
    data_key = bytes(store._data_key)
    for form in (data_key.hex(), data_key.hex().upper(), __import__("base64").b64encode(data_key).decode()):
        assert form not in key_file


def test_weakened_kdf_in_the_key_file_is_refused(store_path):
    key_path = store_path.parent / "store.db.keys"
    key_path.write_text(key_path.read_text().replace('"time_cost": 1', '"time_cost": 2'))
    with pytest.raises(KeyFileDamaged, match="edited or damaged"):  # not "wrong passphrase"
        Store.open(store_path, PASSPHRASE)
    # Whoever also recomputes the checksum still meets the GCM binding of the KDF costs.
    record = json.loads(key_path.read_text())
    del record["checksum"]
    key_path.write_text(json.dumps({**record, "checksum": keys._checksum(record)}))
    with pytest.raises(WrongPassphrase):
        Store.open(store_path, PASSPHRASE)


def test_second_instance_in_this_process_gets_database_in_use(store):
    with pytest.raises(DatabaseInUse, match="another instance"):
        Store.open(store.path, PASSPHRASE)


def test_second_process_gets_database_in_use(store):
    proc = run_proc(
        "open_once.py",
        str(store.path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.PIPE,
        text=True,
    )
    out, err = proc.communicate(PASSPHRASE + "\n", timeout=60)
    assert proc.returncode == 3, err
    assert out.strip() == "DatabaseInUse"
    store.lock()
    proc = run_proc(
        "open_once.py",
        str(store.path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.PIPE,
        text=True,
    )
    out, err = proc.communicate(PASSPHRASE + "\n", timeout=60)
    assert (proc.returncode, out.strip()) == (0, "opened"), err


def test_paths_with_uri_characters_work(tmp_path):
    folder = tmp_path / "odd folder ? # %20"
    folder.mkdir()
    path = folder / "store #1?.db"
    with Store.create(path, PASSPHRASE, KdfParams.fast()) as store:
        store.add_client("C-1")
    with Store.open(path, PASSPHRASE) as store:
        assert [c.code for c in store.list_clients()] == ["C-1"]
    assert sorted(p.name for p in folder.iterdir()) == ["store #1?.db", "store #1?.db.keys", "store #1?.db.lock"]


def test_absurd_kdf_costs_in_the_key_file_are_refused_before_deriving(store_path):
    key_path = store_path.parent / "store.db.keys"
    record = json.loads(key_path.read_text())
    del record["checksum"]  # an old-format file: the bounds alone must refuse it
    record["kdf"]["memory_kib"] = 999999999
    key_path.write_text(json.dumps(record))
    with pytest.raises(KeyFileDamaged, match="key file .* is damaged"):
        Store.open(store_path, PASSPHRASE)


def test_a_foreign_wal_is_refused_without_touching_the_database(template, tmp_path):
    """A -wal from another store must not be checkpointed into this one on close."""
    ours = copy_store(template, tmp_path / "ours.db")
    with Store.open(ours, PASSPHRASE) as store:
        store.add_client("C-ours")
    # Another store: its own data key (a copy of the template would share ours).
    with Store.create(tmp_path / "theirs.db", PASSPHRASE, KdfParams.fast()) as other:
        for n in range(10):
            other.add_client(f"C-theirs-{n}")
        foreign_wal = (tmp_path / "theirs.db-wal").read_bytes()
    assert foreign_wal
    (tmp_path / "ours.db-wal").write_bytes(foreign_wal)
    before = ours.read_bytes()
    with pytest.raises(DatabaseCorrupt, match="ours.db-wal .* not this store's"):
        Store.open(ours, PASSPHRASE)
    assert ours.read_bytes() == before
    (tmp_path / "ours.db-wal").rename(tmp_path / "foreign-wal")
    with Store.open(ours, PASSPHRASE) as store:
        assert [c.code for c in store.list_clients()] == ["C-ours"]


def test_unwritable_lock_file_is_a_clear_error(store_path, monkeypatch):
    """What a read-only folder does to the lock file (root ignores real permissions)."""
    real_open = os.open

    def refusing_open(path, flags, *args):
        if str(path).endswith(".lock"):
            raise PermissionError(13, "Permission denied")
        return real_open(path, flags, *args)

    monkeypatch.setattr("therapist_app.core.store.lockfile.os.open", refusing_open)
    before = snapshot(store_path.parent)
    with pytest.raises(StorageFailure, match="read-only"):
        Store.open(store_path, PASSPHRASE)
    assert snapshot(store_path.parent) == before
