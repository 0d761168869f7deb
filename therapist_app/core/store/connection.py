"""Opening one SQLCipher file safely: key, prove the key, check the settings, check pages.

Nothing here creates, re-initialises or writes to a file that fails a check: a wrong
key or a damaged page raises before any pragma that could write runs.
"""

from __future__ import annotations

import logging
import os
from contextlib import closing
from pathlib import Path

import sqlcipher3

from therapist_app.core.store import wal
from therapist_app.core.store.errors import (
    Conflict,
    DatabaseCorrupt,
    DatabaseInUse,
    NotEncrypted,
    StorageFailure,
    StorageFull,
    StoreError,
    StoreExists,
    WalDamaged,
)

log = logging.getLogger(__name__)

SQLITE_HEADER = b"SQLite format 3\x00"

# SQLCipher 4 defaults. Any other value means a compatibility mode or a weakened file.
EXPECTED_CIPHER = "AES-256-CBC"
EXPECTED_SETTINGS = {
    "kdf_iter": "256000",
    "cipher_page_size": "4096",
    "cipher_use_hmac": "1",
    "cipher_plaintext_header_size": "0",
    "cipher_hmac_algorithm": "HMAC_SHA512",
    "cipher_kdf_algorithm": "PBKDF2_HMAC_SHA512",
}

_CODES = {
    "BUSY": 5,
    "LOCKED": 6,
    "READONLY": 8,
    "IOERR": 10,
    "CORRUPT": 11,
    "FULL": 13,
    "CANTOPEN": 14,
    "CONSTRAINT": 19,
    "NOTADB": 26,
}

RESTORE_HINT = "It was not changed. Restore it from a backup (therapist-app store restore)."


def primary_code(error: sqlcipher3.Error) -> int | None:
    code = getattr(error, "sqlite_errorcode", None)
    return None if code is None else code & 0xFF


def translate(error: sqlcipher3.Error, path: Path) -> StoreError:
    """Map a SQLite error to the store's exception with a message a therapist can act on.

    SQLite's own message is kept out of it: it can quote SQL but never client text,
    and the error code says all we need.
    """
    code = primary_code(error)
    name = path.name
    if code == _CODES["FULL"]:
        return StorageFull(
            f"the disk is full: the last change to {name} was not saved; "
            "earlier data is intact. Free some space and try again."
        )
    if code == _CODES["IOERR"]:
        return StorageFailure(
            f"the system reported a read/write error on {name}: the last change was not saved; earlier data is intact."
        )
    if code in (_CODES["CORRUPT"], _CODES["NOTADB"]):
        return DatabaseCorrupt(f"{name} is damaged or was altered (its pages fail authentication). {RESTORE_HINT}")
    if code in (_CODES["BUSY"], _CODES["LOCKED"]):
        return DatabaseInUse(f"{name} is busy in another process")
    if code == _CODES["READONLY"]:
        return StorageFailure(f"{name} or its folder is read-only: nothing was saved")
    if code == _CODES["CONSTRAINT"]:
        return Conflict(
            f"the change conflicts with an existing record or a rule of {name} "
            "(a client code already in use, or the append-only audit log); "
            "it was not saved"
        )
    if code == _CODES["CANTOPEN"]:
        return StorageFailure(f"{name} cannot be opened (missing, or its folder is not writable)")
    # sqlcipher_export reports a failed write into the attached copy as a generic
    # SQLITE_ERROR; its message (SQLite's own words, never data) says which.
    said = str(error).lower()
    if "disk is full" in said or "database or disk is full" in said:
        return StorageFull(
            f"the disk holding {name} is full: it was not written, and "
            "nothing else changed. Free some space and try again."
        )
    if "disk i/o error" in said or "unable to open" in said:
        return StorageFailure(
            f"{name} could not be written: the disk may be full, the "
            "file too large for it, or the folder read-only. Nothing "
            "else changed."
        )
    return StoreError(f"database error on {name} ({type(error).__name__}, code {code})")


