"""The store's fault campaign: each fault, what the user must see after it, and a verdict.

Used by tests/core/store/test_faults.py (a few runs of each kind) and by
bench/store_faults.py (`--runs N` for the long campaign). A fault is *survived* when no
acknowledged data is lost and the user gets either a working store or a specific error
that says what to do; it is *silent* when the store opens as if healthy while data is
missing, or a crash leaves the user stranded with no way on but a specialist.
"""

from __future__ import annotations

import random
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.core.store.helpers import PASSPHRASE, copy_store, decrypted_pages, fill, run_proc
from therapist_app.core.store import (
    KdfParams,
    Store,
    StoreError,
    WalDamaged,
    keys,
)

OPERATIONS = ("create", "commit", "rekey", "backup", "restore", "erase")
ERASED = "ERASEmarker"


@dataclass(frozen=True)
class Outcome:
    kind: str
    survived: bool
    lost: int = 0
    silent: bool = False
    detail: str = ""


def data_key(path: Path) -> bytearray:
    key_file = keys.read_key_file(path)
    return keys.unwrap_keys(key_file, keys.passphrase_kek(key_file, PASSPHRASE), "passphrase")[0][1]


def prepare(operation: str, folder: Path, template: Path) -> None:
    """The store (and backup) each operation starts from."""
    path = folder / "store.db"
    if operation == "create":
        return
    copy_store(template, path)
    with Store.open(path, PASSPHRASE) as store:
        if operation == "commit":
            store.start_session(store.add_client("C-COMMIT").id)
        elif operation == "restore":
            fill(store, "NEWmarker")
            store.backup(folder / "bk.db", PASSPHRASE)
            store.erase_client(next(c.id for c in store.list_clients()))
            store.add_client("C-OLD")
        else:
            fill(store, "KEEPmarker")
            if operation == "erase":
                fill(store, ERASED)
                store._require().execute("UPDATE clients SET code = 'C-ERASE' WHERE code = ?", (f"C-{ERASED}",))


