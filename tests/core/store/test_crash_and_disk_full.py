"""Faults during writes: SIGKILL mid-commit, and a disk that fills up."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from tests.core.store.helpers import PASSPHRASE, run_proc
from therapist_app.core.store import StorageFailure, StorageFull, Store

ROUNDS = 20


def _committed(store: Store, session_id: int) -> set[int]:
    """Numbers of the committed transactions; each must be whole (utterance + suggestion)."""
    transcript = store.session_transcript(session_id)
    numbers = {int(u.text.split()[1]) for u in transcript.utterances}
    assert {int(s.text.split()[1]) for s in transcript.suggestions} == numbers
    return numbers


def test_sigkill_during_commits_loses_no_committed_transaction(store):
    session_id = store.start_session(store.add_client("C-crash").id).id
    store.lock()
    rng = random.Random(20)
    printed: set[int] = set()
    for round_number in range(ROUNDS):
        proc = run_proc(
            "writer.py",
            str(store.path),
            str(session_id),
            str(round_number * 10**6),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        for _ in range(rng.randint(1, 40)):
            printed.add(int(proc.stdout.readline()))
        time.sleep(rng.uniform(0, 0.02))
        os.kill(proc.pid, signal.SIGKILL)
        tail, _ = proc.communicate(timeout=30)
        printed.update(int(line) for line in tail.split())
        assert proc.returncode == -signal.SIGKILL
        with Store.open(store.path, PASSPHRASE) as reopened:
            committed = _committed(reopened, session_id)
            assert printed <= committed, sorted(printed - committed)[:5]
            assert reopened.integrity_check().ok
    assert len(printed) >= ROUNDS


def _write_until_full(store: Store, session_id: int) -> tuple[Exception, int]:
    """Commit transactions of five big rows until one fails; returns the error and
    how many committed."""
    big = "x" * 200_000
    for committed in range(200):
        try:
            with store.atomic():
                for _ in range(5):
                    store.append_utterance(session_id, "client", big)
        except (StorageFull, StorageFailure) as error:
            return error, committed
    pytest.fail("the size limit was never reached")


def _check_rollback(store: Store, session_id: int, committed: int, message: str) -> None:
    assert "not saved" in message and "earlier data is intact" in message
    utterances = store.session_transcript(session_id).utterances
    # The first row, then only whole committed transactions: the failed one left nothing.
    assert len(utterances) == 1 + 5 * committed
    assert utterances[0].text == "before the disk filled"


@pytest.fixture
def small_filesystem(tmp_path):
    """A 3 MiB tmpfs, where the machine lets us mount one (root, no sandbox)."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    if os.geteuid() != 0 or sys.platform != "linux":
        pytest.skip("mounting a size-limited tmpfs needs root on Linux")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount_point)], capture_output=True)
    if done.returncode != 0:
        pytest.skip("this machine does not allow mounting a tmpfs; the RLIMIT_FSIZE test covers it")
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=True)


def test_disk_full_on_a_small_filesystem_rolls_back(template, small_filesystem):
    from tests.core.store.helpers import copy_store

    path = copy_store(template, small_filesystem / "store.db")
    filler = small_filesystem / "filler"
    filler.write_bytes(bytes(1536 * 1024))
    with Store.open(path, PASSPHRASE) as store:
        session_id = store.start_session(store.add_client("C-full").id).id
        store.append_utterance(session_id, "client", "before the disk filled")
        error, committed = _write_until_full(store, session_id)
        assert isinstance(error, StorageFull)
        assert committed >= 1
        _check_rollback(store, session_id, committed, str(error))
        # Checkpointing needs room too: a clear StorageFull, not a crash.
        with pytest.raises(StorageFull):
            store.integrity_check()
        # So does a backup: refused, and nothing half-written is left behind.
        before = sorted(p.name for p in small_filesystem.iterdir())
        with pytest.raises((StorageFull, StorageFailure)):
            store.backup(small_filesystem / "backup.db", PASSPHRASE)
        assert sorted(p.name for p in small_filesystem.iterdir()) == before
    filler.unlink()  # the user frees some space
    with Store.open(path, PASSPHRASE) as store:
        _check_rollback(store, session_id, committed, str(error))
        assert store.integrity_check().ok


def test_disk_full_injected_with_a_file_size_limit_rolls_back(store):
    """RLIMIT_FSIZE in a child: writes past the limit fail with EFBIG, as on a full disk."""
    session_id = store.start_session(store.add_client("C-limit").id).id
    store.append_utterance(session_id, "client", "before the disk filled")
    store.lock()
    proc = run_proc(
        "fill_until_limit.py",
        str(store.path),
        str(session_id),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    kind, committed, message = out.strip().split(":", 2)
    # SQLite reports EFBIG as a write error (ENOSPC, above, as a full disk).
    assert kind == "StorageFailure", message
    assert int(committed) >= 1
    with Store.open(store.path, PASSPHRASE) as reopened:
        _check_rollback(reopened, session_id, int(committed), message)
        assert reopened.integrity_check().ok
