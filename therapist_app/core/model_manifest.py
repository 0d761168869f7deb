"""The manifest that travels with an exported GGUF, and the checks the app runs on it.

`therapist-trainer export` writes `<model>.manifest.json` next to each GGUF it makes:
the file's SHA-256 and size, its quantisation, provenance (base model, training run,
data hash, evaluation, licence) and what the export verified. The app trusts a model
file only when the file still matches its manifest byte for byte and the clinic policy
allows its hash; anything else is refused with a message saying why.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from therapist_app.core.model_file import ModelFileError, read_gguf_header, sha256_file
from therapist_app.core.policy import Policy

MANIFEST_FORMAT = "therapist-model-manifest"
MANIFEST_VERSION = 1
MANIFEST_SUFFIX = ".manifest.json"
QUANTISATIONS = ("f32", "f16", "q8_0", "q6_k", "q5_k_m", "q4_k_m", "q4_0")
_SHA256 = re.compile(r"[0-9a-f]{64}")


class ManifestError(ModelFileError):
    """A manifest is missing, malformed, or does not match its model file."""


class ModelRefused(ModelFileError):
    """The clinic policy does not allow this model file."""


@dataclass(frozen=True)
class ModelProvenance:
    name: str
    architecture: str
    base_model: str
    license: str
    run_id: str | None = None
    data_sha256: str | None = None
    evaluation: dict = field(default_factory=dict)
    """Numbers from the training run (e.g. final validation loss); empty when none."""
    chat_template_sha256: str = ""
    stop_token: str = ""


@dataclass(frozen=True)
class Verification:
    """What the export measured on this file; the numbers are reported, `passed` gates."""

    loads: bool
    template_matches: bool
    tokenizer_matches: bool
    """llama.cpp tokenizes the parity prompts exactly as the Hugging Face tokenizer does."""
    stop_token_is_eog: bool
    generation_stopped: bool
    """Some sampled replies ended at the end-of-turn token and none ran into a new turn."""
    top1_agreement: float
    max_abs_logit_error: float
    mean_abs_logit_error: float
    positions_compared: int
    passed: bool
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelManifest:
    file: str
    """The GGUF's file name; it lies in the manifest's folder."""
    sha256: str
    size_bytes: int
    quantisation: str
    tensor_types: dict[str, int]
    """How many tensors have each GGML type (small models keep some at higher precision)."""
    provenance: ModelProvenance
    verification: Verification
    exported_at: str
    tools: dict[str, str]

    def __post_init__(self) -> None:
        if Path(self.file).name != self.file or not self.file.endswith(".gguf"):
            raise ManifestError(f"manifest names {self.file!r}; expected a plain .gguf file name")
        if not _SHA256.fullmatch(self.sha256):
            raise ManifestError("manifest sha256 must be 64 lowercase hex digits")
        if self.size_bytes <= 0:
            raise ManifestError("manifest size_bytes must be positive")
        if self.quantisation not in QUANTISATIONS:
            raise ManifestError(f"unknown quantisation {self.quantisation!r}")

    def to_dict(self) -> dict:
        record = asdict(self)
        record["verification"]["notes"] = list(self.verification.notes)
        return {"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, **record}

    @classmethod
    def from_dict(cls, record: dict) -> "ModelManifest":
        if not isinstance(record, dict) or record.get("format") != MANIFEST_FORMAT:
            raise ManifestError("not a therapist model manifest")
        if record.get("version") != MANIFEST_VERSION:
            raise ManifestError(f"manifest version {record.get('version')!r} is not supported")
        try:
            verification = dict(record["verification"])
            verification["notes"] = tuple(verification.get("notes", ()))
            return cls(
                file=record["file"],
                sha256=record["sha256"],
                size_bytes=int(record["size_bytes"]),
                quantisation=record["quantisation"],
                tensor_types={str(k): int(v) for k, v in record["tensor_types"].items()},
                provenance=ModelProvenance(**record["provenance"]),
                verification=Verification(**verification),
                exported_at=record["exported_at"],
                tools=dict(record["tools"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise ManifestError(f"malformed manifest ({type(err).__name__}: {err})") from None


def manifest_path_for(model_path: str | Path) -> Path:
    """`x.q8_0.gguf` -> `x.q8_0.manifest.json` in the same folder."""
    path = Path(model_path)
    return path.with_name(path.name.removesuffix(".gguf") + MANIFEST_SUFFIX)


def write_manifest(manifest: ModelManifest, folder: str | Path) -> Path:
    out = Path(folder) / manifest_path_for(manifest.file).name
    partial = out.with_name(out.name + ".partial")
    partial.write_text(json.dumps(manifest.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    partial.replace(out)
    return out


def read_manifest(path: str | Path) -> ModelManifest:
    path = Path(path)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"no manifest at {path}: export the model with `therapist-trainer export`") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ManifestError(f"cannot read the manifest {path.name} ({type(err).__name__})") from None
    return ModelManifest.from_dict(record)


@dataclass(frozen=True)
class VerifiedModel:
    model_path: Path
    manifest_path: Path
    manifest: ModelManifest


def verify_model(path: str | Path) -> VerifiedModel:
    """Check a model file against its manifest; `path` is the GGUF or its manifest.

    Raises ManifestError when the manifest is missing or malformed, when the file's size
    or SHA-256 differs from it (a corrupted, truncated or swapped file), or when the
    export's own verification did not pass; ModelFileError for a file that is not GGUF.
    """
    path = Path(path)
    manifest_path = path if path.name.endswith(MANIFEST_SUFFIX) else manifest_path_for(path)
    manifest = read_manifest(manifest_path)
    model_path = manifest_path.parent / manifest.file
    if not path.name.endswith(MANIFEST_SUFFIX) and path.name != manifest.file:
        raise ManifestError(f"{manifest_path.name} describes {manifest.file}, not {path.name}")
    header = read_gguf_header(model_path)
    if header.size_bytes != manifest.size_bytes:
        raise ManifestError(
            f"{model_path.name} is {header.size_bytes} bytes but its manifest says "
            f"{manifest.size_bytes}: the file is truncated or was replaced; export or copy it again"
        )
    if sha256_file(model_path) != manifest.sha256:
        raise ManifestError(
            f"{model_path.name} does not match its manifest (SHA-256 differs): the file is "
            "corrupted or was modified; export or copy it again"
        )
    if not manifest.verification.passed:
        raise ManifestError(f"{model_path.name} failed the export's verification; it is not used")
    return VerifiedModel(model_path, manifest_path, manifest)


def check_allowed(verified: VerifiedModel, policy: Policy, approved_hashes: frozenset[str] = frozenset()) -> None:
    """Raise ModelRefused unless the policy allows this (already verified) model."""
    sha = verified.manifest.sha256
    if not policy.model_allowed(sha, approved_in_store=sha in approved_hashes):
        raise ModelRefused(
            f"clinic policy allows only approved models and {verified.model_path.name} "
            f"(sha256 {sha}) is not approved: ask clinic IT to add it to allowed_model_hashes"
        )
