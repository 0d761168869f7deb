"""Putting staged files in place all-or-nothing across a crash: a journal of renames.

Creating and restoring a store end by moving several files (the database, its key file,
the old store's files set aside) into their final names. A kill between two renames
would leave a database without its key file, or no store at all. So the renames are
written to `<db>.publish` first (atomically); each completed rename is recorded; and
whoever next opens, creates or restores the store finishes the list (`settle`). Before
the journal exists nothing visible has changed, and the staged files are leftovers that
`remove_leftovers` deletes.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from therapist_app.core.store import keys
from therapist_app.core.store.errors import KeyFileDamaged

log = logging.getLogger(__name__)

# Files only this module's callers create, never live parts of a store: a crash can
# leave them behind, and nothing else ever reads them.
STAGED = (".creating", ".restore", ".restore-source")
# ...each with what SQLite and the key-file writer put beside it.
BESIDE_STAGED = ("", "-wal", "-shm", "-journal", ".keys", ".keys.tmp")
STAGING_SUFFIXES = (*(base + side for base in STAGED for side in BESIDE_STAGED), ".keys.tmp", ".publish.tmp")


def journal_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".publish")


def _write(db_path: Path, moves: list[tuple[str, str]], done: int) -> None:
    record = {"moves": moves, "done": done}
    keys.write_atomically(journal_path(db_path), json.dumps(record).encode("utf-8"))


def publish(db_path: Path, moves: list[tuple[Path, Path]]) -> None:
    """Rename each (source, destination) in order, all of them even across a crash.
    Every path must lie in `db_path`'s folder (renames are atomic only within one)."""
    names = []
    for source, destination in moves:
        if source.parent != db_path.parent or destination.parent != db_path.parent:
            raise ValueError("publish moves files within the store's folder only")
        names.append((source.name, destination.name))
    _write(db_path, names, 0)
    _finish(db_path, names, 0)


def _finish(db_path: Path, moves: list[tuple[str, str]], done: int) -> None:
    folder = db_path.parent
    for index in range(done, len(moves)):
        source, destination = (folder / name for name in moves[index])
        # A source already gone was moved just before a crash that kept the journal
        # from recording it: the journal is rewritten after every rename, so only the
        # rename in flight can be in that state.
        if source.exists():
            os.replace(source, destination)
            keys.fsync_dir(folder)
        if index + 1 < len(moves):
            _write(db_path, moves, index + 1)
    journal_path(db_path).unlink()
    keys.fsync_dir(folder)


def settle(db_path: Path) -> bool:
    """Finish a publish that a crash interrupted; True when there was one.

    The caller holds the store's lock, so no other process is publishing."""
    journal = journal_path(db_path)
    try:
        record = json.loads(journal.read_text(encoding="utf-8"))
        moves = [tuple(move) for move in record["moves"]]
        done = int(record["done"])
    except FileNotFoundError:
        return False
    except (ValueError, KeyError, TypeError):
        # write_atomically never leaves a half-written journal; this one was altered.
        raise KeyFileDamaged(
            f"{journal.name} is damaged; the interrupted step it records cannot be finished. Restore from a backup."
        ) from None
    _finish(db_path, moves, done)
    log.warning("finished an interrupted create or restore of %s", db_path.name)
    return True


def remove_leftovers(db_path: Path) -> list[str]:
    """Delete the staging files a crash left beside the store (the caller holds its lock
    and has settled any journal). Returns their names, for the log."""
    removed = []
    for suffix in STAGING_SUFFIXES:
        path = db_path.with_name(db_path.name + suffix)
        if path.is_file():
            path.unlink()
            removed.append(path.name)
    if removed:
        log.warning("removed %d file(s) a crash left beside %s", len(removed), db_path.name)
    return removed
