"""One unlocked instance per store: an exclusive OS lock on `<db>.lock`.

SQLCipher in WAL mode would let a second app instance read and write at the same time,
and two copies of the UI would each believe they hold the current session state. The
lock is released by the OS when the holder exits, even after SIGKILL, so a crash never
leaves a stale lock behind. The file itself is never deleted (deleting lock files races).
"""

from __future__ import annotations

import os
from pathlib import Path

from therapist_app.core.store.errors import DatabaseInUse, StorageFailure

if os.name == "nt":
    import msvcrt
else:
    import fcntl


def lock_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".lock")


class StoreLock:
    def __init__(self, db_path: Path) -> None:
        self.path = lock_path(db_path)
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as error:
            raise StorageFailure(
                f"cannot open the lock file {self.path.name} ({error.strerror}); is the "
                "folder read-only? Nothing was changed."
            ) from None
        try:
            if os.name == "nt":
                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            else:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise DatabaseInUse(
                f"{self.path.name[:-5]} is open in another instance of the app; close it there first"
            ) from None
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the lock on every platform
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None
