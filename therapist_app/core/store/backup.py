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

from therapist_app.core.store import connection, keys
from therapist_app.core.store.errors import NotEncrypted, StoreError, StoreExists
from therapist_app.core.store.keys import KdfParams
from therapist_app.core.store.schema import now

log = logging.getLogger(__name__)

SIDE_SUFFIXES = ("-wal", "-shm")


def side_path(db_path: Path, suffix: str) -> Path:
    return db_path.with_name(db_path.name + suffix)


def export_encrypted(conn: sqlcipher3.Connection, source: Path, destination: Path,
                     data_key: bytes) -> None:
    """Copy every table of the open database into a new SQLCipher file keyed with
    `data_key`, fsync it and verify it (HMAC of every page) before returning."""
    if destination.exists():
        raise StoreExists(f"{destination} already exists; refusing to overwrite it")
    connection.checkpoint(conn, source)
    try:
        conn.execute(connection.attach_sql("copy", data_key), (str(destination),))
        try:
            conn.execute("SELECT sqlcipher_export('copy')")
        finally:
            conn.execute("DETACH DATABASE copy")
    except sqlcipher3.Error as error:
        destination.unlink(missing_ok=True)
        raise connection.translate(error, destination) from None
    os.chmod(destination, 0o600)
    if connection.is_plaintext_sqlite(destination):
        destination.unlink()
        raise StoreError("the copy came out unencrypted; it was deleted")
    with destination.open("r+b") as f:  # writable: Windows refuses to flush a read-only handle
        os.fsync(f.fileno())
    connection.verify_encrypted_file(destination, data_key)


def write_backup(conn: sqlcipher3.Connection, source: Path, destination: Path,
                 passphrase: str, kdf: KdfParams) -> None:
    """`destination` and `destination.keys`: a complete store with its own random data
    key wrapped by `passphrase`. A plaintext SQLite destination is refused outright."""
    for existing in (destination, keys.key_file_path(destination)):
        if not existing.exists():
            continue
        if connection.is_plaintext_sqlite(existing):
            raise NotEncrypted(f"{existing} is a plaintext database: a backup is never "
                               "written into or over one")
        raise StoreExists(f"{existing} already exists; choose a new backup name")
    keys.normalize_passphrase(passphrase)
    staged = side_path(destination, ".partial")
    staged.unlink(missing_ok=True)
    data_key = keys.new_data_key()
    try:
        export_encrypted(conn, source, staged, data_key)
        keys.write_key_file(destination, keys.seal(data_key, passphrase, kdf))
        os.replace(staged, destination)
        keys.fsync_dir(destination.parent)
    finally:
        keys.wipe(data_key)
        staged.unlink(missing_ok=True)
    log.info("backup written (%d bytes)", destination.stat().st_size)


def set_aside(target: Path) -> None:
    """Rename a store's files to `*.replaced-<time>` so a restore can take their place."""
    stamp = now().replace(":", "").replace("-", "").replace(".", "")
    for suffix in ("", *SIDE_SUFFIXES, ".keys"):
        path = side_path(target, suffix)
        if path.exists():
            os.replace(path, side_path(target, f"{suffix}.replaced-{stamp}"))
            log.warning("set aside %s before restoring", path.name)
