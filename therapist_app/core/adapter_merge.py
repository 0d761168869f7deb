"""The tuned default as one GGUF: the bundled model with the shipped LoRA adapter merged
into its weights, written once to the user's cache.

llama.cpp can apply the adapter at load, but then every decode step runs the adapter's
extra products beside each adapted weight (about 10% slower decode on 2 cores,
`bench/inference.py`). Merged, the tuned model decodes like the base. The adapted
weights are dequantised, given W + (alpha / rank) * B @ A, and stored as Q8_0 when they
were quantised (the adapter's changes are finer than a Q4_1 step and would mostly round
away) or in their own float type; every other tensor and all metadata are copied as
they are. NumPy and gguf-py only, no torch.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
from pathlib import Path

import numpy as np

from therapist_app.core import load_progress

log = logging.getLogger(__name__)

MERGED_TYPE_NAME = "Q8_0"


class MergeError(RuntimeError):
    """The adapter does not fit the base model or the merged file could not be written."""


def merged_name(base: Path, adapter: Path) -> str:
    """A file name that changes whenever the base model or the adapter does.

    Keyed by content, not path, so a merge made at install time (into the install's
    own folder, or into a package that is later unpacked elsewhere) is found again: the
    base's name, size and first and last MiB (its header, metadata and the tensors at
    both ends; reading all 100 MB at every start would cost more than it guards), and
    the adapter's bytes."""
    size = base.stat().st_size
    sample = hashlib.sha256(f"{base.name}|{size}|".encode())
    with base.open("rb") as f:
        sample.update(f.read(_SAMPLE))
        f.seek(max(0, size - _SAMPLE))
        sample.update(f.read(_SAMPLE))
    sample.update(hashlib.sha256(adapter.read_bytes()).digest())
    return f"merged-{sample.hexdigest()[:16]}.gguf"


_SAMPLE = 1 << 20


def _lora_pairs(adapter) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], float]:
    """{base tensor name: (A [rank, in], B [out, rank])} and the scale alpha / rank."""
    fields = adapter.fields
    if "adapter.type" not in fields or bytes(fields["adapter.type"].parts[-1]).decode() != "lora":
        raise MergeError("the adapter file is not a LoRA adapter")
    alpha = float(fields["adapter.lora.alpha"].parts[-1][0])
    tensors = {t.name: np.asarray(t.data, dtype=np.float32) for t in adapter.tensors}
    pairs = {}
    for name, a in tensors.items():
        if name.endswith(".lora_a"):
            base = name[: -len(".lora_a")]
            b = tensors.get(base + ".lora_b")
            if b is None or a.shape[0] != b.shape[1]:
                raise MergeError(f"adapter tensor {name} has no matching lora_b")
            pairs[base] = (a, b)
    if not pairs:
        raise MergeError("the adapter holds no LoRA tensors")
    ranks = {a.shape[0] for a, _ in pairs.values()}
    if len(ranks) != 1:
        raise MergeError(f"the adapter mixes ranks {sorted(ranks)}")
    return pairs, alpha / ranks.pop()


def merge_lora(base: Path, adapter: Path, out: Path) -> Path:
    """Write `base` with `adapter` merged in to `out` (atomically) and return it."""
    from gguf import GGMLQuantizationType, GGUFReader, GGUFValueType, GGUFWriter
    from gguf.quants import dequantize, quantize

    reader = GGUFReader(str(base))
    pairs, scale = _lora_pairs(GGUFReader(str(adapter)))
    missing = set(pairs) - {t.name for t in reader.tensors}
    if missing:
        raise MergeError(f"the adapter changes tensors the model lacks: {', '.join(sorted(missing)[:3])}")
    arch = bytes(reader.fields["general.architecture"].parts[-1]).decode()
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + f".{os.getpid()}.part")
    writer = GGUFWriter(str(partial), arch)
    try:
        for field in reader.fields.values():
            if field.name.startswith("GGUF.") or field.name == "general.architecture":
                continue  # written by the writer itself
            vtype = field.types[0]
            sub_type = field.types[-1] if vtype == GGUFValueType.ARRAY else None
            writer.add_key_value(field.name, field.contents(), vtype, sub_type=sub_type)
        floats = (GGMLQuantizationType.F32, GGMLQuantizationType.F16)
        for tensor in reader.tensors:
            if tensor.name in pairs:
                a, b = pairs[tensor.name]
                weight = dequantize(np.asarray(tensor.data), tensor.tensor_type).astype(np.float32)
                if weight.shape != (b.shape[0], a.shape[1]):
                    raise MergeError(
                        f"{tensor.name}: adapter shape {b.shape[0]}x{a.shape[1]} "
                        f"does not fit the weight's {weight.shape[0]}x{weight.shape[1]}"
                    )
                weight += scale * (b @ a)
                merged_type = (
                    tensor.tensor_type if tensor.tensor_type in floats else GGMLQuantizationType[MERGED_TYPE_NAME]
                )
                writer.add_tensor(tensor.name, quantize(weight, merged_type), raw_dtype=merged_type)
            else:
                writer.add_tensor(tensor.name, np.asarray(tensor.data), raw_dtype=tensor.tensor_type)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        partial.replace(out)
    except BaseException:
        writer.close()
        partial.unlink(missing_ok=True)
        raise
    return out


def default_cache() -> Path:
    import platformdirs

    from therapist_app.core.policy import APP_NAME

    return platformdirs.user_cache_path(APP_NAME) / "models"


def install_folder() -> Path:
    """Where an install keeps merges made when it was set up: inside a packaged app's
    own folder, else the Python environment's `share/therapist-app/models`."""
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle is not None:
        return Path(bundle) / "merged_models"
    return Path(sys.prefix) / "share" / "therapist-app" / "models"


def merged_model(base: Path, adapter: Path, cache: Path | None = None) -> Path:
    """`base` with `adapter` merged in: the install's merge when setup made it, else the
    one in `cache` (default: the user's cache folder), made on first use (about 4 s
    for the bundled model on 2 cores)."""
    name = merged_name(base, adapter)
    installed = install_folder() / name
    if installed.is_file():
        return installed
    path = (cache or default_cache()) / name
    if not path.is_file():
        log.info("merging the adapter %s into %s (once)", adapter.name, base.name)
        load_progress.report("preparing the tuned model (once)", 0.0)
        merge_lora(base, adapter, path)
    return path


def main(argv: list[str] | None = None) -> int:
    """Merge the shipped adapter into the bundled model at install time (setup.sh and
    the package build call this), so a fresh profile's first start does not."""
    import argparse

    from therapist_app.core.model_file import bundled_model_path, default_adapter_path

    parser = argparse.ArgumentParser(prog="python -m therapist_app.core.adapter_merge", description=main.__doc__)
    parser.add_argument(
        "--into", type=Path, default=None, help=f"folder for the merged model (default: {install_folder()})"
    )
    args = parser.parse_args(argv)
    adapter = default_adapter_path()
    if adapter is None:
        print("no default adapter is shipped: nothing to merge")
        return 0
    base = bundled_model_path()
    out = (args.into or install_folder()) / merged_name(base, adapter)
    if not out.is_file():
        merge_lora(base, adapter, out)
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
