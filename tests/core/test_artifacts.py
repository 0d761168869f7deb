"""The trained artefacts shipped in assets/models match their manifest, and the manifest
says how each was made."""

from __future__ import annotations

from therapist_app.core.artifacts import manifest, models_dir, verified

WEIGHTS = {".safetensors", ".gguf", ".npz", ".bin"}


def test_every_shipped_artefact_matches_its_manifest_entry():
    entries = manifest()
    files = {p.name for p in models_dir().iterdir() if p.suffix in WEIGHTS}
    assert files and files == set(entries)
    for name, entry in entries.items():
        assert verified(models_dir() / name)
        assert entry["bytes"] <= 16 * 1024 * 1024
        assert entry["command"] and len(entry["data_sha256"]) == 64 and entry["commit"]
        assert entry["metrics"] and entry["config"]
