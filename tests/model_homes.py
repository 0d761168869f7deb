"""Home folders laid out as other local-model apps leave them, for the discovery tests."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from therapist_app.core.model_file import sha256_file


def ollama_pull(home: Path, gguf: Path, name: str = "library/tiny", tag: str = "f32") -> Path:
    """Ollama's store after `ollama pull`: the model as a blob named by its hash (no
    extension), and a manifest naming the blob. Returns the blob."""
    digest = sha256_file(gguf)
    blob = home / ".ollama/models/blobs" / f"sha256-{digest}"
    blob.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(gguf, blob)
    manifest = home / ".ollama/models/manifests/registry.ollama.ai" / name / tag
    manifest.parent.mkdir(parents=True, exist_ok=True)
    layer = {"mediaType": "application/vnd.ollama.image.model", "digest": f"sha256:{digest}"}
    manifest.write_text(json.dumps({"layers": [layer]}))
    return blob
