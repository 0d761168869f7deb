"""`Store`: the unlocked encrypted store, its lifecycle and its key operations.

    with Store.create(path, passphrase) as store:      # first run
        client = store.add_client("C-017")
    with Store.open(path, passphrase) as store:        # later runs
        ...

Files beside the database `<db>`: `<db>.keys` (the wrapped data key, see keys.py),
`<db>.lock` (held while unlocked, see lockfile.py) and SQLite's `<db>-wal`/`<db>-shm`.
Domain methods (clients, sessions, utterances...) live in `domain.StoreRecords`.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import sqlcipher3

from therapist_app.core.policy import Policy
from therapist_app.core.store import connection, keys
from therapist_app.core.store.backup import (
    SIDE_SUFFIXES,
    export_encrypted,
    set_aside,
    side_path,
    write_backup,
)
from therapist_app.core.store.domain import StoreRecords
from therapist_app.core.store.errors import (
    DatabaseCorrupt,
    KeychainUnavailable,
    StoreError,
    StoreExists,
    StoreLocked,
)
from therapist_app.core.store.export import export_training
from therapist_app.core.store.keys import KdfParams, KeyFile
from therapist_app.core.store.lockfile import StoreLock
from therapist_app.core.store.records import IntegrityReport
from therapist_app.core.store.schema import migrate, now

log = logging.getLogger(__name__)

class Store(StoreRecords):
    """An unlocked store. Build it with `create`, `open` or `restore`, never directly.

    Not thread-safe: use it from one thread (the GUI's worker) at a time.
    """

    def __init__(self, path: Path, conn: sqlcipher3.Connection, data_key: bytearray,
                 key_file: KeyFile, lock: StoreLock) -> None:
        self.path = path
        self._conn: sqlcipher3.Connection | None = conn
        self._data_key = data_key
        self._key_file = key_file
        self._lock = lock
        self._depth = 0
        self._on_lock: list[Callable[[], None]] = []
        #: Set when the keychain was asked for but could not be used.
        self.keychain_message: str | None = None

    # ---- creating and opening ----------------------------------------------------

    @classmethod
    def create(cls, path: str | os.PathLike, passphrase: str, kdf: KdfParams = KdfParams(), *,
               keychain: bool = False, profile_name: str | None = None) -> "Store":
        """Create a new store (first run). Refuses to touch an existing file.

        With `keychain=True` the data key is also wrapped by a key kept in the OS
        keychain; without a keychain backend the store is created passphrase-only and
        `keychain_message` says why.
        """
        path = Path(path)
        keys.normalize_passphrase(passphrase)  # fail on a short passphrase before any work
        for existing in (path, keys.key_file_path(path), *(side_path(path, s) for s in SIDE_SUFFIXES)):
            if existing.exists():
                raise StoreExists(f"{existing} already exists; refusing to overwrite it")
        store_id = keys.new_store_id()
        keychain_kek, keychain_message = _keychain_kek(store_id, keychain)
        data_key = keys.new_data_key()
        key_file = keys.seal(data_key, passphrase, kdf, store_id=store_id,
                             keychain_kek=keychain_kek)
        lock = StoreLock(path)
        store = None
        try:
            lock.acquire()
            store = cls(path, connection.create_new(path, data_key), data_key, key_file, lock)
            store.keychain_message = keychain_message
            migrate(store._conn)
            with store.atomic():
                store._conn.execute(
                    "INSERT INTO profile(id, display_name, created_at) VALUES (1, ?, ?)",
                    (profile_name, now()))
                store._audit("store_created")
            keys.write_key_file(path, key_file)
        except BaseException:
            # Leave nothing of the half-made store: files, lock, keychain entry.
            if store is not None:
                store.lock()
                for leftover in (path, *(side_path(path, s) for s in SIDE_SUFFIXES)):
                    leftover.unlink(missing_ok=True)
            lock.release()
            if keychain_kek is not None:
                keys.forget_keychain(store_id)
            raise
        log.info("created store %s", store._key_file.store_id)
        return store

    @classmethod
    def open(cls, path: str | os.PathLike, passphrase: str | None = None) -> "Store":
        """Unlock an existing store with the passphrase, or with the OS keychain when
        `passphrase` is None.

        Raises WrongPassphrase (nothing on disk changes), KeychainUnavailable,
        DatabaseInUse (another instance holds it), NotEncrypted, DatabaseCorrupt
        (a page fails authentication: the file is left as it was; offer a restore),
        KeyFileMissing.
        """
        path = Path(path)
        connection.check_file_before_open(path)
        key_file = keys.read_key_file(path)
        if passphrase is None:
            candidates = keys.unwrap_keys(
                key_file, keys.keychain_kek(key_file.store_id, create=False), "keychain")
        else:
            candidates = keys.unwrap_keys(key_file, keys.passphrase_kek(key_file, passphrase),
                                          "passphrase")
        lock = StoreLock(path)
        lock.acquire()
        try:
            generation, data_key, conn = cls._open_with(path, candidates)
            store = cls(path, conn, data_key, key_file, lock)
        except BaseException:
            lock.release()
            raise
        try:
            store._settle_rekey(generation)
            migrate(conn)
        except BaseException:
            store.lock()
            raise
        log.info("opened store %s", key_file.store_id)
        return store

    @staticmethod
    def _open_with(path: Path, candidates: list[tuple[str, bytearray]]
                   ) -> tuple[str, bytearray, sqlcipher3.Connection]:
        first_error: DatabaseCorrupt | None = None
        for generation, data_key in candidates:
            try:
                return generation, data_key, connection.open_existing(path, data_key)
            except DatabaseCorrupt as error:
                keys.wipe(data_key)
                first_error = first_error or error
        raise first_error

    def _settle_rekey(self, generation: str) -> None:
        """Finish or discard a rekey that a crash interrupted (see `rekey`)."""
        if not self._key_file.pending:
            return
        self._key_file = keys.promoted(self._key_file, generation)
        keys.write_key_file(self.path, self._key_file)
        side_path(self.path, ".rekey").unlink(missing_ok=True)
        log.warning("settled an interrupted rekey of store %s (%s key in use)",
                    self.store_id, generation)

    # ---- lifecycle ---------------------------------------------------------------

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc_info) -> None:
        self.lock()

    @property
    def locked(self) -> bool:
        return self._conn is None

    @property
    def store_id(self) -> str:
        return self._key_file.store_id

    def on_lock(self, callback: Callable[[], None]) -> None:
        """Register a callback run after `lock()` (the GUI clears its views there)."""
        self._on_lock.append(callback)

    def lock(self) -> None:
        """Close the connection, wipe the data key and release the instance lock.

        The auto-lock hook and `close()` both end here; a locked store must be opened
        again with `Store.open`. Safe to call twice.
        """
        if self._conn is None:
            return
        try:
            self._conn.close()
        finally:
            self._drop()

    def _drop(self) -> None:
        self._conn = None
        keys.wipe(self._data_key)
        self._lock.release()
        log.info("locked store %s", self.store_id)
        for callback in self._on_lock:
            callback()

    close = lock

    def _require(self) -> sqlcipher3.Connection:
        if self._conn is None:
            raise StoreLocked("the store is locked; unlock it with the passphrase")
        return self._conn

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """A transaction; nested calls become savepoints that roll back on their own.

        SQLite errors leave as the store's exceptions (StorageFull, DatabaseCorrupt...)
        after the rollback, so earlier data is never affected by a failed change.
        """
        conn = self._require()
        depth = self._depth
        conn.execute("BEGIN IMMEDIATE" if depth == 0 else f"SAVEPOINT sp{depth}")
        self._depth += 1
        try:
            yield
            conn.execute("COMMIT" if depth == 0 else f"RELEASE sp{depth}")
        except BaseException as error:
            if depth == 0:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            else:
                conn.execute(f"ROLLBACK TO sp{depth}")
                conn.execute(f"RELEASE sp{depth}")
            if isinstance(error, sqlcipher3.Error):
                raise connection.translate(error, self.path) from None
            raise
        finally:
            self._depth = depth

    # ---- keys --------------------------------------------------------------------

    def _rewrap(self, passphrase: str, *, keychain: bool, kdf: KdfParams | None = None,
                pending: bytearray | None = None) -> None:
        """Write a fresh key file wrapping the data key (and a pending key, if given)."""
        keychain_kek, self.keychain_message = _keychain_kek(self.store_id, keychain)
        key_file = keys.seal(self._data_key, passphrase, kdf or self._key_file.kdf,
                             store_id=self.store_id, keychain_kek=keychain_kek, pending=pending)
        keys.write_key_file(self.path, key_file)
        self._key_file = key_file

    @property
    def uses_keychain(self) -> bool:
        return "keychain" in self._key_file.wraps

    def _check_passphrase(self, passphrase: str) -> None:
        self._require()
        current = keys.unwrap_keys(self._key_file, keys.passphrase_kek(self._key_file, passphrase),
                                   "passphrase")[0][1]
        same = current == self._data_key
        keys.wipe(current)
        if not same:
            raise StoreError("the key file does not match the open database")

    def change_passphrase(self, old: str, new: str, kdf: KdfParams | None = None) -> None:
        """Rewrap the data key under a new passphrase (and optionally new KDF costs).
        The database itself is not rewritten; the key file is replaced atomically."""
        keys.normalize_passphrase(new)
        self._check_passphrase(old)
        self._rewrap(new, keychain=self.uses_keychain, kdf=kdf)
        with self.atomic():
            self._audit("passphrase_changed")

    def set_keychain(self, passphrase: str, enabled: bool) -> None:
        """Add or remove the OS-keychain wrap (clinic policy decides whether it is offered)."""
        self._check_passphrase(passphrase)
        self._rewrap(passphrase, keychain=enabled)
        if not enabled:
            keys.forget_keychain(self.store_id)
        with self.atomic():
            self._audit("keychain_changed", count=int(self.uses_keychain))

    def rekey(self, passphrase: str) -> None:
        """Re-encrypt the whole database under a new random data key, crash-safely.

        1. export into `<db>.rekey` under the new key and verify it;
        2. key file: current key plus the new one in the `pending` slot;
        3. close, and rename `<db>.rekey` over the database;
        4. key file: the new key becomes current.
        A crash after step 2 or 3 is settled by the next `open`, which tries both keys.
        """
        self._check_passphrase(passphrase)
        conn = self._require()
        new_key = keys.new_data_key()
        staged = side_path(self.path, ".rekey")
        staged.unlink(missing_ok=True)
        export_encrypted(conn, self.path, staged, new_key)
        self._rewrap(passphrase, keychain=self.uses_keychain, pending=new_key)
        conn.close()
        try:
            os.replace(staged, self.path)
            keys.fsync_dir(self.path.parent)
            keys.wipe(self._data_key)
            self._data_key = new_key
            self._key_file = keys.promoted(self._key_file, "pending")
            keys.write_key_file(self.path, self._key_file)
            self._conn = connection.open_existing(self.path, new_key)
        except BaseException:
            # Locked, as after a crash: the next open settles the key file.
            keys.wipe(new_key)
            self._drop()
            raise
        with self.atomic():
            self._audit("rekey")

    # ---- copies, checks, erasure ----------------------------------------------------

    def backup(self, destination: str | os.PathLike, passphrase: str,
               kdf: KdfParams | None = None) -> None:
        """Write an encrypted backup: `destination` plus `destination.keys`, with its own
        random data key wrapped by `passphrase` (the store's or a separate backup one).

        Never writes over an existing file, and refuses a plaintext SQLite destination
        outright; the copy is verified page by page before it takes its final name.
        """
        write_backup(self._require(), self.path, Path(destination), passphrase,
                     kdf or self._key_file.kdf)
        with self.atomic():
            self._audit("backup")

    def export_training(self, destination: str | os.PathLike, policy: Policy) -> int:
        """De-identified JSONL of every decision for training (see export.py); refused
        with ExportRefused when `policy.export_allowed` is false. Audited."""
        return export_training(self, destination, policy)

    def integrity_check(self) -> IntegrityReport:
        """On demand: checkpoint the WAL, then check every page's HMAC
        (cipher_integrity_check) and the b-tree structure (integrity_check)."""
        problems = connection.cipher_integrity_check(self._require(), self.path)
        return IntegrityReport(ok=not problems, problems=tuple(problems))

    def compact(self) -> None:
        """Checkpoint, VACUUM and checkpoint again, leaving no freed page content in the
        database, -wal or -shm files (erasure relies on this)."""
        conn = self._require()
        connection.checkpoint(conn, self.path)
        try:
            conn.execute("VACUUM")
        except sqlcipher3.Error as error:
            raise connection.translate(error, self.path) from None
        connection.checkpoint(conn, self.path)


def _keychain_kek(store_id: str, wanted: bool) -> tuple[bytes | None, str | None]:
    """The keychain wrapping key, or None and the reason when it cannot be used: a
    missing keyring backend degrades to passphrase-only rather than failing."""
    if not wanted:
        return None, None
    try:
        return keys.keychain_kek(store_id, create=True), None
    except KeychainUnavailable as error:
        log.warning("keychain not used for store %s: %s", store_id, error)
        return None, str(error)


def restore(backup_path: str | os.PathLike, passphrase: str, target: str | os.PathLike, *,
            replace: bool = False) -> Store:
    """Restore a backup made by `Store.backup` into `target` and open it.

    The backup is verified first; the restored store gets a fresh data key wrapped by
    the same passphrase. An existing target (a damaged store, say) is only replaced with
    `replace=True`, and even then its files are renamed aside, never deleted.
    """
    backup_path, target = Path(backup_path), Path(target)
    occupied = target.exists() or keys.key_file_path(target).exists()
    if occupied and not replace:
        raise StoreExists(f"{target} exists; pass replace=True (--replace) to set it aside")
    staged = side_path(target, ".restore")
    staged.unlink(missing_ok=True)
    new_key = keys.new_data_key()
    try:
        with Store.open(backup_path, passphrase) as source:
            export_encrypted(source._require(), backup_path, staged, new_key)
            kdf = source._key_file.kdf
        if occupied:
            guard = StoreLock(target)
            guard.acquire()  # DatabaseInUse while the damaged store is still open somewhere
            try:
                set_aside(target)
            finally:
                guard.release()
        keys.write_key_file(target, keys.seal(new_key, passphrase, kdf))
        os.replace(staged, target)
        keys.fsync_dir(target.parent)
    finally:
        keys.wipe(new_key)
        staged.unlink(missing_ok=True)
    store = Store.open(target, passphrase)
    with store.atomic():
        store._audit("restore")
    return store
