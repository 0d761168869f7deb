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
import shutil
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Callable, Iterator

import sqlcipher3

from therapist_app.core.policy import Policy
from therapist_app.core.store import connection, keys, publish, wal
from therapist_app.core.store.backup import (
    SIDE_SUFFIXES,
    abandon_backup,
    export_encrypted,
    side_path,
    write_backup,
)
from therapist_app.core.store.domain import StoreRecords
from therapist_app.core.store.errors import (
    DatabaseCorrupt,
    KeychainUnavailable,
    KeyFileDamaged,
    KeyFileMissing,
    StorageFailure,
    StorageFull,
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

    def __init__(
        self, path: Path, conn: sqlcipher3.Connection, data_key: bytearray, key_file: KeyFile, lock: StoreLock
    ) -> None:
        self.path = path
        self._conn: sqlcipher3.Connection | None = conn
        self._data_key = data_key
        self._key_file = key_file
        self._lock = lock
        self._depth = 0
        self._on_lock: list[Callable[[], None]] = []
        #: Set when the keychain was asked for but could not be used.
        self.keychain_message: str | None = None
        #: What opening had to repair, in words for the user (a salvaged log...).
        self.notice: str | None = None
        #: An erasure's compaction could not finish (a full disk): deleted text may
        #: remain in free pages until it does; every open tries again.
        self.compaction_pending = False

    # ---- creating and opening ----------------------------------------------------

    @classmethod
    def create(
        cls,
        path: str | os.PathLike,
        passphrase: str,
        kdf: KdfParams = KdfParams(),
        *,
        keychain: bool = False,
        profile_name: str | None = None,
    ) -> "Store":
        """Create a new store (first run). Refuses to touch an existing file.

        The store is built under staging names and published last (publish.py), so a
        crash at any point leaves either no store (the next create starts clean) or a
        whole one. With `keychain=True` the data key is also wrapped by a key kept in
        the OS keychain; without a keychain backend the store is created passphrase-only
        and `keychain_message` says why.
        """
        path = _real_path(path)
        keys.normalize_passphrase(passphrase)  # fail on a short passphrase before any work
        if publish.journal_path(path).exists():
            _settle_under_lock(path)  # an earlier create got as far as publishing
        _refuse_existing(path)
        lock = StoreLock(path)
        lock.acquire()
        keychain_kek = store_id = store = None
        data_key = keys.new_data_key()
        try:
            _settle_and_tidy(path)
            _refuse_existing(path)  # again, now that no other process can be creating it
            store_id = keys.new_store_id()
            keychain_kek, keychain_message = _keychain_kek(store_id, keychain)
            key_file = keys.seal(data_key, passphrase, kdf, store_id=store_id, keychain_kek=keychain_kek)
            staged = side_path(path, ".creating")
            store = cls(staged, connection.create_new(staged, data_key), data_key, key_file, lock)
            migrate(store._conn)
            with store.atomic():
                store._conn.execute(
                    "INSERT INTO profile(id, display_name, created_at) VALUES (1, ?, ?)", (profile_name, now())
                )
                store._audit("store_created")
            store._conn.close()  # the last connection's close checkpoints and removes the WAL
            store._conn = None
            keys.write_key_file(staged, key_file)
            publish.publish(path, [(keys.key_file_path(staged), keys.key_file_path(path)), (staged, path)])
            store.path = path
            store._conn = connection.open_existing(path, data_key)
        except BaseException:
            # Leave nothing of the half-made store: staged files, keychain entry, lock.
            if store is not None and store._conn is not None:
                store._conn.close()
            publish.remove_leftovers(path)
            lock.release()
            keys.wipe(data_key)
            if keychain_kek is not None:
                keys.forget_keychain(store_id)
            raise
        store.keychain_message = keychain_message
        log.info("created store %s", store._key_file.store_id)
        return store

    @classmethod
    def open(cls, path: str | os.PathLike, passphrase: str | None = None, *, salvage_wal: bool = False) -> "Store":
        """Unlock an existing store with the passphrase, or with the OS keychain when
        `passphrase` is None.

        Raises WrongPassphrase (nothing on disk changes), KeychainUnavailable,
        DatabaseInUse (another instance holds it), NotEncrypted, DatabaseCorrupt
        (a page fails authentication: the file is left as it was; offer a restore),
        KeyFileMissing, KeyFileDamaged, WalDamaged (intact commits follow a damaged
        frame of the log; `salvage_wal=True` keeps the log aside, byte for byte, and
        opens the store with the commits before the damage).
        """
        path = _real_path(path)
        if publish.journal_path(path).exists():
            _settle_under_lock(path)  # a create or restore a crash interrupted
        connection.check_file_before_open(path)
        if not salvage_wal:
            connection.check_wal(path)  # before the lock file: a refusal changes nothing
        key_file = keys.read_key_file(path)
        if passphrase is None:
            candidates = keys.unwrap_keys(key_file, keys.keychain_kek(key_file.store_id, create=False), "keychain")
        else:
            candidates = keys.unwrap_keys(key_file, keys.passphrase_kek(key_file, passphrase), "passphrase")
        lock = StoreLock(path)
        lock.acquire()
        try:
            kept_wal = _salvage_wal(path) if salvage_wal else None
            generation, data_key, conn = cls._open_with(path, candidates)
            store = cls(path, conn, data_key, key_file, lock)
        except BaseException:
            lock.release()
            raise
        try:
            store._settle_rekey(generation)
            _settle_and_tidy(path)
            migrate(conn)
            store._finish_maintenance()
        except BaseException:
            store.lock()
            raise
        if kept_wal is not None:
            store.notice = (
                f"The damaged log was kept as {kept_wal.name}; the changes "
                "saved before the damage were kept, later ones could not be read."
            )
        log.info("opened store %s", key_file.store_id)
        return store

    @staticmethod
    def _open_with(path: Path, candidates: list[tuple[str, bytearray]]) -> tuple[str, bytearray, sqlcipher3.Connection]:
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
        log.warning("settled an interrupted rekey of store %s (%s key in use)", self.store_id, generation)

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

    def _rewrap(
        self, passphrase: str, *, keychain: bool, kdf: KdfParams | None = None, pending: bytearray | None = None
    ) -> None:
        """Write a fresh key file wrapping the data key (and a pending key, if given)."""
        keychain_kek, self.keychain_message = _keychain_kek(self.store_id, keychain)
        key_file = keys.seal(
            self._data_key,
            passphrase,
            kdf or self._key_file.kdf,
            store_id=self.store_id,
            keychain_kek=keychain_kek,
            pending=pending,
        )
        keys.write_key_file(self.path, key_file)
        self._key_file = key_file

    @property
    def uses_keychain(self) -> bool:
        return "keychain" in self._key_file.wraps

    def verify_passphrase(self, passphrase: str) -> None:
        """Raise WrongPassphrase unless `passphrase` unwraps this store's key (runs the
        KDF: call it off the GUI thread)."""
        self._require()
        current = keys.unwrap_keys(self._key_file, keys.passphrase_kek(self._key_file, passphrase), "passphrase")[0][1]
        same = current == self._data_key
        keys.wipe(current)
        if not same:
            raise StoreError("the key file does not match the open database")

    def change_passphrase(self, old: str, new: str, kdf: KdfParams | None = None) -> None:
        """Rewrap the data key under a new passphrase (and optionally new KDF costs).
        The database itself is not rewritten; the key file is replaced atomically."""
        keys.normalize_passphrase(new)
        self.verify_passphrase(old)
        self._rewrap(new, keychain=self.uses_keychain, kdf=kdf)
        with self.atomic():
            self._audit("passphrase_changed")

    def set_keychain(self, passphrase: str, enabled: bool) -> None:
        """Add or remove the OS-keychain wrap (clinic policy decides whether it is offered)."""
        self.verify_passphrase(passphrase)
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
        self.verify_passphrase(passphrase)
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

    def backup(self, destination: str | os.PathLike, passphrase: str, kdf: KdfParams | None = None) -> None:
        """Write an encrypted backup: `destination` plus `destination.keys`, with its own
        random data key wrapped by `passphrase` (the store's or a separate backup one).

        Never writes over an existing file, and refuses a plaintext SQLite destination
        outright; the copy is verified page by page before it takes its final name.
        """
        destination = _real_path(destination)
        detail = (str(destination),)
        # Recorded first, so a crash mid-backup has its staged files removed (or its
        # last renames finished) at the next open.
        with self.atomic():
            self._require().execute(
                "INSERT OR REPLACE INTO maintenance(task, detail, since) VALUES ('backup', ?, ?)", (*detail, now())
            )
        try:
            write_backup(self._require(), self.path, destination, passphrase, kdf or self._key_file.kdf)
        except BaseException:
            with suppress(StoreError):  # on a full disk, the next open removes the row
                with self.atomic():
                    self._require().execute("DELETE FROM maintenance WHERE task = 'backup' AND detail = ?", detail)
            raise
        with self.atomic():
            self._require().execute("DELETE FROM maintenance WHERE task = 'backup' AND detail = ?", detail)
            self._audit("backup")

    def export_training(self, destination: str | os.PathLike, policy: Policy) -> int:
        """De-identified JSONL of every decision for training (see export.py); refused
        with ExportRefused when `policy.export_allowed` is false. Audited."""
        return export_training(self, destination, policy)

    def integrity_check(self) -> IntegrityReport:
        """On demand: checkpoint the WAL, then check every page's HMAC
        (cipher_integrity_check), the b-tree structure (integrity_check) and the audit
        log's hash chain."""
        problems = connection.cipher_integrity_check(self._require(), self.path)
        problems += self._audit_chain_problems()
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
        with self.atomic():
            conn.execute("DELETE FROM maintenance WHERE task = 'compaction'")
        connection.checkpoint(conn, self.path)
        self.compaction_pending = False

    def _finish_compaction(self) -> bool:
        """Compact now; on a full disk or I/O error keep the task recorded (the next
        open tries again) and say so instead of failing the erasure that needed it."""
        try:
            self.compact()
        except (StorageFull, StorageFailure) as error:
            self.compaction_pending = True
            log.warning("compaction of store %s is pending: %s", self.store_id, type(error).__name__)
            return False
        return True

    def _finish_maintenance(self) -> None:
        """At open: complete what a crash or a full disk left unfinished."""
        tasks = self._require().execute("SELECT task, detail FROM maintenance").fetchall()
        for task, detail in tasks:
            if task == "backup":
                abandon_backup(Path(detail))
                with self.atomic():
                    self._require().execute("DELETE FROM maintenance WHERE task = 'backup' AND detail = ?", (detail,))
        if any(task == "compaction" for task, _ in tasks) and self._finish_compaction():
            log.warning("finished the compaction an interrupted erasure left in store %s", self.store_id)


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


def _real_path(path: str | os.PathLike) -> Path:
    """The path with symlinks resolved: the instance lock, the staging files and the
    journal must sit beside the real file, whichever link the user opened it through."""
    return Path(path).resolve()


def _refuse_existing(path: Path) -> None:
    for existing in (path, keys.key_file_path(path), *(side_path(path, s) for s in SIDE_SUFFIXES)):
        if existing.is_dir():
            raise StoreError(f"{existing} is a folder; choose a file name for the store")
        if existing.exists():
            raise StoreExists(f"{existing} already exists; refusing to overwrite it")


def _settle_and_tidy(path: Path) -> None:
    """Finish an interrupted publish, then delete staging files a crash left behind.
    The caller holds the store's lock."""
    publish.settle(path)
    publish.remove_leftovers(path)
    try:
        pending = bool(keys.read_key_file(path).pending)
    except (KeyFileMissing, KeyFileDamaged):
        pending = False  # no key can open a staged rekey copy then: it is only a leftover
    if not pending:  # a rekey staged its copy but never reached the key file
        for side in publish.BESIDE_STAGED:
            side_path(path, ".rekey" + side).unlink(missing_ok=True)


def _settle_under_lock(path: Path) -> None:
    lock = StoreLock(path)
    lock.acquire()
    try:
        _settle_and_tidy(path)
    finally:
        lock.release()


def _salvage_wal(path: Path) -> Path | None:
    """Keep a damaged log aside and cut it before the damage (see wal.py); None when
    the log is sound."""
    wal_path = side_path(path, "-wal")
    report = wal.inspect(wal_path)
    if report is None or not report.loses_commits:
        return None
    kept = side_path(path, f"-wal.damaged-{_stamp()}")
    _private_copy(wal_path, kept)  # byte for byte, fsynced, before the log is cut
    wal.cut_before_damage(wal_path, report)
    log.warning(
        "salvaged the log of %s before frame %s; the damaged log is kept as %s", path.name, report.damaged_at, kept.name
    )
    return kept


def _stamp() -> str:
    return now().replace(":", "").replace("-", "").replace(".", "")


def _private_copy(source: Path, destination: Path) -> None:
    """Copy `source` into a new 0600 file, reading the source only (it may sit on
    write-protected media) and fsyncing the copy."""
    connection.private_new_file(destination)
    with source.open("rb") as src, destination.open("r+b") as dst:
        shutil.copyfileobj(src, dst, 1024 * 1024)
        dst.flush()
        os.fsync(dst.fileno())


def restore(
    backup_path: str | os.PathLike, passphrase: str, target: str | os.PathLike, *, replace: bool = False
) -> Store:
    """Restore a backup made by `Store.backup` into `target` and open it.

    Nothing is written beside the backup (write-protected media work): it is copied
    next to the target, verified there, and re-encrypted under a fresh data key wrapped
    by the same passphrase. The result is put in place all-or-nothing (publish.py): a
    crash leaves the old store, or the restored one at the next open, never neither.
    An existing target (a damaged store, say) is only replaced with `replace=True`,
    and even then its files are renamed aside (`*.replaced-<time>`), never deleted.
    """
    backup_path, target = _real_path(backup_path), _real_path(target)
    connection.check_file_before_open(backup_path)
    key_file = keys.read_key_file(backup_path)
    backup_keys = keys.unwrap_keys(key_file, keys.passphrase_kek(key_file, passphrase), "passphrase")
    lock = StoreLock(target)
    lock.acquire()  # DatabaseInUse while the store being replaced is open somewhere
    new_key = keys.new_data_key()
    try:
        _settle_and_tidy(target)
        occupied = target.exists() or keys.key_file_path(target).exists()
        if occupied and not replace:
            raise StoreExists(f"{target} exists; pass replace=True (--replace) to set it aside")
        source, staged = side_path(target, ".restore-source"), side_path(target, ".restore")
        _private_copy(backup_path, source)
        backup_wal = side_path(backup_path, "-wal")
        if backup_wal.is_file() and backup_wal.stat().st_size:
            _private_copy(backup_wal, side_path(source, "-wal"))
        _, data_key, conn = Store._open_with(source, backup_keys)
        try:
            export_encrypted(conn, source, staged, new_key)
        finally:
            conn.close()
            keys.wipe(data_key)
        keys.write_key_file(staged, keys.seal(new_key, passphrase, key_file.kdf))
        stamp = _stamp()
        # Named so the set-aside files still form a store (`<db>.replaced-<time>` with its
        # -wal and .keys), which `Store.open` can read if it is ever needed.
        moves = [
            (side_path(target, suffix), side_path(target, f".replaced-{stamp}{suffix}"))
            for suffix in ("", *SIDE_SUFFIXES, ".keys")
            if side_path(target, suffix).exists()
        ]
        moves += [(keys.key_file_path(staged), keys.key_file_path(target)), (staged, target)]
        publish.publish(target, moves)
        publish.remove_leftovers(target)
        store = Store(target, connection.open_existing(target, new_key), new_key, keys.read_key_file(target), lock)
    except BaseException:
        publish.remove_leftovers(target)
        keys.wipe(new_key)
        lock.release()
        raise
    finally:
        for candidate in backup_keys:
            keys.wipe(candidate[1])
    if moves[:-2]:
        log.warning("set aside %d file(s) of the replaced store", len(moves) - 2)
    migrate(store._require())
    with store.atomic():
        store._audit("restore")
    return store
