"""Locates llama.cpp's own GGUF converter, version-matched with the installed llama-cpp-python.

The llama-cpp-python sdist vendors `convert_hf_to_gguf.py`, its `conversion/` package,
`gguf-py` and vocab-only GGUFs. `scripts/setup.sh` keeps that sdist in the user cache;
the parts the trainer needs are extracted from it once, next to it.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

from platformdirs import user_cache_dir

_WANTED = ("convert_hf_to_gguf.py", "convert_lora_to_gguf.py", "conversion/", "gguf-py/", "models/ggml-vocab-")


class ConverterMissing(RuntimeError):
    pass


def llama_cpp_version() -> str:
    return importlib.metadata.version("llama-cpp-python")


def cache_root() -> Path:
    return Path(user_cache_dir("therapist-assistant", appauthor=False))


def source_dir() -> Path:
    """The extracted converter folder for the installed llama-cpp-python version.

    THERAPIST_LLAMA_CPP_SRC overrides it (a llama.cpp checkout of the same version).
    """
    override = os.environ.get("THERAPIST_LLAMA_CPP_SRC")
    if override:
        path = Path(override)
        if not (path / "convert_hf_to_gguf.py").is_file():
            raise ConverterMissing(f"THERAPIST_LLAMA_CPP_SRC={path} has no convert_hf_to_gguf.py")
        return path
    version = llama_cpp_version()
    target = cache_root() / f"llama.cpp-{version}"
    if all((target / name).is_file() for name in ("convert_hf_to_gguf.py", "convert_lora_to_gguf.py")):
        return target
    sdist = cache_root() / "sdist" / f"llama_cpp_python-{version}.tar.gz"
    if not sdist.is_file():
        raise ConverterMissing(
            f"llama.cpp's converter is not available: {sdist} is missing. Run "
            "`bash scripts/setup.sh test` (or `pip download --no-deps --no-binary :all: "
            f"llama-cpp-python=={version} -d {sdist.parent}`)."
        )
    _extract(sdist, target)
    return target


def _extract(sdist: Path, target: Path) -> None:
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    prefix = "/vendor/llama.cpp/"
    with tarfile.open(sdist) as archive:
        for member in archive.getmembers():
            if prefix not in member.name or not (member.isfile() or member.isdir()):
                continue
            relative = member.name.split(prefix, 1)[1]
            if relative.startswith(_WANTED) and member.isfile():
                member.name = relative
                archive.extract(member, staging, filter="data")
    # Rename last so a half-extracted folder is never mistaken for a complete one.
    staging.rename(target)


def vocab_gguf(name: str) -> Path:
    """A vocab-only GGUF shipped with llama.cpp, e.g. 'gpt-2' or 'llama-bpe'."""
    path = source_dir() / "models" / f"ggml-vocab-{name}.gguf"
    if not path.is_file():
        raise ConverterMissing(f"llama.cpp ships no vocab named {name!r}")
    return path


def run_converter(model_dir: Path, outfile: Path, outtype: str = "f16", extra: list[str] | None = None) -> None:
    """Run convert_hf_to_gguf.py with the vendored gguf-py first on the path."""
    _run_script(
        "convert_hf_to_gguf.py",
        [str(model_dir), "--outfile", str(outfile), "--outtype", outtype, *(extra or [])],
        model_dir.name,
    )


def run_lora_converter(adapter_dir: Path, base_dir: Path, outfile: Path, outtype: str = "f16") -> None:
    """Run convert_lora_to_gguf.py: a PEFT adapter folder to a LoRA GGUF that llama.cpp
    applies at load; `base_dir` holds the base model's config (read offline)."""
    _run_script(
        "convert_lora_to_gguf.py",
        [str(adapter_dir), "--base", str(base_dir), "--outfile", str(outfile), "--outtype", outtype],
        adapter_dir.name,
    )


def _run_script(script: str, args: list[str], subject: str) -> None:
    src = source_dir()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(src / "gguf-py"), str(src), env.get("PYTHONPATH")]))
    env.setdefault("HF_HUB_OFFLINE", "1")
    done = subprocess.run([sys.executable, str(src / script), *args], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"{script} failed for {subject}:\n{tail}")