def run_operation(operation: str, folder: Path, kill_at: int) -> tuple[int, list[str]]:
    """Run `operation` in a child killed at step `kill_at`; (return code, its "ok" lines)."""
    proc = run_proc(
        "fault_op.py", str(folder), operation, str(kill_at), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    out, err = proc.communicate(timeout=120)
    if proc.returncode not in (0, -9):
        raise AssertionError(f"{operation} failed on its own (not killed): {err[-2000:]}")
    return proc.returncode, out.splitlines()


def count_steps(operation: str, folder: Path, template: Path) -> int:
    prepare(operation, folder, template)
    code, lines = run_operation(operation, folder, 0)
    assert code == 0
    return int(lines[-1].split()[1])


def check_after_kill(operation: str, folder: Path, acknowledged: list[str]) -> Outcome:
    """Open the store as the user next would, and judge what the kill left."""
    kind = f"kill-{operation}"
    path = folder / "store.db"
    if operation == "create":
        try:
            Store.open(path, PASSPHRASE).close()
        except StoreError as opening:
            if acknowledged:
                return Outcome(kind, False, silent=True, detail=f"created, then: {opening}")
            try:  # no store yet: creating again must work, not say "exists"
                Store.create(path, PASSPHRASE, KdfParams.fast()).close()
            except StoreError as creating:
                return Outcome(
                    kind, False, silent=True, detail=f"stranded: open says {opening}; create says {creating}"
                )
        return Outcome(kind, True)
    try:
        store = Store.open(path, PASSPHRASE)
    except StoreError as error:
        return Outcome(kind, False, detail=f"does not open: {error}")
    with store:
        codes = {c.code for c in store.list_clients()}
        leftovers = sorted(
            p.name
            for p in folder.iterdir()
            if any(s in p.name for s in (".partial", ".creating", ".restore", ".rekey", ".tmp", ".publish"))
        )
        if leftovers:
            return Outcome(kind, False, detail=f"leftover files {leftovers}")
        if operation == "commit":
            session = store.sessions(next(c.id for c in store.list_clients()))[0]
            said = {u.text for u in store.session_transcript(session.id).utterances}
            lost = sum(f"commit {line.split()[1]}" not in said for line in acknowledged)
            return Outcome(kind, lost == 0, lost, silent=lost > 0)
        if operation == "restore":
            whole = codes in ({"C-OLD"}, {"C-NEWmarker"})
            return Outcome(kind, whole, detail="" if whole else f"mixed or empty: {codes}")
        if "C-KEEPmarker" not in codes:
            return Outcome(kind, False, lost=1, silent=True, detail="kept client lost")
        if operation == "backup" and (folder / "bk.db").exists():
            with Store.open(folder / "bk.db", PASSPHRASE) as copy:
                if "C-KEEPmarker" not in {c.code for c in copy.list_clients()}:
                    return Outcome(kind, False, detail="backup incomplete")
        if operation == "erase" and "C-ERASE" not in codes:
            key = data_key(path)
            for name in ("store.db", "store.db-wal"):
                data = (folder / name).read_bytes() if (folder / name).exists() else b""
                if ERASED.encode() in decrypted_pages(data, key, wal=name.endswith("-wal")):
                    return Outcome(kind, False, silent=True, detail=f"erased text survives in {name}")
    return Outcome(kind, True)


def kill_run(operation: str, folder: Path, template: Path, kill_at: int) -> Outcome:
    prepare(operation, folder, template)
    _, lines = run_operation(operation, folder, kill_at)
    return check_after_kill(operation, folder, [line for line in lines if line.startswith("ok")])


def wal_flip_run(folder: Path, template: Path, rng: random.Random) -> Outcome:
    """A crash leaves 30 commits in the log; one bit of one frame flips on disk."""
    path = copy_store(template, folder / "store.db")
    store = Store.open(path, PASSPHRASE)
    store._require().execute("PRAGMA wal_autocheckpoint = 0")
    session = store.start_session(store.add_client("C-WAL").id)
    for number in range(30):
        store.append_utterance(session.id, "client", f"commit {number}")
    crashed = folder / "crashed"
    crashed.mkdir()
    for name in ("store.db", "store.db-wal", "store.db.keys"):
        (crashed / name).write_bytes((folder / name).read_bytes())
    store.close()
    wal_file = crashed / "store.db-wal"
    data = bytearray(wal_file.read_bytes())
    offset = rng.randrange(32, len(data))
    data[offset] ^= 1 << rng.randrange(8)
    wal_file.write_bytes(data)
    try:
        reopened = Store.open(crashed / "store.db", PASSPHRASE)
    except WalDamaged:
        with Store.open(crashed / "store.db", PASSPHRASE, salvage_wal=True) as salvaged:
            kept = list(crashed.glob("store.db-wal.damaged-*"))
            ok = len(kept) == 1 and kept[0].read_bytes() == bytes(data) and salvaged.notice
        return Outcome("wal-bitflip", bool(ok), detail="refused, then salvaged")
    except StoreError as error:
        return Outcome("wal-bitflip", True, detail=f"refused: {error}")
    with reopened:
        said = reopened.session_transcript(session.id).utterances
        lost = 30 - sum(u.text.startswith("commit ") for u in said)
    return Outcome("wal-bitflip", lost == 0, lost, silent=lost > 0, detail=f"offset {offset}")


def damaged_file_run(folder: Path, template: Path, rng: random.Random) -> Outcome:
    """One flipped bit in the database or key file: refused with a specific error, or
    (a bit in unused space) opened with every row intact."""
    path = copy_store(template, folder / "store.db")
    with Store.open(path, PASSPHRASE) as store:
        fill(store, "FLIPmarker")
    target = rng.choice([path, keys.key_file_path(path)])
    data = bytearray(target.read_bytes())
    data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    target.write_bytes(data)
    try:
        with Store.open(path, PASSPHRASE) as store:
            intact = "C-FLIPmarker" in {c.code for c in store.list_clients()}
            report = store.integrity_check()
    except StoreError as error:
        generic = str(error).startswith("database error")
        return Outcome("damaged-file", not generic, detail=f"{type(error).__name__}")
    silent = not intact or not report.ok
    return Outcome("damaged-file", not silent, silent=silent)
