"""Reading a store's write-ahead log before SQLite does, to catch silent loss.

SQLite replays WAL frames until the first one whose salt or checksum is wrong and takes
everything after it for the torn tail of a crashed write. That is right for a torn tail,
but a single flipped bit in the middle of the log makes it drop every later commit,
open the store, and call it healthy; the next checkpoint makes the loss permanent.

Each frame's checksum continues the previous frame's stored checksum, so every frame can
be checked on its own. A damaged frame followed by intact frames of the same log is not
a torn tail: `inspect` reports it, and the store refuses to open until the user chooses
(see `Store.open(..., salvage_wal=True)`). Layout: https://www.sqlite.org/fileformat.html
(section "The Write-Ahead Log"); SQLCipher checksums the encrypted frames as written.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

PAGE_SIZE = 4096  # SQLCipher 4's, checked at every open (connection.EXPECTED_SETTINGS)
HEADER_BYTES = 32
FRAME_HEADER_BYTES = 24
_MAGIC = (0x377F0682, 0x377F0683)  # the low bit says the checksums are big-endian


@dataclass(frozen=True)
class WalReport:
    """What a log holds. `damaged_at` is the 0-based index of the first frame that
    breaks the chain when commits would be lost there (None: no such loss);
    `commits_lost` counts them (the broken frame's own, when it ends a transaction,
    and the intact ones after it), which SQLite would silently drop."""

    frames: int
    commits: int
    damaged_at: int | None = None
    commits_lost: int = 0
    header_damaged: bool = False

    @property
    def loses_commits(self) -> bool:
        return self.header_damaged or self.damaged_at is not None


def _checksum(data: bytes, big_endian: bool, s0: int, s1: int) -> tuple[int, int]:
    words = struct.unpack((">" if big_endian else "<") + f"{len(data) // 4}I", data)
    for i in range(0, len(words), 2):
        s0 = (s0 + words[i] + s1) & 0xFFFFFFFF
        s1 = (s1 + words[i + 1] + s0) & 0xFFFFFFFF
    return s0, s1


def _frames(data: bytes, count: int) -> list[tuple[tuple[int, int], bool, tuple[int, int], bytes]]:
    """(salts, ends a transaction, stored checksum, checksummed bytes) of each frame."""
    frame_bytes = FRAME_HEADER_BYTES + PAGE_SIZE
    frames = []
    for i in range(count):
        offset = HEADER_BYTES + i * frame_bytes
        head = data[offset : offset + FRAME_HEADER_BYTES]
        _page, size, salt1, salt2, f0, f1 = struct.unpack(">6I", head)
        body = head[:8] + data[offset + FRAME_HEADER_BYTES : offset + frame_bytes]
        frames.append(((salt1, salt2), size != 0, (f0, f1), body))
    return frames


def _chain(frames: list, big_endian: bool, salts: tuple[int, int], start: tuple[int, int]) -> list[bool]:
    """Whether each frame carries `salts` and continues the checksum of the frame before.

    After a broken frame the next may continue either the checksum stored there (when
    the damage is in its page) or the one it should have stored (when the damage is in
    the stored checksum itself), so both are tried."""
    intact, previous = [], {start}
    for frame_salts, _commit, stored, body in frames:
        computed = {_checksum(body, big_endian, *p) for p in previous}
        ok = frame_salts == salts and stored in computed
        intact.append(ok)
        previous = {stored} if ok else ({stored} | computed)
        if len(previous) > 4:  # a long run of foreign frames: nothing chains through it
            previous = {stored}
    return intact


def _ours(salts: tuple[int, ...], header: tuple[int, int]) -> bool:
    """The frame's salts are the log's, or one bit away from them (a flip, not a frame
    left over from an earlier log, whose salts differ in many bits)."""
    distance = bin(salts[0] ^ header[0]).count("1") + bin(salts[1] ^ header[1]).count("1")
    return distance <= 1


def inspect(wal_path: Path) -> WalReport | None:
    """Check every frame of `wal_path`; None when there is no log or it holds no frame."""
    try:
        data = wal_path.read_bytes()
    except FileNotFoundError:
        return None
    if len(data) < HEADER_BYTES:
        return None  # SQLite ignores a log shorter than its header
    magic, _version, page_size, _seq, salt1, salt2, c0, c1 = struct.unpack(">8I", data[:32])
    big_endian = magic == _MAGIC[1]
    header_ok = magic in _MAGIC and page_size == PAGE_SIZE and _checksum(data[:24], big_endian, 0, 0) == (c0, c1)
    frame_bytes = FRAME_HEADER_BYTES + PAGE_SIZE
    count = (len(data) - HEADER_BYTES) // frame_bytes
    if count == 0:
        return None
    frames = _frames(data, count)
    commit = [frame[1] for frame in frames]
    if not header_ok:
        # SQLite ignores the whole log: every commit that still chains is dropped.
        intact = _chain(frames, big_endian, frames[0][0], (c0, c1))
        lost = sum(c for c, ok in zip(commit, intact) if ok)
        return WalReport(count, sum(commit), 0 if lost else None, lost, header_damaged=bool(lost))
    intact = _chain(frames, big_endian, (salt1, salt2), (c0, c1))
    first_bad = next((i for i, ok in enumerate(intact) if not ok), None)
    if first_bad is None:
        return WalReport(count, sum(commit))
    # Intact frames after the break are lost only if one of them ends a transaction.
    # Without that they are the torn tail of a crashed write, or the leftovers of a
    # transaction that was rolled back and partly overwritten by a shorter one (a disk
    # full mid-write leaves those): SQLite is right to ignore both.
    lost = sum(commit[i] for i in range(first_bad + 1, count) if intact[i])
    # The broken frame itself, when it is this log's and ends a transaction: with
    # synchronous=FULL a commit frame is on disk before the commit returns, so only a
    # power cut during that very commit (never acknowledged) or damage breaks one. The
    # two cannot be told apart; refusing (and offering the salvage) is the safe side.
    if commit[first_bad] and _ours(frames[first_bad][0], (salt1, salt2)):
        lost += 1
    if not lost:
        return WalReport(count, sum(commit))
    return WalReport(count, sum(commit), first_bad, lost)


def cut_before_damage(wal_path: Path, report: WalReport) -> None:
    """Cut the live log before the damaged frame, so SQLite replays the commits before
    it and nothing of what follows (the caller has kept a copy of the whole log)."""
    if report.header_damaged:
        wal_path.unlink()  # SQLite ignores the whole log: nothing to replay
        return
    with wal_path.open("r+b") as f:
        f.truncate(HEADER_BYTES + report.damaged_at * (FRAME_HEADER_BYTES + PAGE_SIZE))
        os.fsync(f.fileno())
