"""Export a trained model to verified, quantised GGUF files the app trusts.

Source: a training run folder (`run.json` + `final/`), a LoRA adapter folder (adapter
plus a base-model reference), or a full Hugging Face model folder. Steps:

1. preflight: the architecture is one llama.cpp's converter supports, the tokenizer files
   are there and hold the ChatML turn tokens, and the disk has room for every file
   this export will write (checked before anything is written);
2. merge LoRA adapters into the base weights (peft `merge_and_unload`);
3. convert with llama.cpp's own `convert_hf_to_gguf.py`, version-matched with the
   installed llama-cpp-python (`trainer.llama_cpp_source`);
4. write the ChatML chat template, `<|im_end|>` as end-of-sequence and end-of-turn, and
   provenance into the GGUF with llama.cpp's gguf-py (`trainer.export.stamp`);
5. quantise through llama.cpp's quantisation API (`llama_model_quantize`), which
   carries the metadata over;
6. verify each file against the Hugging Face model (`trainer.export.verify`) and write
   a manifest (SHA-256, size, quantisation, provenance, verification) next to it.
"""

from __future__ import annotations

import ast
import json
import logging
import os
import shutil
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from therapist_app.core import dialogue_format as fmt
from therapist_app.core.model_file import sha256_file
from therapist_app.core.model_manifest import (
    QUANTISATIONS,
    ModelManifest,
    ModelProvenance,
    write_manifest,
)
from trainer.export.errors import (
    ExportError,
    InsufficientDiskSpace,
    TokenizerMissing,
    UnsupportedArchitecture,
    VerificationFailed,
)
from trainer.export.verify import ParityThresholds, Reference, hf_reference, prompt_tokens, verify_gguf
from trainer.llama_cpp_source import ConverterMissing, llama_cpp_version, run_converter, source_dir
from trainer.models import CHATML_TEMPLATE
from trainer.progress import progress

log = logging.getLogger(__name__)

# llama.cpp file types for the quantised outputs (llama.h's enum llama_ftype).
_FTYPES = {"q8_0": 7, "q6_k": 18, "q5_k_m": 17, "q4_k_m": 15, "q4_0": 2}
# Matrix types each quantisation is meant to produce; any other type on a 2-D weight
# is a per-tensor fallback (rows too short for the block size), reported as such.
_INTENDED = {
    "f32": {"f32"},
    "f16": {"f16"},
    "q8_0": {"q8_0"},
    "q6_k": {"q6_k"},
    "q5_k_m": {"q5_k", "q6_k"},
    "q4_k_m": {"q4_k", "q6_k"},
    "q4_0": {"q4_0", "q6_k"},
}
# Bytes per weight, rounded up, for the disk-space estimate.
_BYTES_PER_WEIGHT = {"f32": 4.0, "f16": 2.0, "q8_0": 1.07, "q6_k": 0.83, "q5_k_m": 0.72, "q4_k_m": 0.63, "q4_0": 0.57}
# Per-file overhead for the vocabulary and metadata, and a safety margin on top.
_FILE_OVERHEAD = 16 * 1024 * 1024
_DISK_MARGIN = 1.10
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model")


