"""The small trained artefacts the app ships (assets/models): each file's entry in the
manifest beside it records how it was made (command, data hash, config, commit,
metrics) and its SHA-256, which a loaded file must match."""

from __future__ import annotations

import json
from pathlib import Path

from therapist_app.core.assets import assets_dir
from therapist_app.core.model_file import sha256_file

MANIFEST = "manifest.json"


class ArtifactError(ValueError):
    """A shipped artefact is missing from the manifest or differs from it."""


def models_dir() -> Path:
    return assets_dir() / "models"


def manifest(folder: Path | None = None) -> dict[str, dict]:
    path = (folder or models_dir()) / MANIFEST
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as problem:
        raise ArtifactError(f"cannot read {path}: {problem}") from None


def verified(path: Path) -> Path:
    """`path` when its SHA-256 is the one its folder's manifest records."""
    path = Path(path)
    entry = manifest(path.parent).get(path.name)
    if entry is None:
        raise ArtifactError(f"{path.name} is not in the manifest of {path.parent}")
    if not path.is_file():
        raise ArtifactError(f"{path.name} is missing from {path.parent}")
    if sha256_file(path) != entry["sha256"]:
        raise ArtifactError(f"{path.name} differs from its manifest (rebuild it with: {entry.get('command', '?')})")
    return path
