"""Behaviour priming, measured: primed and unprimed SFT on the same data, side by side.

    .venv/bin/python bench/priming.py --model runs/smollm2 --data runs/corpus \
        --steps 40 --priming-steps 12 --examples 40 --out runs/priming

Two runs from the same base model, seed and corpus steps:
- unprimed: SFT on the corpus;
- primed: SFT on `assets/behaviour_priming.jsonl` (authored exchanges that check
  understanding, summarise, or ask before advising) first, then the same corpus SFT;
then `eval` of both on the same held-out examples. The report (`<out>/report.md`) puts
the reward pack, the lexical metrics and the behaviour counts (trainer/behaviours.py) in
two columns. Ends with `RESULT primed_behaviours=.. unprimed_behaviours=..
behaviour_ratio=.. primed_reward=.. unprimed_reward=.. reward_ratio=..` (behaviours: the
held-out replies showing each behaviour, summed over the behaviours; ratios primed /
unprimed).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRAINER = [sys.executable, "-m", "trainer.cli"]
METRICS = ("reward_total", "rougeL", "bleu", "meteor", "distinct2", "violations_per_100")


def trainer(*args: str) -> None:
    done = subprocess.run([*TRAINER, *args], cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"therapist-trainer {args[0]} failed (exit {done.returncode})")


def sft(model: str, data: str, steps: int, out: Path, name: str, seed: int) -> Path:
    trainer(
        "sft",
        "--config",
        "configs/sft/corpus_lora_cpu.toml",
        "--model",
        model,
        "--data",
        data,
        "--max-steps",
        str(steps),
        "--output-dir",
        str(out),
        "--run-name",
        name,
        "--seed",
        str(seed),
        "--save-steps",
        str(max(steps, 1)),
        "--merge-lora",
    )
    return out / name / "merged"


def evaluate(model: Path, data: str, examples: int, out: Path, seed: int) -> dict:
    trainer(
        "eval",
        "--model",
        str(model),
        "--data",
        data,
        "--split",
        "test",
        "--max-examples",
        str(examples),
        "--seed",
        str(seed),
        "--output-dir",
        str(out),
    )
    return json.loads((out / "results.json").read_text())["result"]


def priming_split(folder: Path) -> str:
    """The priming exchanges as a split folder: all of them to train on; a copy as the
    (unused) validation split, since the SFT command expects one."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = (ROOT / "assets" / "behaviour_priming.jsonl").read_text(encoding="utf-8")
    for split in ("train", "validation", "test"):
        (folder / f"{split}.jsonl").write_text(rows, encoding="utf-8")
    return str(folder)


def report(results: dict[str, dict], examples: int) -> str:
    lines = ["# Behaviour priming: primed vs unprimed SFT", "", "| figure | primed | unprimed |", "|---|---|---|"]
    for name in METRICS:
        lines.append(f"| {name} | {results['primed'][name]:.4f} | {results['unprimed'][name]:.4f} |")
    behaviours = sorted(set(results["primed"]["behaviours"]) | set(results["unprimed"]["behaviours"]))
    for name in behaviours:
        lines.append(
            f"| replies {name} (of {examples}) | {results['primed']['behaviours'].get(name, 0)} | "
            f"{results['unprimed']['behaviours'].get(name, 0)} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="runs/smollm2", help="base Hugging Face folder")
    parser.add_argument("--data", default="runs/corpus", help="corpus split folder (train/validation/test)")
    parser.add_argument("--steps", type=int, default=40, help="corpus SFT steps, the same for both")
    parser.add_argument("--priming-steps", type=int, default=12, help="SFT steps on the priming set first")
    parser.add_argument("--examples", type=int, default=40, help="held-out examples evaluated")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "priming")
    args = parser.parse_args()
    out = args.out.resolve()
    with tempfile.TemporaryDirectory() as scratch:
        priming = priming_split(Path(scratch) / "priming")
        primed_base = sft(args.model, priming, args.priming_steps, out, "priming", args.seed)
        models = {
            "unprimed": sft(args.model, args.data, args.steps, out, "unprimed", args.seed),
            "primed": sft(str(primed_base), args.data, args.steps, out, "primed", args.seed),
        }
    results = {
        name: evaluate(model, args.data, args.examples, out / f"eval-{name}", args.seed)
        for name, model in models.items()
    }
    (out / "report.md").write_text(report(results, args.examples), encoding="utf-8")
    print(report(results, args.examples))
    showing = {name: sum(r["behaviours"].values()) for name, r in results.items()}
    reward = {name: r["reward_total"] for name, r in results.items()}
    print(
        f"RESULT primed_behaviours={showing['primed']} unprimed_behaviours={showing['unprimed']} "
        f"behaviour_ratio={showing['primed'] / max(showing['unprimed'], 1):.3f} "
        f"primed_reward={reward['primed']:.4f} unprimed_reward={reward['unprimed']:.4f} "
        f"reward_ratio={reward['primed'] / reward['unprimed']:.3f}"
    )


if __name__ == "__main__":
    main()