@dataclass(frozen=True)
class ExportSettings:
    source: Path
    """A run folder, a LoRA adapter folder or a full Hugging Face model folder."""
    output_dir: Path
    """Folder for the GGUF files and their manifests (created if missing)."""
    license: str
    """The licence of the exported weights (normally the base model's), e.g. apache-2.0."""
    quantisations: tuple[str, ...] = ("f16", "q8_0", "q4_k_m")
    """Output types, from f32, f16, q8_0, q6_k, q5_k_m, q4_k_m, q4_0."""
    name: str = ""
    """File and model name; empty means the run id or the source folder's name."""
    base_model: str = ""
    """Base model folder for a LoRA adapter; empty means the adapter's own reference."""
    threads: int = 2
    """CPU threads for merging, quantising and verifying."""
    verify: bool = True
    """Run the parity and stop checks (a manifest of an unverified file fails the app's check)."""
    thresholds: ParityThresholds = field(default_factory=ParityThresholds)

    def __post_init__(self) -> None:
        unknown = [q for q in self.quantisations if q not in QUANTISATIONS]
        if unknown or not self.quantisations:
            raise ExportError(f"unknown quantisation(s) {unknown}; choose from {', '.join(QUANTISATIONS)}")
        if len(set(self.quantisations)) != len(self.quantisations):
            raise ExportError("each quantisation may be given once")
        if not self.license.strip():
            raise ExportError("give the licence of the weights (--license, e.g. apache-2.0)")
        if self.threads < 1:
            raise ExportError("threads must be at least 1")


@dataclass(frozen=True)
class Source:
    """What an export reads: a full model folder, or an adapter and its base."""

    model_dir: Path | None
    adapter_dir: Path | None
    base_dir: Path | None
    tokenizer_dir: Path
    name: str
    base_model: str
    run_id: str | None = None
    data_sha256: str | None = None
    evaluation: dict = field(default_factory=dict)

    @property
    def weights_dir(self) -> Path:
        return self.model_dir or self.base_dir  # type: ignore[return-value]


@dataclass(frozen=True)
class ExportedFile:
    path: Path
    manifest_path: Path
    manifest: ModelManifest


@dataclass(frozen=True)
class ExportResult:
    files: tuple[ExportedFile, ...]
    seconds: float
    convert_seconds: float
    quantise_seconds: dict[str, float]

    def file(self, quantisation: str) -> ExportedFile:
        return next(f for f in self.files if f.manifest.quantisation == quantisation)


# ---- reading the source ------------------------------------------------------------


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ExportError(f"cannot read {path} ({type(err).__name__})") from None


