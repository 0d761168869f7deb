"""Recording a trained artefact in assets/models/manifest.json: what made it (the
command, the data's hash, the config, the trainer's version and git commit) and what it
measured, beside the file's SHA-256 that the app and the tests check."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from therapist_app import __version__
from therapist_app.core.artifacts import MANIFEST
from therapist_app.core.model_file import sha256_file
from trainer.run_folder import git_commit


def record_artifact(
    path: Path, command: str, data_sha256: str, config: dict, metrics: dict, data: dict | None = None
) -> dict:
    """Write (or replace) the manifest entry of `path`; returns it."""
    path = Path(path)
    manifest_path = path.parent / MANIFEST
    entries = json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.is_file() else {}
    entry = {
        "sha256": sha256_file(path),
        "bytes": path.stat().st_size,
        "command": command,
        "data_sha256": data_sha256,
        "data": data or {},
        "config": config,
        "trainer_version": __version__,
        "commit": git_commit() or "unknown",
        "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "metrics": metrics,
    }
    entries[path.name] = entry
    manifest_path.write_text(json.dumps(entries, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return entry
