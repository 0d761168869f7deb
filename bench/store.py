"""Speed of the encrypted store, against plain SQLite doing the same work.

unlock_s        Store.open with the production KDF (Argon2id 64 MiB, t=3, p=4): key-file
                read, KDF, unwrap, keying, read check, settings check, quick_check.
append_p50_ms   Store.append_utterance latency (one committed transaction each, with
append_p99_ms   synchronous=FULL in WAL mode), median and 99th percentile.
vs_sqlite       our median append over stdlib sqlite3's median for the same statements
                (BEGIN IMMEDIATE, the session check, the INSERT, COMMIT) with the same
                pragmas and schema on an unencrypted file in the same folder. Target <= 1.5.

The two are timed alternately, one append each in turn (which goes first alternates
too), so disk noise from a shared machine falls on both alike.

Usage: .venv/bin/python bench/store.py [--appends 400] [--folder DIR]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from therapist_app.core.store import KdfParams, Store
from therapist_app.core.store.schema import migrate, now

TEXT = (
    "I've been feeling on edge all week and I can't switch off at night; work keeps "
    "piling up and my manager doesn't seem to notice how much I do."
)
PASSPHRASE = "benchmark passphrase"


def plain_sqlite(path: Path) -> tuple[sqlite3.Connection, int]:
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in (
        "journal_mode = WAL",
        "synchronous = FULL",
        "foreign_keys = ON",
        "temp_store = MEMORY",
        "secure_delete = ON",
    ):
        conn.execute(f"PRAGMA {pragma}")
    migrate(conn)
    conn.execute("INSERT INTO clients(code, created_at) VALUES ('C-1', ?)", (now(),))
    conn.execute("INSERT INTO sessions(client_id, conversation_id, started_at) VALUES (1, 'x', ?)", (now(),))
    return conn, 1


def plain_append(conn: sqlite3.Connection, session_id: int) -> None:
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("SELECT id FROM sessions WHERE id = ?", (session_id,)).fetchone()
    conn.execute(
        "INSERT INTO utterances(session_id, speaker, text, created_at, emotion_detected,"
        " emotion_confidence, risk_flags) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (session_id, "client", TEXT, now(), "anxiety", 0.8, json.dumps([])),
    )
    conn.execute("COMMIT")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(folder: Path, appends: int) -> dict[str, float]:
    path = folder / "bench.db"
    Store.create(path, PASSPHRASE, KdfParams()).close()
    unlock = []
    for _ in range(3):
        start = time.perf_counter()
        store = Store.open(path, PASSPHRASE)
        unlock.append(time.perf_counter() - start)
        store.close()

    plain, plain_session = plain_sqlite(folder / "plain.db")
    ours, theirs = [], []
    with Store.open(path, PASSPHRASE) as store:
        session_id = store.start_session(store.add_client("C-1").id).id

        def timed(append) -> float:
            start = time.perf_counter()
            append()
            return time.perf_counter() - start

        def our_append() -> None:
            store.append_utterance(session_id, "client", TEXT, emotion="anxiety", confidence=0.8)

        for i in range(appends + 20):
            # Alternate which side goes first, so neither always follows the other's fsync.
            if i % 2:
                mine, other = timed(our_append), timed(lambda: plain_append(plain, plain_session))
            else:
                other, mine = timed(lambda: plain_append(plain, plain_session)), timed(our_append)
            if i >= 20:  # warm-up: page cache, WAL growth
                ours.append(mine)
                theirs.append(other)
    plain.close()
    return {
        "unlock_s": statistics.median(unlock),
        "append_p50_ms": statistics.median(ours) * 1000,
        "append_p99_ms": percentile(ours, 0.99) * 1000,
        "sqlite_p50_ms": statistics.median(theirs) * 1000,
        "vs_sqlite": statistics.median(ours) / statistics.median(theirs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appends", type=int, default=400, help="timed appends per side")
    parser.add_argument(
        "--folder", type=Path, default=None, help="folder for the two databases (default: a new temp folder)"
    )
    args = parser.parse_args()
    if args.folder is None:
        with tempfile.TemporaryDirectory(prefix="store-bench-") as folder:
            figures = run(Path(folder), args.appends)
    else:
        args.folder.mkdir(parents=True, exist_ok=True)
        figures = run(args.folder, args.appends)
    for name, value in figures.items():
        print(f"{name:>14}: {value:.4f}")
    print(
        f"RESULT unlock_s={figures['unlock_s']:.3f} append_p50_ms={figures['append_p50_ms']:.3f} "
        f"append_p99_ms={figures['append_p99_ms']:.3f} vs_sqlite={figures['vs_sqlite']:.3f}"
    )


if __name__ == "__main__":
    main()
