"""One folder per training run: what was run, on what, and how it went.

`config.toml` (the exact settings, loadable again), `run.json` (data hash, package
versions, git commit, device, command line, then the results), `metrics.jsonl` (one
line per log: step, loss, learning rate, tokens/s, validation loss) and `loss.png`.
No example text is ever written here.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from trainer.config import to_toml

PACKAGES = ("torch", "transformers", "trl", "peft", "accelerate", "datasets", "tokenizers", "therapist-assistant")


def package_versions(names=PACKAGES) -> dict[str, str | None]:
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_commit(cwd: str | Path | None = None) -> str | None:
    """The checkout's commit, with `+dirty` when tracked files differ; None outside git."""
    where = Path(cwd) if cwd else Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=where, capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "")


@dataclass(frozen=True)
class RunFolder:
    path: Path

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def info_path(self) -> Path:
        return self.path / "run.json"

    def start(self, config, data_hash: str, extra: dict | None = None) -> None:
        """Record the config and provenance; a resumed run keeps its earlier record in `runs`."""
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / "config.toml").write_text(to_toml(config), encoding="utf-8")
        info = self.info()
        entry = {
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "data_sha256": data_hash,
            "git_commit": git_commit(),
            "packages": package_versions(),
            "argv": sys.argv,
            **(extra or {}),
        }
        info.setdefault("runs", []).append(entry)
        self._write_info(info)

    def info(self) -> dict:
        if self.info_path.is_file():
            return json.loads(self.info_path.read_text(encoding="utf-8"))
        return {}

    def finish(self, results: dict) -> None:
        info = self.info()
        info["runs"][-1]["results"] = results
        self._write_info(info)

    def _write_info(self, info: dict) -> None:
        self.info_path.write_text(json.dumps(info, indent=2, sort_keys=True) + "\n", encoding="utf-8")

    def log_metrics(self, record: dict) -> None:
        with self.metrics_path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(record, sort_keys=True) + "\n")

    def metrics(self) -> list[dict]:
        if not self.metrics_path.is_file():
            return []
        return [json.loads(line) for line in self.metrics_path.read_text(encoding="utf-8").splitlines() if line]

    def plot_loss(self) -> Path | None:
        """`loss.png`: training and validation loss against the optimiser step."""
        rows = self.metrics()
        train = [(r["step"], r["loss"]) for r in rows if "loss" in r]
        valid = [(r["step"], r["eval_loss"]) for r in rows if "eval_loss" in r]
        if not train and not valid:
            return None
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot

        figure, axes = pyplot.subplots(figsize=(6, 4), dpi=100)
        if train:
            axes.plot(*zip(*train), label="train loss")
        if valid:
            axes.plot(*zip(*valid), marker="o", label="validation loss")
        axes.set_xlabel("step")
        axes.set_ylabel("loss (reply tokens)")
        axes.grid(alpha=0.3)
        axes.legend()
        figure.tight_layout()
        out = self.path / "loss.png"
        figure.savefig(out)
        pyplot.close(figure)
        return out
