"""`therapist-trainer export`: a trained model to verified, quantised GGUF files and manifests."""

from __future__ import annotations

import argparse
from pathlib import Path

from trainer.export.errors import ExportError
from trainer.llama_cpp_source import ConverterMissing
from trainer.run import command

DEFAULT_QUANTISATIONS = "f16,q8_0,q4_k_m"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="merge, convert, quantise and verify a trained model as GGUF files the app loads",
        description="Merge LoRA adapters, convert with llama.cpp's own converter, write the chat "
        "template, stop tokens and provenance, quantise with llama.cpp, check each file against "
        "the Hugging Face model, and write a manifest next to each GGUF.",
    )
    parser.add_argument(
        "source", type=Path, help="a training run folder, a LoRA adapter folder or a full Hugging Face model folder"
    )
    parser.add_argument(
        "-o", "--output-dir", type=Path, required=True, help="folder for the GGUF files and their manifests"
    )
    parser.add_argument(
        "--license", required=True, help="licence of the weights, written into the GGUF and manifest (e.g. apache-2.0)"
    )
    parser.add_argument(
        "--quantisations",
        default=DEFAULT_QUANTISATIONS,
        help="comma-separated output types from f32, f16, q8_0, q6_k, q5_k_m, q4_k_m, q4_0 (default: %(default)s)",
    )
    parser.add_argument(
        "--name", default="", help="model and file name (default: the run id or the source folder's name)"
    )
    parser.add_argument(
        "--base-model", default="", help="base model folder of a LoRA adapter (default: the adapter's own reference)"
    )
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (default: %(default)s)")
    parser.add_argument(
        "--no-verify", action="store_true", help="skip the parity and stop checks (the app then refuses the files)"
    )
    parser.add_argument(
        "--min-top1",
        type=float,
        default=0.99,
        help="least next-token top-1 agreement of f32/f16 files with the Hugging Face model (default: %(default)s)",
    )
    parser.add_argument(
        "--allow-no-stop",
        action="store_true",
        help="do not fail when no short sampled reply reaches <|im_end|> (for untrained "
        "test models; the stop-token metadata and run-on checks still apply)",
    )
    parser.set_defaults(func=run_export)


@command(ExportError, ConverterMissing, ValueError)  # ValueError: settings out of range
def run_export(args: argparse.Namespace) -> int:
    from trainer.export.model import ExportSettings, export_model
    from trainer.export.verify import ParityThresholds

    settings = ExportSettings(
        source=args.source,
        output_dir=args.output_dir,
        license=args.license,
        quantisations=tuple(q.strip().lower() for q in args.quantisations.split(",") if q.strip()),
        name=args.name,
        base_model=args.base_model,
        threads=args.threads,
        verify=not args.no_verify,
        thresholds=ParityThresholds(min_top1=args.min_top1, require_stop=not args.allow_no_stop),
    )
    result = export_model(settings)
    print(f"exported in {result.seconds:.1f}s (conversion {result.convert_seconds:.1f}s)")
    for exported in result.files:
        m = exported.manifest
        v = m.verification
        if not v.positions_compared:
            print(f"  {exported.path.name}: {m.size_bytes / 1e6:.1f} MB, sha256 {m.sha256[:16]}..., not verified")
            continue
        print(
            f"  {exported.path.name}: {m.size_bytes / 1e6:.1f} MB, sha256 {m.sha256[:16]}..., "
            f"top-1 {v.top1_agreement:.4f} over {v.positions_compared} positions, "
            f"max |dlogit| {v.max_abs_logit_error:.4f}, template {'ok' if v.template_matches else 'DIFFERS'}, "
            f"stops {'yes' if v.generation_stopped else 'no'}"
        )
        for note in v.notes:
            print(f"      note: {note}")
    print("register one with: therapist-app models add <file>.gguf")
    return 0