def resolve_source(settings: ExportSettings) -> Source:
    path = Path(settings.source)
    if not path.is_dir():
        raise ExportError(f"no such folder: {path}")
    run_id = data_sha = None
    evaluation: dict = {}
    if (path / "run.json").is_file():
        runs = _read_json(path / "run.json").get("runs") or [{}]
        run_id, data_sha = path.name, runs[-1].get("data_sha256")
        results = runs[-1].get("results") or {}
        evaluation = {k: v for k, v in results.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        path = path / "final"
        if not path.is_dir():
            raise ExportError(f"{settings.source} holds no final model (final/): the run did not finish")
    name = settings.name or run_id or path.name
    if (path / "adapter_config.json").is_file():
        reference = settings.base_model or _read_json(path / "adapter_config.json").get("base_model_name_or_path") or ""
        base = Path(reference).expanduser()
        if not (base / "config.json").is_file():
            raise ExportError(
                f"the adapter's base model {reference!r} is not a local model folder: pass --base-model FOLDER"
            )
        tokenizer_dir = path if _has_tokenizer(path) else base
        return Source(None, path, base, tokenizer_dir, name, base.name, run_id, data_sha, evaluation)
    if (path / "config.json").is_file():
        base_model = settings.base_model or _read_json(path / "config.json").get("_name_or_path") or path.name
        return Source(path, None, None, path, name, Path(str(base_model)).name, run_id, data_sha, evaluation)
    raise ExportError(f"{path} is neither a model folder (config.json) nor a LoRA adapter (adapter_config.json)")


def _has_tokenizer(folder: Path) -> bool:
    return any((folder / f).is_file() for f in _TOKENIZER_FILES)


# ---- preflight ---------------------------------------------------------------------


def supported_architectures() -> frozenset[str]:
    """Architectures the vendored converter can write, read from its registry's source."""
    init = source_dir() / "conversion" / "__init__.py"
    tree = ast.parse(init.read_text(encoding="utf-8"))
    for node in tree.body:
        target = node.target if isinstance(node, ast.AnnAssign) else None
        if isinstance(target, ast.Name) and target.id == "TEXT_MODEL_MAP" and node.value is not None:
            return frozenset(ast.literal_eval(node.value))
    raise ConverterMissing(f"{init} has no TEXT_MODEL_MAP: the converter layout changed")


def check_architecture(weights_dir: Path) -> str:
    config = _read_json(weights_dir / "config.json")
    architectures = config.get("architectures") or []
    if not architectures:
        raise UnsupportedArchitecture(f"{weights_dir}/config.json names no architecture")
    arch = architectures[0]
    if arch not in supported_architectures():
        raise UnsupportedArchitecture(
            f"architecture {arch} is not supported by llama.cpp's converter (llama-cpp-python "
            f"{llama_cpp_version()}); the app can only run models llama.cpp converts"
        )
    return arch


def check_tokenizer(tokenizer_dir: Path) -> None:
    if not _has_tokenizer(tokenizer_dir):
        raise TokenizerMissing(
            f"{tokenizer_dir} has no tokenizer file ({' or '.join(_TOKENIZER_FILES)}): copy the "
            "tokenizer of the base model into it"
        )
    from transformers import AutoTokenizer

    vocab = AutoTokenizer.from_pretrained(tokenizer_dir).get_vocab()
    missing = [marker for marker in (fmt.IM_START, fmt.IM_END) if marker not in vocab]
    if missing:
        raise TokenizerMissing(
            f"the tokenizer in {tokenizer_dir} lacks the ChatML turn token(s) {', '.join(missing)} "
            "that the dialogue format needs"
        )


def count_parameters(weights_dir: Path) -> int:
    """Parameter count from the safetensors headers (no weights are read)."""
    files = sorted(weights_dir.glob("*.safetensors"))
    if not files:
        raise ExportError(f"{weights_dir} holds no .safetensors weights")
    total = 0
    for path in files:
        with path.open("rb") as f:
            (length,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(length))
        for name, info in header.items():
            if name != "__metadata__":
                count = 1
                for dim in info["shape"]:
                    count *= dim
                total += count
    return total


def required_bytes(n_params: int, quantisations: tuple[str, ...], merging: bool) -> int:
    """What this export writes at most: outputs, the intermediate GGUF and its stamped
    copy, and the merged model when an adapter is merged."""
    intermediate = "f32" if "f32" in quantisations else "f16"
    total = sum(n_params * _BYTES_PER_WEIGHT[q] + _FILE_OVERHEAD for q in quantisations)
    total += 2 * (n_params * _BYTES_PER_WEIGHT[intermediate] + _FILE_OVERHEAD)
    if merging:
        total += n_params * 4.0
    return int(total * _DISK_MARGIN)


def check_disk_space(folder: Path, needed: int) -> None:
    probe = folder
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free < needed:
        raise InsufficientDiskSpace(
            f"not enough disk space in {probe}: this export needs about {needed / 1e6:.0f} MB "
            f"and {free / 1e6:.0f} MB are free; free space or choose fewer quantisations"
        )


# ---- the steps ---------------------------------------------------------------------


def merge_adapter(source: Source, target: Path, threads: int) -> Path:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(threads)
    base = AutoModelForCausalLM.from_pretrained(source.base_dir, dtype=torch.float32)
    merged = PeftModel.from_pretrained(base, source.adapter_dir).merge_and_unload()
    merged.save_pretrained(target, safe_serialization=True)
    AutoTokenizer.from_pretrained(source.tokenizer_dir).save_pretrained(target)
    log.info("merged adapter %s into %s", source.adapter_dir, target)
    return target


def stamp_metadata(gguf_in: Path, gguf_out: Path, source: Source, settings: ExportSettings) -> None:
    """Write the chat template, stop tokens and provenance with llama.cpp's gguf-py."""
    spec = {
        "input": str(gguf_in),
        "output": str(gguf_out),
        "chat_template": CHATML_TEMPLATE,
        "special_tokens": {"eos": fmt.IM_END, "eot": fmt.IM_END},
        "strings": {
            "general.name": source.name,
            "general.license": settings.license,
            "general.base_model.0.name": source.base_model,
            "therapist.dialogue_format": "chatml",
            "therapist.run_id": source.run_id or "",
            "therapist.data_sha256": source.data_sha256 or "",
            "therapist.evaluation": json.dumps(source.evaluation, sort_keys=True),
        },
        "uints": {"general.base_model.count": 1},
    }
    spec_path = gguf_out.with_suffix(".stamp.json")
    spec_path.write_text(json.dumps(spec), encoding="utf-8")
    src = source_dir()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(src / "gguf-py"), env.get("PYTHONPATH")]))
    # -P: the script's folder (this package) must not shadow the modules gguf-py imports.
    done = subprocess.run(
        [sys.executable, "-P", str(Path(__file__).with_name("stamp.py")), str(spec_path)],
        env=env,
        capture_output=True,
        text=True,
    )
    spec_path.unlink()
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise ExportError(f"writing the GGUF metadata failed:\n{tail}")


