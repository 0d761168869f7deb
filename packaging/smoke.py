"""Smoke-test a packaged build as a clinic machine would run it.

    .venv/bin/python packaging/smoke.py [dist/therapist-assistant-<v>-linux-<arch>.tar.gz]

1. Extract the tarball into a fresh temporary folder.
2. Run the binary with a clean environment: a new HOME and XDG folders (so no user or
   system policy, settings or store from this machine), PATH without any virtualenv,
   no PYTHON* variables, QT_QPA_PLATFORM=offscreen.
3. `--version` must name llama.cpp, SQLCipher and Qt.
4. `selftest --gui require` must exit 0: it starts, creates an encrypted store, writes
   one suggestion on the bundled model, records the decision, exports, locks, reopens,
   and opens and closes the main window.
5. Where `strace` exists, the self-test runs again under it and must create no
   AF_INET/AF_INET6 socket and make no connect() call to one: this sees the native
   libraries (llama.cpp, Qt, OpenSSL) as well as Python.

Prints `RESULT package_mb=.. installed_mb=.. cold_start_s=.. ...` on success. Cold start
is wall time from launching the process to the self-test's "ready" line (store
created, model and analysis loaded: the moment the app could take a client turn), on a
fresh extraction but with the OS file cache as the extraction left it.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APP_NAME = "therapist-app"
READY = re.compile(r"^selftest: ready after")
# strace lines for sockets of the two internet families, and connects to them.
NETWORK_SYSCALL = re.compile(r"\b(socket|socketpair)\((AF_INET6?|PF_INET6?)\b|connect\(\d+, \{sa_family=AF_INET6?\b")


class SmokeFailed(Exception):
    pass


@dataclass(frozen=True)
class Timed:
    returncode: int
    output: str
    seconds: float
    ready_s: float | None


def default_tarball() -> Path:
    sys.path.insert(0, str(ROOT))
    from therapist_app import __version__

    found = sorted((ROOT / "dist").glob(f"therapist-assistant-{__version__}-linux-*.tar.gz"))
    if not found:
        raise SmokeFailed("no tarball in dist/: run packaging/build.py first")
    return found[-1]


def clean_env(home: Path) -> dict[str, str]:
    """A first-login environment: nothing from this shell, venv or user carries over."""
    dirs = {
        name: home / sub
        for name, sub in (
            ("XDG_CONFIG_HOME", ".config"),
            ("XDG_DATA_HOME", ".local/share"),
            ("XDG_CACHE_HOME", ".cache"),
            ("XDG_STATE_HOME", ".local/state"),
            ("XDG_RUNTIME_DIR", "runtime"),
            ("XDG_CONFIG_DIRS", "etc-xdg"),
            ("XDG_DATA_DIRS", "usr-share"),
            ("TMPDIR", "tmp"),
        )
    }
    for path in dirs.values():
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return {
        "HOME": str(home),
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "QT_QPA_PLATFORM": "offscreen",
        **{name: str(path) for name, path in dirs.items()},
    }


def run_timed(command: list[str], env: dict[str, str], cwd: Path, timeout: float) -> Timed:
    """Run, echo output lines as they come, and note when the 'ready' line appeared."""
    started = time.perf_counter()
    ready_s = None
    lines = []
    process = subprocess.Popen(
        command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )
    assert process.stdout is not None
    try:
        for line in process.stdout:
            if ready_s is None and READY.match(line):
                ready_s = time.perf_counter() - started
            lines.append(line)
            print("    " + line.rstrip(), flush=True)
            if time.perf_counter() - started > timeout:
                raise SmokeFailed(f"{command[1:]} took longer than {timeout:.0f} s")
        returncode = process.wait(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return Timed(returncode, "".join(lines), time.perf_counter() - started, ready_s)


def strace_command(output: Path) -> list[str]:
    """Follow every process and thread; log socket creation and connects, one file each."""
    return [
        "strace",
        "-f",
        "-ff",
        "-qq",
        "-e",
        "signal=none",
        "-e",
        "trace=socket,socketpair,connect",
        "-o",
        str(output),
    ]


def network_syscalls(trace: Path) -> list[str]:
    hits = []
    for path in trace.parent.glob(trace.name + "*"):  # -ff writes one file per process
        hits += [line.strip() for line in path.read_text(errors="replace").splitlines() if NETWORK_SYSCALL.search(line)]
    return hits


def smoke(tarball: Path, threads: int, use_strace: bool) -> dict[str, str]:
    package_mb = tarball.stat().st_size / 1e6
    with tempfile.TemporaryDirectory(prefix="therapist-smoke-") as tmp:
        tmp_path = Path(tmp)
        install = tmp_path / "opt"
        with tarfile.open(tarball) as tar:
            tar.extractall(install, filter="data")
        (top,) = list(install.iterdir())
        binary = top / APP_NAME
        installed_mb = sum(p.stat().st_size for p in top.rglob("*") if p.is_file() and not p.is_symlink()) / 1e6
        env = clean_env(tmp_path / "home")
        workdir = tmp_path / "home"

        print(f"+ {binary} --version")
        version = run_timed([str(binary), "--version"], env, workdir, 120)
        if version.returncode != 0:
            raise SmokeFailed(f"--version exited {version.returncode}")
        for component in ("llama.cpp:", "SQLCipher:", "Qt:"):
            if component not in version.output:
                raise SmokeFailed(f"--version does not report {component[:-1]}")

        selftest = [str(binary), "selftest", "--gui", "require", "--threads", str(threads)]
        print("+ " + " ".join(selftest[1:]))
        result = run_timed(selftest, env, workdir, 600)
        if result.returncode != 0 or "selftest: passed" not in result.output:
            raise SmokeFailed(f"selftest exited {result.returncode}")
        if result.ready_s is None:
            raise SmokeFailed("selftest never printed its ready line")

        network = "not checked (no strace)"
        if use_strace and shutil.which("strace"):
            # The check must be able to fail: a process that does open an internet
            # socket has to be caught by the same trace and the same pattern.
            control = tmp_path / "control.out"
            subprocess.run(
                strace_command(control)
                + [sys.executable, "-c", "import socket; socket.socket(socket.AF_INET).close()"],
                check=True,
                timeout=120,
            )
            if not network_syscalls(control):
                raise SmokeFailed("the strace check does not see a known AF_INET socket")
            trace = tmp_path / "strace.out"
            print("+ strace ... selftest (network system calls of every process and thread)")
            traced = run_timed(strace_command(trace) + selftest, env, workdir, 900)
            if traced.returncode != 0:
                raise SmokeFailed(f"selftest under strace exited {traced.returncode}")
            hits = network_syscalls(trace)
            if hits:
                raise SmokeFailed("network system calls seen:\n  " + "\n  ".join(hits[:20]))
            network = "0"
    return {
        "package_mb": f"{package_mb:.1f}",
        "installed_mb": f"{installed_mb:.1f}",
        "cold_start_s": f"{result.ready_s:.2f}",
        "selftest_s": f"{result.seconds:.2f}",
        "version_s": f"{version.seconds:.2f}",
        "network_syscalls": network.replace(" ", "_"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Smoke-test the packaged tarball on a clean environment.")
    parser.add_argument("tarball", nargs="?", type=Path, help="default: the newest in dist/")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for the model (default 2)")
    parser.add_argument("--no-strace", action="store_true", help="skip the system-call network check")
    args = parser.parse_args(argv)
    try:
        tarball = args.tarball or default_tarball()
        print(f"smoke-testing {tarball}")
        result = smoke(tarball, args.threads, not args.no_strace)
    except SmokeFailed as error:
        print(f"SMOKE FAILED: {error}", file=sys.stderr)
        return 1
    print("RESULT " + " ".join(f"{k}={v}" for k, v in result.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
