"""A marker written through the API must appear in no byte of any file the store writes,
of its temp folder, or of its log output; and erasure must leave no trace of a client."""

from __future__ import annotations

import subprocess

from tests.core.store.helpers import decrypted_pages, fill, run_proc, snapshot

MARKER = "ZQXMARKER7731"


def _forms(marker: str) -> list[bytes]:
    return [marker.encode("utf-8"), marker.encode("utf-16-le"), marker.lower().encode()]


def _hits(files: dict[str, bytes], marker: str) -> list[str]:
    return [name for name, data in files.items() if any(f in data for f in _forms(marker))]


def test_marker_never_reaches_disk_temp_files_or_logs(tmp_path):
    folder, temp = tmp_path / "data", tmp_path / "tmp"
    folder.mkdir()
    temp.mkdir()
    proc = run_proc(
        "marker_scenario.py",
        str(folder),
        MARKER,
        env={"TMPDIR": str(temp), "SQLITE_TMPDIR": str(temp)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode(errors="replace")
    assert b"done" in out and b"search [1]" in out
    assert int(out.split(b"wal bytes ")[1].split()[0]) > 0  # the live WAL was captured
    files = snapshot(folder)
    assert {
        "store.db",
        "store.db.keys",
        "backup.db",
        "backup.db.keys",
        "live/store.db",
        "live/store.db-wal",
        "live/store.db-shm",
    } <= set(files)
    assert _hits(files, MARKER) == []
    assert _hits(snapshot(temp), MARKER) == []
    assert b"INFO:therapist_app.core.store" in err  # logging really was on
    assert not any(f in out + err for f in _forms(MARKER))


def test_erasure_leaves_no_trace_of_the_client(store):
    keep = fill(store, "KEEPMARKER")
    erase = fill(store, "ERASEMARKER")
    store.get_client(erase["client"])
    folder, key = store.path.parent, bytes(store._data_key)

    def plaintext() -> bytes:
        files = snapshot(folder)
        return decrypted_pages(files["store.db"], key) + decrypted_pages(files.get("store.db-wal", b""), key, wal=True)

    # The decryption is right: before erasure both clients' text is in the pages.
    assert b"ERASEMARKER" in plaintext() and b"KEEPMARKER" in plaintext()
    assert _hits(snapshot(folder), "ERASEMARKER") == []  # never visible in ciphertext
    store.erase_client(erase["client"])
    decrypted = plaintext()
    assert b"ERASEMARKER" not in decrypted and b"KEEPMARKER" in decrypted
    assert (folder / "store.db-wal").stat().st_size == 0
    assert [c.id for c in store.list_clients()] == [keep["client"]]
    assert store.session_transcript(keep["session"]).utterances[0].text == "I feel KEEPMARKER today"
    assert "erase_client" in [entry.action for entry in store.audit_log()]
