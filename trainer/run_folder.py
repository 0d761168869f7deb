"""One folder per training run: what was run, on what, and how it went.

`config.toml` (the exact settings, loadable again), `run.json` (data hash, package
versions, git commit, device, command line, then the results), `metrics.jsonl` (one
line per log: step, loss, learning rate, tokens/s, validation loss, reward components),
`loss.png` and, where rewards were logged, `reward_curves.png`.
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
from typing import Sequence

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
            cwd=where,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
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
        curves = {
            "train loss": [(r["step"], r["loss"]) for r in rows if "loss" in r],
            "validation loss": [(r["step"], r["eval_loss"]) for r in rows if "eval_loss" in r],
        }
        return plot_curves({k: v for k, v in curves.items() if v}, self.path / "loss.png", "loss (reply tokens)")

    def plot_rewards(self) -> Path | None:
        """`reward_curves.png`: each reward component's mean and the total, where logged (GRPO)."""
        return plot_curves(reward_curves([self.path]), self.path / "reward_curves.png")


def reward_curves(runs: Sequence[Path]) -> dict[str, list[tuple[int, float]]]:
    """`rewards/<name>/mean` and the total `reward` per step from each run's metrics.jsonl."""
    curves: dict[str, list[tuple[int, float]]] = {}
    for run in runs:
        path = Path(run) / "metrics.jsonl"
        if not path.is_file():
            raise ValueError(f"{run} has no metrics.jsonl (not a training run folder)")
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            for key, value in row.items():
                if key == "reward" or (key.startswith("rewards/") and key.endswith("/mean")):
                    label = key.removeprefix("rewards/").removesuffix("/mean")
                    label = f"{Path(run).name}: {label}" if len(runs) > 1 else label
                    curves.setdefault(label, []).append((row["step"], value))
    return curves


def plot_curves(curves: dict[str, list[tuple[int, float]]], path: Path, ylabel: str = "mean reward") -> Path | None:
    """One line per curve against the step; nothing is written when there is no curve."""
    if not curves:
        return None
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(7, 4), dpi=100)
    for label, points in curves.items():
        # Markers keep a curve of one or two points (validation at start and end) visible.
        axes.plot(*zip(*points), marker="o" if len(points) < 3 else None, label=label)
    axes.set_xlabel("step")
    axes.set_ylabel(ylabel)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path)
    pyplot.close(figure)
    return path
