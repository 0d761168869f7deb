"""Helpers shared by the store tests and their subprocess scripts."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from therapist_app.core.store import Store, keys

PASSPHRASE = "correct horse battery"
REPO_ROOT = Path(__file__).resolve().parents[3]
PROCS = Path(__file__).resolve().parent / "procs"


def copy_store(source: Path, destination: Path) -> Path:
    shutil.copyfile(source, destination)
    shutil.copyfile(keys.key_file_path(source), keys.key_file_path(destination))
    return destination


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (recursively), name to bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def run_proc(script: str, *args: str, env: dict | None = None, **kwargs) -> subprocess.Popen:
    """Start one of the helper scripts in procs/ with the repository importable."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), **(env or {})}
    return subprocess.Popen([sys.executable, str(PROCS / script), *args], env=full_env, **kwargs)


def fill(store: Store, marker: str) -> dict[str, int]:
    """One client with a session touching every table; `marker` in every text field."""
    client = store.add_client(f"C-{marker}", display_name=f"Name {marker}")
    session = store.start_session(client.id)
    said = store.append_utterance(
        session.id, "client", f"I feel {marker} today", emotion="anxiety", confidence=0.8, risk_flags=("self_harm",)
    )
    suggestion = store.add_suggestion(said.id, "smollm2", "reflection", f"You feel {marker}.", 42.0)
    store.acknowledge_risk(said.id, "Dr Test")
    store.decide(suggestion.id, "edited", f"It sounds like {marker} is hard.")
    store.append_utterance(session.id, "therapist", f"It sounds like {marker} is hard.")
    store.set_note(session.id, f"note about {marker}")
    return {"client": client.id, "session": session.id, "utterance": said.id, "suggestion": suggestion.id}


def decrypted_pages(data: bytes, data_key: bytes, wal: bool = False) -> bytes:
    """Decrypt a SQLCipher 4 database (or WAL) file page by page, freed pages included,
    so a test can look for text that SQL no longer returns.

    Each 4096-byte page ends with 80 reserved bytes: a 16-byte IV, then the HMAC; page 1
    starts with the 16-byte salt. A raw hex key is the AES-256-CBC key itself.
    """
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    page_size, reserve = 4096, 80
    if wal:  # 32-byte header, then frames: 24-byte header (page number first), page
        frames = data[32:]
        chunks = [
            (int.from_bytes(frames[i : i + 4], "big"), frames[i + 24 : i + 24 + page_size])
            for i in range(0, len(frames), 24 + page_size)
        ]
    else:
        chunks = [(i // page_size + 1, data[i : i + page_size]) for i in range(0, len(data), page_size)]
    pages = []
    for page_number, chunk in chunks:
        if len(chunk) < page_size:
            continue
        start = 16 if page_number == 1 else 0
        iv = chunk[page_size - reserve : page_size - reserve + 16]
        decryptor = Cipher(algorithms.AES(bytes(data_key)), modes.CBC(iv)).decryptor()
        pages.append(decryptor.update(chunk[start : page_size - reserve]) + decryptor.finalize())
    return b"".join(pages)
