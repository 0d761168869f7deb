"""The faults an outside campaign found, one test (or more) per item of issue 23.

Each kill test runs an operation in a child process and SIGKILLs it at a spread of its
steps (every SQL statement, rename, fsync, unlink and write counts; see procs/fault_op.py),
then opens the store as the user next would. bench/store_faults.py runs the same checks
at every step and with many random bit flips (`--runs N`).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys

import pytest

from tests.core.store import faults
from tests.core.store.helpers import PASSPHRASE, copy_store, decrypted_pages, fill, snapshot
from therapist_app.core.store import (
    Conflict,
    InvalidInput,
    KdfParams,
    KeyFileDamaged,
    StorageFull,
    Store,
    StoreError,
    WalDamaged,
    connection,
    restore,
)

# Steps are counted once per run of the real operation; these spread the kills over it.
# Erasure is killed at every step: its dangerous window is one or two steps wide.
KILL_SPREAD = {"erase": 1, "create": 9, "restore": 9, "rekey": 17, "backup": 17, "commit": 23}


@pytest.mark.parametrize("operation", faults.OPERATIONS)
def test_a_kill_at_any_step_loses_nothing_and_strands_no_one(operation, template, tmp_path):
    steps = faults.count_steps(operation, tmp_path / "count", template) if (tmp_path / "count").mkdir() is None else 0
    failures = []
    for kill_at in range(1, steps + 1, KILL_SPREAD[operation]):
        folder = tmp_path / f"k{kill_at}"
        folder.mkdir()
        outcome = faults.kill_run(operation, folder, template, kill_at)
        if not outcome.survived:
            failures.append((kill_at, outcome.detail))
    assert steps > 20 and not failures, failures


# ---- 1. a damaged -wal ------------------------------------------------------------------


def _crashed_store_with_log(template, tmp_path, commits=30):
    """A store whose last `commits` changes sit in its -wal, as after a crash."""
    path = copy_store(template, tmp_path / "live.db")
    store = Store.open(path, PASSPHRASE)
    store._require().execute("PRAGMA wal_autocheckpoint = 0")
    session = store.start_session(store.add_client("C-WAL").id)
    for number in range(commits):
        store.append_utterance(session.id, "client", f"commit {number}")
    crashed = tmp_path / "crashed"
    crashed.mkdir()
    for suffix in ("", "-wal", ".keys"):
        (crashed / f"store.db{suffix}").write_bytes((tmp_path / f"live.db{suffix}").read_bytes())
    store.close()
    return crashed / "store.db", session.id


def test_a_flipped_bit_mid_wal_is_refused_then_salvaged_keeping_the_log(template, tmp_path):
    path, session_id = _crashed_store_with_log(template, tmp_path)
    wal = path.with_name("store.db-wal")
    damaged = bytearray(wal.read_bytes())
    damaged[32 + 40 * (24 + 4096) + 24 + 100] ^= 0x10  # page data of frame 41
    wal.write_bytes(damaged)
    before = snapshot(path.parent)
    with pytest.raises(WalDamaged, match=r"frame 41 .* saved change\(s\) from there on"):
        Store.open(path, PASSPHRASE)
    assert snapshot(path.parent) == before  # refused without a byte changed
    with Store.open(path, PASSPHRASE, salvage_wal=True) as store:
        kept = list(path.parent.glob("store.db-wal.damaged-*"))
        assert len(kept) == 1 and kept[0].read_bytes() == bytes(damaged)
        assert "kept as store.db-wal.damaged-" in store.notice
        said = [u.text for u in store.session_transcript(session_id).utterances]
        assert said and said == [f"commit {n}" for n in range(len(said))]  # a prefix, in order
        assert store.integrity_check().ok


def test_a_damaged_wal_header_is_refused(template, tmp_path):
    path, _ = _crashed_store_with_log(template, tmp_path)
    wal = path.with_name("store.db-wal")
    damaged = bytearray(wal.read_bytes())
    damaged[17] ^= 0x01  # a salt: SQLite would ignore the whole log
    wal.write_bytes(damaged)
    with pytest.raises(WalDamaged, match="damaged at its header"):
        Store.open(path, PASSPHRASE)


def test_a_torn_tail_of_the_wal_still_opens_as_sqlite_intends(template, tmp_path):
    """A transaction cut short by a crash: its frames carry no commit, the last is torn."""
    path, session_id = _crashed_store_with_log(template, tmp_path)
    wal = path.with_name("store.db-wal")
    data = wal.read_bytes()
    frame = 24 + 4096
    last = data[-frame:]
    uncommitted = last[:4] + bytes(4) + last[8:]  # db size 0: not the end of a transaction
    torn = uncommitted[: frame // 2] + bytes(frame - frame // 2)
    wal.write_bytes(data + uncommitted + torn)
    with Store.open(path, PASSPHRASE) as store:
        assert len(store.session_transcript(session_id).utterances) == 30


@pytest.mark.parametrize("seed", range(4))
def test_random_bit_flips_in_the_wal_are_never_silent(template, tmp_path, seed):
    outcome = faults.wal_flip_run(tmp_path, template, random.Random(seed))
    assert outcome.survived and not outcome.silent, outcome


@pytest.mark.parametrize("seed", range(4))
def test_random_bit_flips_in_the_files_are_refused_or_harmless(template, tmp_path, seed):
    outcome = faults.damaged_file_run(tmp_path, template, random.Random(seed))
    assert outcome.survived and not outcome.silent, outcome


# ---- 2. erasure that cannot compact ------------------------------------------------------


def test_an_erasure_on_a_full_disk_is_saved_and_its_compaction_finished_later(store_path, monkeypatch):
    with Store.open(store_path, PASSPHRASE) as store:
        ids = fill(store, "GONEmarker")
        key = faults.data_key(store_path)

        def disk_full(self):
            raise StorageFull("the disk is full")

        with monkeypatch.context() as patched:
            patched.setattr(Store, "compact", disk_full)
            erasure = store.erase_client(ids["client"])
        assert not erasure.compacted and store.compaction_pending
        assert "retried every time the records are opened" in erasure.message
        assert store.list_clients() == []  # the erasure itself stands
    with Store.open(store_path, PASSPHRASE) as store:  # finishes the compaction
        assert not store.compaction_pending
        pages = decrypted_pages(store_path.read_bytes(), key)
        wal = store_path.with_name("store.db-wal")
        pages += decrypted_pages(wal.read_bytes(), key, wal=True) if wal.exists() else b""
        assert b"GONEmarker" not in pages
        assert not store._require().execute("SELECT * FROM maintenance").fetchall()


def test_an_erasure_names_copies_a_restore_set_aside(store_path, tmp_path):
    with Store.open(store_path, PASSPHRASE) as store:
        fill(store, "OLDmarker")
        store.backup(tmp_path / "bk.db", PASSPHRASE)
    with restore(tmp_path / "bk.db", PASSPHRASE, store_path, replace=True) as store:
        erasure = store.erase_client(store.list_clients()[0].id)
    assert len(erasure.set_aside) == 1 and erasure.set_aside[0].startswith("store.db.replaced-")
    assert erasure.set_aside[0] in erasure.message


# ---- 3 and 4. create and restore: atomic, and restore from read-only media --------------


def test_restore_writes_nothing_beside_the_backup(store_path, tmp_path):
    media = tmp_path / "stick"
    media.mkdir()
    with Store.open(store_path, PASSPHRASE) as store:
        fill(store, "STICKmarker")
        store.backup(media / "bk.db", PASSPHRASE)
    for path in media.iterdir():
        path.chmod(0o444)
    media.chmod(0o555)  # write-protected (root ignores modes; the snapshot still tells)
    before = snapshot(media)
    try:
        with restore(media / "bk.db", PASSPHRASE, tmp_path / "restored.db") as store:
            assert [c.code for c in store.list_clients()] == ["C-STICKmarker"]
    finally:
        media.chmod(0o755)
    assert snapshot(media) == before


def test_a_half_created_store_is_recognised_and_create_starts_again(template, tmp_path):
    """The state five of eight kill points left before: a database without a key file."""
    path = tmp_path / "store.db"
    connection.private_new_file(path.with_name("store.db.creating"))
    path.with_name("store.db.creating.keys").write_text("{}")
    with Store.create(path, PASSPHRASE, KdfParams.fast()) as store:
        assert store.list_clients() == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store.db", "store.db.keys", "store.db.lock"]


# ---- 5. the audit log ------------------------------------------------------------------

REWRITES = [
    "INSERT OR REPLACE INTO audit(id, at, action) VALUES (1, 'x', 'backup')",
    "REPLACE INTO audit(id, at, action) VALUES (1, 'x', 'backup')",
    "INSERT INTO audit(id, at, action) VALUES (1, 'x', 'backup') ON CONFLICT(id) DO UPDATE SET action = 'backup'",
    "UPDATE OR REPLACE audit SET action = 'backup' WHERE id = 1",
    "DELETE FROM audit WHERE id = 1",
]


@pytest.mark.parametrize("sql", REWRITES)
def test_the_audit_log_refuses_every_rewrite(store, sql):
    before = store.audit_log()
    with pytest.raises(Conflict, match="append-only"):
        with store.atomic():
            store._require().execute(sql)
    assert store.audit_log() == before


def test_tampering_by_someone_holding_the_key_shows_in_the_check(store):
    fill(store, "AUDITmarker")
    conn = store._require()
    assert store.integrity_check().ok
    conn.execute("DROP TRIGGER audit_no_update")
    conn.execute("UPDATE audit SET client_id = 99 WHERE id = 2")
    assert any("audit row 2 was altered" in p for p in store.integrity_check().problems)
    conn.execute("DROP TRIGGER audit_no_delete")
    last = conn.execute("SELECT max(id) FROM audit").fetchone()[0]
    conn.execute("DELETE FROM audit WHERE id = ?", (last,))
    assert any(f"audit row {last} is missing" in p for p in store.integrity_check().problems)


# ---- 6 and 7. specific errors, and types checked at the edge ------------------------------


def test_a_key_file_of_random_bytes_is_reported_as_damaged(store_path):
    store_path.with_name("store.db.keys").write_bytes(random.Random(1).randbytes(300))
    with pytest.raises(KeyFileDamaged, match="damaged .*restore it") as error:
        Store.open(store_path, PASSPHRASE)
    assert "UnicodeDecodeError" not in str(error.value)


def test_a_folder_at_the_store_path_gets_its_own_message(tmp_path):
    (tmp_path / "store.db").mkdir()
    for attempt in (
        lambda: Store.open(tmp_path / "store.db", PASSPHRASE),
        lambda: Store.create(tmp_path / "store.db", PASSPHRASE, KdfParams.fast()),
    ):
        with pytest.raises(StoreError, match="is a folder"):
            attempt()


@pytest.mark.parametrize("bad", [None, b"bytes", "lone \ud800 surrogate", 12])
def test_bad_values_are_refused_at_the_edge_with_their_own_error(store, bad):
    session = store.start_session(store.add_client("C-EDGE").id)
    with pytest.raises(InvalidInput, match="nothing was saved|must be"):
        store.append_utterance(session.id, "client", bad)
    with pytest.raises(InvalidInput):
        store.add_client(bad)
    assert [c.code for c in store.list_clients()] == ["C-EDGE"]


def test_a_passphrase_with_a_lone_surrogate_is_refused_clearly(tmp_path):
    with pytest.raises(InvalidInput, match="not valid text"):
        Store.create(tmp_path / "store.db", "passphrase \udc80", KdfParams.fast())


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_FSIZE and SIGXFSZ are POSIX")
@pytest.mark.parametrize("operation", ["backup", "rekey"])
def test_a_full_disk_during_backup_or_rekey_says_so(store_path, operation, tmp_path):
    with Store.open(store_path, PASSPHRASE) as store:
        session = store.start_session(store.add_client("C-BIG").id)
        store.set_note(session.id, "x" * 600_000)  # a copy of the store needs ~650 KB
    script = (
        "import json, resource, signal, sys\n"
        "from therapist_app.core.store import Store, StoreError\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "store = Store.open(sys.argv[1], 'correct horse battery')\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, 300_000))\n"
        "try:\n"
        f"    store.{'backup(sys.argv[2], ' if operation == 'backup' else 'rekey('}"
        "'correct horse battery')\n"
        "except StoreError as error:\n"
        "    print(json.dumps([type(error).__name__, str(error)]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(store_path), str(tmp_path / "bk.db")],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(faults.Path(__file__).parents[3])},
    )
    name, message = json.loads(done.stdout.strip().splitlines()[-1])
    # A file-size limit fails writes with EFBIG, which SQLite reports as an I/O error;
    # a full filesystem gives SQLITE_FULL (test_crash_and_disk_full covers that one).
    assert name in ("StorageFull", "StorageFailure") and "disk may be full" in message
    assert "nothing else changed" in message.lower() and "database error" not in message
    assert not [p for p in tmp_path.iterdir() if ".partial" in p.name or ".rekey" in p.name]
    with Store.open(store_path, PASSPHRASE) as store:
        assert [c.code for c in store.list_clients()] == ["C-BIG"]


# ---- 8. smaller ------------------------------------------------------------------------


def test_store_files_are_never_readable_by_others_even_for_a_moment(tmp_path, monkeypatch):
    """With chmod disabled, only files created 0600 from the start stay private."""
    monkeypatch.setattr(os, "chmod", lambda *args, **kwargs: None)
    old = os.umask(0)
    try:
        with Store.create(tmp_path / "store.db", PASSPHRASE, KdfParams.fast()) as store:
            fill(store, "MODEmarker")
            store.backup(tmp_path / "bk.db", PASSPHRASE)
            store.rekey(PASSPHRASE)
        restore(tmp_path / "bk.db", PASSPHRASE, tmp_path / "restored.db").close()
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()}
    assert all(mode == 0o600 for mode in modes.values()), modes


def test_leftovers_of_crashed_operations_are_removed_at_the_next_open(store_path):
    strays = [
        ".rekey",
        ".rekey-journal",
        ".rekey-wal",
        ".keys.tmp",
        ".creating",
        ".restore",
        ".restore.keys",
        ".restore-source",
    ]
    for suffix in strays:
        store_path.with_name(f"store.db{suffix}").write_bytes(b"left by a crash")
    Store.open(store_path, PASSPHRASE).close()
    assert sorted(p.name for p in store_path.parent.iterdir()) == ["store.db", "store.db.keys", "store.db.lock"]


def test_a_symlinked_path_shares_the_instance_lock(store_path):
    link = store_path.with_name("link.db")
    link.symlink_to(store_path)
    with Store.open(store_path, PASSPHRASE):
        with pytest.raises(StoreError, match="open in another instance"):
            Store.open(link, PASSPHRASE)