def quantise(gguf_in: Path, gguf_out: Path, quantisation: str, threads: int) -> None:
    import llama_cpp

    from therapist_app.core.llama_runtime import init_backend

    init_backend()
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = _FTYPES[quantisation]
    params.nthread = threads
    status = llama_cpp.llama_model_quantize(os.fsencode(gguf_in), os.fsencode(gguf_out), params)
    if status != 0:
        raise ExportError(f"llama.cpp could not quantise to {quantisation} (status {status})")


def tensor_types(path: Path) -> tuple[dict[str, int], list[str]]:
    """Counts of each tensor type, and the 2-D weights stored in another type than intended."""
    from gguf import GGUFReader

    counts: dict[str, int] = {}
    matrices: list[tuple[str, str]] = []
    for tensor in GGUFReader(path).tensors:
        kind = tensor.tensor_type.name.lower()
        counts[kind] = counts.get(kind, 0) + 1
        if len(tensor.shape) == 2:
            matrices.append((tensor.name, kind))
    return dict(sorted(counts.items())), [f"{n}={k}" for n, k in matrices]


def _fallback_note(quantisation: str, matrices: list[str]) -> tuple[str, ...]:
    intended = _INTENDED[quantisation]
    other = [m for m in matrices if m.split("=", 1)[1] not in intended]
    if not other:
        return ()
    return (
        f"{len(other)} of {len(matrices)} weight matrices are not {'/'.join(sorted(intended))} "
        f"(llama.cpp falls back per tensor when rows do not fit the block size): {', '.join(other[:6])}"
        + (" ..." if len(other) > 6 else ""),
    )


def _unverified(notes: tuple[str, ...]):
    from therapist_app.core.model_manifest import Verification

    return Verification(
        True, False, False, False, False, 0.0, 0.0, 0.0, 0, False, notes + ("not verified (--no-verify)",)
    )


# ---- the export --------------------------------------------------------------------