def is_plaintext_sqlite(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(len(SQLITE_HEADER)) == SQLITE_HEADER


def check_file_before_open(path: Path) -> None:
    """Refuse a missing, empty or plaintext file before SQLCipher sees it: given an
    empty file, SQLCipher would quietly start a new database in it."""
    if path.is_dir():
        raise StoreError(f"{path} is a folder, not a store file: choose the store's database file (store.db) inside it")
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise StoreError(f"no store at {path}") from None
    if size == 0:
        raise DatabaseCorrupt(f"{path.name} is empty (zero bytes). {RESTORE_HINT}")
    if is_plaintext_sqlite(path):
        raise NotEncrypted(
            f"{path.name} is a plaintext SQLite database, not an encrypted store; refusing to open or change it"
        )
    if size < 1024:
        raise DatabaseCorrupt(f"{path.name} is truncated. {RESTORE_HINT}")


def check_wal(path: Path) -> wal.WalReport | None:
    """Refuse a store whose write-ahead log holds intact commits after a damaged frame
    (see wal.py): SQLite would drop them silently. Nothing is changed."""
    wal_path = path.with_name(path.name + "-wal")
    report = wal.inspect(wal_path)
    if report is not None and report.loses_commits:
        where = "its header" if report.header_damaged else f"frame {report.damaged_at + 1} of {report.frames}"
        raise WalDamaged(
            f"the recent-changes log {wal_path.name} is damaged at {where}, and "
            f"{report.commits_lost} saved change(s) from there on would be lost if the "
            "store were opened (a power cut while the last change was being saved can "
            "look the same). Nothing was changed. Either restore from a backup, or open "
            "it keeping what precedes the damage (therapist-app store salvage-wal, or "
            "Store.open(..., salvage_wal=True)); the damaged log is then kept beside the "
            "store, untouched, for a specialist."
        )
    return report


def _key(conn: sqlcipher3.Connection, data_key: bytes, schema: str = "main") -> None:
    # Raw hex key: SQLCipher skips its own KDF; the hex string holds no quotes.
    conn.execute(f"PRAGMA {schema}.key = \"x'{bytes(data_key).hex()}'\"")


def attach_sql(alias: str, data_key: bytes) -> str:
    """ATTACH statement keyed like `_key`; the path is bound as a parameter."""
    return f"ATTACH DATABASE ? AS {alias} KEY \"x'{bytes(data_key).hex()}'\""


def _check_cipher(conn: sqlcipher3.Connection, path: Path) -> None:
    version = conn.execute("PRAGMA cipher_version").fetchone()
    if not version or not version[0]:
        raise StoreError("this SQLite build has no SQLCipher: refusing to store data unencrypted")
    cipher = conn.execute("PRAGMA cipher").fetchone()[0]
    settings = {}
    for (line,) in conn.execute("PRAGMA cipher_settings"):
        name, _, value = line.removeprefix("PRAGMA ").rstrip(";").partition(" = ")
        settings[name.strip()] = value.strip()
    wrong = {k: settings.get(k) for k, v in EXPECTED_SETTINGS.items() if settings.get(k) != v}
    if cipher != EXPECTED_CIPHER or wrong:
        raise StoreError(
            f"{path.name} is not using SQLCipher 4 default settings "
            f"(cipher {cipher}, differing: {sorted(wrong)}); refusing it"
        )


def _apply_pragmas(conn: sqlcipher3.Connection) -> None:
    if conn.execute("PRAGMA journal_mode = WAL").fetchone()[0].lower() != "wal":
        raise StoreError("the database could not switch to WAL journaling")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")
    # Temp files are not encrypted: keep sorts, temp tables and VACUUM's copy in memory.
    conn.execute("PRAGMA temp_store = MEMORY")
    # Freed pages are zeroed, so deleted rows do not linger until the next VACUUM.
    conn.execute("PRAGMA secure_delete = ON")
    checks = {
        "synchronous": 2,
        "foreign_keys": 1,
        "temp_store": 2,
        "secure_delete": 1,
    }
    for pragma, expected in checks.items():
        if conn.execute(f"PRAGMA {pragma}").fetchone()[0] != expected:
            raise StoreError(f"PRAGMA {pragma} did not take effect")


def _connect(path: Path, mode: str) -> sqlcipher3.Connection:
    # A URI so `mode=rw` can forbid creating a missing file; as_uri() percent-encodes
    # characters such as ? and # that would otherwise end the path.
    conn = sqlcipher3.connect(
        f"{path.resolve().as_uri()}?mode={mode}", uri=True, isolation_level=None, check_same_thread=False
    )
    conn.execute("PRAGMA cipher_log_level = NONE")
    # Wipe SQLCipher's key material and page buffers when they are freed.
    conn.execute("PRAGMA cipher_memory_security = ON")
    conn.execute("PRAGMA busy_timeout = 5000")
    return conn


def _verify(conn: sqlcipher3.Connection, path: Path, data_key: bytes) -> None:
    _key(conn, data_key)
    conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    _check_cipher(conn, path)
    problems = conn.execute("PRAGMA quick_check").fetchall()
    if problems != [("ok",)]:
        raise DatabaseCorrupt(f"{path.name} failed its integrity check ({len(problems)} problems). {RESTORE_HINT}")


def _configure(conn: sqlcipher3.Connection, path: Path, data_key: bytes) -> None:
    _key(conn, data_key)
    conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    _apply_pragmas(conn)
    if conn.execute("PRAGMA cipher_memory_security").fetchone()[0] != "1":
        raise StoreError("cipher_memory_security could not be turned on")


def _with_connection(path: Path, mode: str, step) -> sqlcipher3.Connection:
    """Connect, run `step(conn)`; on any failure close and raise the store's error."""
    try:
        conn = _connect(path, mode)
    except sqlcipher3.Error as error:
        raise translate(error, path) from None
    try:
        step(conn)
    except sqlcipher3.Error as error:
        conn.close()
        raise _with_wal_hint(translate(error, path), path) from None
    except StoreError as error:
        conn.close()
        raise _with_wal_hint(error, path) from None
    return conn


def _with_wal_hint(error: StoreError, path: Path) -> StoreError:
    wal = path.with_name(path.name + "-wal")
    if isinstance(error, DatabaseCorrupt) and wal.exists() and wal.stat().st_size:
        return DatabaseCorrupt(
            f"{error} If {wal.name} was copied in from elsewhere, it is "
            "not this store's: moving it aside opens the last "
            "checkpointed state."
        )
    return error


def open_existing(path: Path, data_key: bytes) -> sqlcipher3.Connection:
    """Open and verify an existing store file. Raises DatabaseCorrupt when the key
    does not authenticate page 1 (the caller has already proved the passphrase) or a
    page fails quick_check; the file is left byte for byte as it was.

    The checks run on a read-only connection: a read-write one would checkpoint the
    WAL into the file as it closes, and a WAL that is not this file's (or is damaged)
    would then overwrite good pages with pages that fail authentication.
    """
    check_file_before_open(path)
    check_wal(path)
    side_files = [path.with_name(path.name + suffix) for suffix in ("-wal", "-shm")]
    absent = [side for side in side_files if not side.exists()]
    try:
        _with_connection(path, "ro", lambda conn: _verify(conn, path, data_key)).close()
    except StoreError:
        # A read-only connection leaves the -wal/-shm it opened; remove those it created
        # (empty WAL, index only) so a refused file leaves its folder as it was.
        for side in absent:
            if side.exists() and (side.name.endswith("-shm") or not side.stat().st_size):
                side.unlink()
        raise
    return _with_connection(path, "rw", lambda conn: _configure(conn, path, data_key))


def private_new_file(path: Path) -> None:
    """Create `path` empty with mode 0600 from the start, refusing an existing one.

    SQLite gives the -wal, -shm and -journal files it creates the database file's mode,
    so a file made here never has a moment readable by others, nor its side files."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        raise StoreExists(f"{path} already exists; refusing to overwrite it") from None
    except OSError as error:
        raise StorageFailure(f"cannot create {path.name} ({error.strerror}); nothing was changed") from None


def create_new(path: Path, data_key: bytes) -> sqlcipher3.Connection:
    private_new_file(path)  # SQLite starts a new database in an empty file
    try:
        conn = _connect(path, "rw")
        _key(conn, data_key)
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        _check_cipher(conn, path)
        _apply_pragmas(conn)
    except sqlcipher3.Error as error:
        raise translate(error, path) from None
    return conn


def checkpoint(conn: sqlcipher3.Connection, path: Path) -> None:
    """Move the WAL into the main file and truncate the WAL to zero bytes."""
    try:
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    except sqlcipher3.Error as error:
        raise translate(error, path) from None
    if busy:
        raise DatabaseInUse("a WAL checkpoint could not complete: another reader is active")


def cipher_integrity_check(conn: sqlcipher3.Connection, path: Path) -> list[str]:
    """Every page's HMAC (cipher_integrity_check) and SQLite's structural check."""
    checkpoint(conn, path)
    try:
        problems = [row[0] for row in conn.execute("PRAGMA cipher_integrity_check")]
        structure = [row[0] for row in conn.execute("PRAGMA integrity_check")]
    except sqlcipher3.Error as error:
        raise translate(error, path) from None
    if structure != ["ok"]:
        problems += structure
    return problems


def verify_encrypted_file(path: Path, data_key: bytes) -> None:
    """Prove a file written elsewhere (a backup) is encrypted and readable with its key."""
    with closing(open_existing(path, data_key)) as conn:
        problems = cipher_integrity_check(conn, path)
    if problems:
        raise DatabaseCorrupt(f"{path.name} failed verification ({len(problems)} problems)")
