"""Encrypted copies of a store: the rekey staging file, backups, and restore's helpers.

Every copy is made with `sqlcipher_export` into a new file under its own data key,
fsynced, checked to carry no plaintext header and verified page by page before anyone
renames it into place. Nothing here writes over an existing file.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import sqlcipher3

from therapist_app.core.store import connection, keys, publish
from therapist_app.core.store.errors import NotEncrypted, StoreError, StoreExists
from therapist_app.core.store.keys import KdfParams

log = logging.getLogger(__name__)

SIDE_SUFFIXES = ("-wal", "-shm")


def side_path(db_path: Path, suffix: str) -> Path:
    return db_path.with_name(db_path.name + suffix)


def export_encrypted(conn: sqlcipher3.Connection, source: Path, destination: Path, data_key: bytes) -> None:
    """Copy every table of the open database into a new SQLCipher file keyed with
    `data_key`, fsync it and verify it (HMAC of every page) before returning. On any
    failure the partial copy and its journal are removed."""
    connection.private_new_file(destination)  # 0600 before a byte is written
    try:
        connection.checkpoint(conn, source)
        try:
            conn.execute(connection.attach_sql("copy", data_key), (str(destination),))
            try:
                conn.execute("SELECT sqlcipher_export('copy')")
            finally:
                conn.execute("DETACH DATABASE copy")
        except sqlcipher3.Error as error:
            raise connection.translate(error, destination) from None
        if connection.is_plaintext_sqlite(destination):
            raise StoreError("the copy came out unencrypted; it was deleted")
        with destination.open("r+b") as f:  # writable: Windows refuses to flush a read-only handle
            os.fsync(f.fileno())
        connection.verify_encrypted_file(destination, data_key)
    except BaseException:
        for leftover in (destination, side_path(destination, "-journal")):
            leftover.unlink(missing_ok=True)
        raise


def write_backup(conn: sqlcipher3.Connection, source: Path, destination: Path, passphrase: str, kdf: KdfParams) -> None:
    """`destination` and `destination.keys`: a complete store with its own random data
    key wrapped by `passphrase`. A plaintext SQLite destination is refused outright."""
    for existing in (destination, keys.key_file_path(destination)):
        if not existing.exists():
            continue
        if connection.is_plaintext_sqlite(existing):
            raise NotEncrypted(f"{existing} is a plaintext database: a backup is never written into or over one")
        raise StoreExists(f"{existing} already exists; choose a new backup name")
    keys.normalize_passphrase(passphrase)
    abandon_backup(destination)  # what an earlier attempt at this name left behind
    staged = side_path(destination, ".partial")
    data_key = keys.new_data_key()
    try:
        export_encrypted(conn, source, staged, data_key)
        keys.write_key_file(staged, keys.seal(data_key, passphrase, kdf))
        publish.publish(
            destination, [(keys.key_file_path(staged), keys.key_file_path(destination)), (staged, destination)]
        )
    except BaseException:
        _remove_partials(destination)
        raise
    finally:
        keys.wipe(data_key)
    log.info("backup written (%d bytes)", destination.stat().st_size)


_PARTIAL_SUFFIXES = tuple(".partial" + side for side in publish.BESIDE_STAGED) + (".publish.tmp",)


def _remove_partials(destination: Path) -> None:
    for suffix in _PARTIAL_SUFFIXES:
        side_path(destination, suffix).unlink(missing_ok=True)


def abandon_backup(destination: Path) -> None:
    """Tidy after a backup a crash interrupted: finish its last renames when it had got
    that far (the copy was verified before they began), else remove its staged files."""
    try:
        if not publish.settle(destination):
            _remove_partials(destination)
    except OSError as error:  # the backup medium is gone or read-only: nothing to do now
        log.warning("could not tidy an interrupted backup (%s)", error.strerror)