def export_model(settings: ExportSettings) -> ExportResult:
    started = time.perf_counter()
    source = resolve_source(settings)
    arch = check_architecture(source.weights_dir)
    check_tokenizer(source.tokenizer_dir)
    out = Path(settings.output_dir)
    needed = required_bytes(
        count_parameters(source.weights_dir), settings.quantisations, source.adapter_dir is not None
    )
    check_disk_space(out, needed)
    targets = {q: out / f"{source.name}.{q}.gguf" for q in settings.quantisations}

    out.mkdir(parents=True, exist_ok=True)
    staging = out / f".export-{source.name}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    intermediate = "f32" if "f32" in settings.quantisations else "f16"
    steps = (
        (source.adapter_dir is not None)
        + 2
        + len(set(settings.quantisations) - {intermediate})
        + (1 + len(settings.quantisations)) * settings.verify
    )
    bar = progress(desc="export", total=steps, unit="step")
    try:
        if source.adapter_dir:
            bar.set_postfix_str("merging the adapter")
            hf_dir = merge_adapter(source, staging / "merged", settings.threads)
            bar.update()
        else:
            hf_dir = source.model_dir
        assert hf_dir is not None
        converted, stamped = staging / f"converted.{intermediate}.gguf", staging / f"stamped.{intermediate}.gguf"
        convert_started = time.perf_counter()
        bar.set_postfix_str(f"converting to {intermediate}")
        try:
            run_converter(hf_dir, converted, intermediate)
        except RuntimeError as failure:
            raise ExportError(str(failure)) from None
        bar.update()
        bar.set_postfix_str("writing metadata")
        stamp_metadata(converted, stamped, source, settings)
        bar.update()
        converted.unlink()
        convert_seconds = time.perf_counter() - convert_started

        quantise_seconds = {}
        for q in settings.quantisations:
            if q == intermediate:
                continue
            partial = staging / targets[q].name
            q_started = time.perf_counter()
            bar.set_postfix_str(f"quantising to {q}")
            quantise(stamped, partial, q, settings.threads)
            bar.update()
            quantise_seconds[q] = time.perf_counter() - q_started
            partial.replace(targets[q])
        if intermediate in settings.quantisations:
            stamped.replace(targets[intermediate])
        else:
            stamped.unlink()

        reference = None
        if settings.verify:
            bar.set_postfix_str("reference logits")
            reference = _reference(targets[settings.quantisations[0]], hf_dir, settings)
            bar.update()
        files = []
        for q in settings.quantisations:
            counts, matrices = tensor_types(targets[q])
            notes = _fallback_note(q, matrices)
            if reference is not None:
                bar.set_postfix_str(f"verifying {q}")
                verification = verify_gguf(targets[q], q, reference, settings.thresholds, settings.threads, notes)
                bar.update()
            else:
                verification = _unverified(notes)
            manifest = ModelManifest(
                file=targets[q].name,
                sha256=sha256_file(targets[q]),
                size_bytes=targets[q].stat().st_size,
                quantisation=q,
                tensor_types=counts,
                provenance=ModelProvenance(
                    name=source.name,
                    architecture=arch,
                    base_model=source.base_model,
                    license=settings.license,
                    run_id=source.run_id,
                    data_sha256=source.data_sha256,
                    evaluation=source.evaluation,
                    chat_template_sha256=_sha256_text(CHATML_TEMPLATE),
                    stop_token=fmt.IM_END,
                ),
                verification=verification,
                exported_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                tools=_tool_versions(),
            )
            files.append(ExportedFile(targets[q], write_manifest(manifest, out), manifest))
    finally:
        bar.close()
        shutil.rmtree(staging, ignore_errors=True)
    result = ExportResult(tuple(files), time.perf_counter() - started, convert_seconds, quantise_seconds)
    failed = [f for f in files if not f.manifest.verification.passed] if settings.verify else []
    if failed:
        raise VerificationFailed(
            "verification failed for "
            + ", ".join(
                f"{f.path.name} ({'; '.join(f.manifest.verification.notes) or 'see its manifest'})" for f in failed
            )
        )
    return result


def _reference(any_output: Path, hf_dir: Path, settings: ExportSettings) -> Reference:
    from therapist_app.core.llama_runtime import Model

    with Model(str(any_output), 0) as model:
        tokens = prompt_tokens(model)
    return hf_reference(hf_dir, tokens, settings.thresholds, settings.threads)


def _sha256_text(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _tool_versions() -> dict[str, str]:
    from importlib import metadata

    versions = {"llama-cpp-python": llama_cpp_version()}
    for name in ("therapist-assistant", "transformers", "peft"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions
