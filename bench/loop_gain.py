"""Does a DPO round on a therapist's decisions raise the reward on held-out data? (issue 21)

    .venv/bin/python bench/loop_gain.py --sessions runs/corpus/validation.jsonl \
        --rounds 150 --model runs/default/sft --eval-data runs/corpus/test.jsonl \
        --examples 280 --out runs/loop-gain

1. A week in a clinic, played through the app's own pieces: a real encrypted store, the
   analyser, and best-of-N suggestion rounds from the current default model (the bundled
   SmolLM2 with its tuned adapter), each round stored as the session controller stores it
   (client turn, shown drafts, crisis acknowledgement, decisions, the therapist's turn).
   The client's words come from authored sessions that trained nothing (`--sessions`).
2. The therapist's decisions are simulated from what the session's author wrote as the
   therapist's next reply (never the reward pack): each shown draft is compared with it
   by MiniLM cosine. The closest draft is accepted at ACCEPT or above; it is edited into
   the author's reply at EDIT or above, or when it takes the author's strategy (the right
   move, in other words); otherwise every draft is rejected and the author's reply typed
   as the therapist's own. Drafts under REJECT are rejected, the rest left "not chosen".
   The thresholds sit on the spread of greedy replies' cosine to the author's (median
   0.26, 90th percentile 0.49), so every decision kind occurs.
3. `therapist-trainer loop` on that store: de-identified export, pairs, DPO (+NLL) from
   the current default's Hugging Face folder, GGUF export with its checks, registration.
4. `therapist-trainer eval` (greedy) of the current default, exported by the same path
   and quantisation, and of the loop's model, on the same held-out examples.

Ends with `RESULT reward_before=.. reward_after=.. reward_gain=.. gain_low=.. gain_high=..
rougeL_before=.. rougeL_after=.. pairs=..`: gain_low/high are a paired bootstrap 95%
interval of the mean per-example gain. A stage whose output exists is not run again.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

from priming import METRICS, ROOT, TRAINER, trainer

ACCEPT, EDIT, REJECT = 0.60, 0.30, 0.20
PASSPHRASE = "a long bench passphrase for the loop"


def fill_store(store_path: Path, sessions: Path, rounds: int, seed: int) -> Counter:
    """Play the authored sessions' client turns through the app's analyser and suggestion
    rounds, storing and deciding each round as the session controller does."""
    from therapist_app.core.analysis import Analyzer
    from therapist_app.core.best_of_n import default_scorer
    from therapist_app.core.dialogue_format import Example, SuggestionRequest, Turn
    from therapist_app.core.draft_round import DraftRound
    from therapist_app.core.embedder import default_embedder
    from therapist_app.core.engine import EngineConfig, SuggestionEngine
    from therapist_app.core.model_file import resolve_choice
    from therapist_app.core.store import Store

    lines = sessions.read_text(encoding="utf-8").splitlines()
    examples = [Example.from_dict(json.loads(line)) for line in lines if line.strip()]
    by_session: dict[str, list[Example]] = {}
    for example in examples:
        by_session.setdefault(example.conversation_id, []).append(example)
    analyzer, scorer, embedder = Analyzer.load(), default_scorer(), default_embedder()
    model_path, adapter_path = resolve_choice(None)
    counts: Counter = Counter()
    engine = SuggestionEngine(EngineConfig(model_path=model_path, adapter_path=adapter_path, seed=seed))
    with engine, Store.create(store_path, PASSPHRASE, profile_name="bench therapist") as store:
        for number, (conversation, turns) in enumerate(by_session.items()):
            if counts["rounds"] >= rounds:
                break
            session = store.start_session(store.add_client(f"B-{number:03d}").id)
            context: list[Turn] = []
            for example in turns:
                if counts["rounds"] >= rounds:
                    break
                analysis = analyzer.analyse(example.client_words, context)
                emotion = analysis.emotion
                client = store.append_utterance(
                    session.id,
                    "client",
                    example.client_words,
                    emotion=emotion.label if emotion else None,
                    confidence=emotion.confidence if emotion else None,
                    risk_flags=analysis.risk.categories,
                )
                if analysis.risk.flagged:
                    store.acknowledge_risk(client.id, "bench therapist")
                reading = emotion.reading() if emotion and not emotion.uncertain else None
                request = SuggestionRequest(example.client_words, tuple(context), reading)
                result = DraftRound(engine, request, scorer, analysis.risk.categories).complete()
                shown = [r.draft for r in result.ranking.shown]
                ids = [
                    store.add_suggestion(
                        client.id, "authored" if d.source == "authored" else "default", d.strategy, d.text, 0.0
                    ).id
                    for d in shown
                ]
                reply = decide(store, session.id, client.id, ids, shown, example, embedder, counts)
                context += [Turn("client", example.client_words), Turn("therapist", reply)]
                counts["rounds"] += 1
            store.end_session(session.id)
    return counts


def decide(store, session_id: int, client_id: int, ids, shown, example, embedder, counts: Counter) -> str:
    """The simulated therapist: its reply is a draft it accepted, a draft edited into the
    author's reply, or the author's reply typed as its own."""
    reference = example.reply
    if not shown:
        store.own_reply(session_id, reference)
        counts["own_no_drafts"] += 1
        return reference
    vectors = embedder.embed([reference, *(d.text for d in shown)])
    similarity = vectors[1:] @ vectors[0]
    best = int(similarity.argmax())
    if similarity[best] < EDIT:
        same_move = [i for i, d in enumerate(shown) if d.strategy == example.strategy]
        best = max(same_move, key=lambda i: similarity[i]) if same_move else None
    rejected = [i for i in range(len(ids)) if i != best and (best is None or similarity[i] < REJECT)]
    for i in rejected:
        store.decide(ids[i], "rejected")
    counts["rejected"] += len(rejected)
    if best is None:
        store.own_reply(session_id, reference)
        counts["own"] += 1
        return reference
    decision = "accepted" if similarity[best] >= ACCEPT else "edited"
    turn = store.use_suggestion(ids[best], decision, reference if decision == "edited" else None)
    counts["not_chosen"] += len(ids) - 1 - len(rejected)  # left open, closed by the used draft
    counts[decision] += 1
    return turn.text


def run_loop(store: Path, model: Path, out: Path, args: argparse.Namespace) -> dict:
    read_end, write_end = os.pipe()
    os.write(write_end, (PASSPHRASE + "\n").encode())
    os.close(write_end)
    command = [
        *TRAINER,
        "loop",
        "--store",
        str(store),
        "--passphrase-fd",
        str(read_end),
        "--model",
        str(model / "merged"),
        "--output-dir",
        str(out),
        "--run-name",
        "loop",
        "--system-policy",
        str(out / "no-system-policy.toml"),
        "--user-policy",
        str(out / "no-user-policy.toml"),
        "--max-steps",
        str(args.steps),
        "--batch-size",
        str(args.batch_size),
        "--learning-rate",
        str(args.learning_rate),
        "--ld-alpha",
        str(args.ld_alpha),
        "--beta",
        str(args.beta),
        "--max-length",
        "384",
        "--seed",
        str(args.seed),
    ]
    done = subprocess.run(command, cwd=ROOT, pass_fds=(read_end,))
    os.close(read_end)
    if done.returncode != 0:
        raise SystemExit(f"therapist-trainer loop failed (exit {done.returncode})")
    return json.loads((out / "loop" / "loop.json").read_text())["stages"]


def export_before(model: Path, out: Path) -> Path:
    """The current default through the loop's own export path and quantisation, so the
    comparison is of training, not of conversion."""
    from trainer.export.model import ExportSettings, export_model

    return (
        export_model(
            ExportSettings(
                source=model / "merged", output_dir=out, license="apache-2.0", quantisations=("q8_0",), name="before"
            )
        )
        .file("q8_0")
        .path
    )


def evaluate(model: Path, data: str, examples: int, out: Path) -> tuple[dict, list[float]]:
    if not (out / "results.json").is_file():
        trainer("eval", "--model", str(model), "--data", data, "--split", "all", "--max-examples", str(examples),
                "--output-dir", str(out), "--save-replies")  # fmt: skip
    rows = [json.loads(line) for line in (out / "replies.jsonl").read_text().splitlines()]
    return json.loads((out / "results.json").read_text())["result"], [r["reward_total"] for r in rows]


def paired_interval(before: list[float], after: list[float], seed: int, draws: int = 5000) -> tuple[float, float]:
    gains = [a - b for a, b in zip(after, before)]
    rng = random.Random(seed)
    means = sorted(sum(rng.choices(gains, k=len(gains))) / len(gains) for _ in range(draws))
    return means[int(0.025 * draws)], means[int(0.975 * draws) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=Path, default=ROOT / "runs/corpus/validation.jsonl")
    parser.add_argument("--rounds", type=int, default=150, help="suggestion rounds the simulated therapist decides")
    parser.add_argument("--model", type=Path, default=ROOT / "runs/default/sft", help="the default's SFT run folder")
    parser.add_argument("--eval-data", default="runs/corpus/test.jsonl")
    parser.add_argument("--examples", type=int, default=280)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument(
        "--ld-alpha", type=float, default=1.0, help="LD-DPO weight of the longer reply's extra tokens (1: plain DPO)"
    )
    parser.add_argument(
        "--beta", type=float, default=0.1, help="DPO's beta: how closely the policy stays by the start model"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "loop-gain")
    args = parser.parse_args()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    store = out / "store.db"
    if not store.exists():
        counts = fill_store(store, args.sessions, args.rounds, args.seed)
        (out / "decisions.json").write_text(json.dumps(counts, indent=2) + "\n")
    counts = json.loads((out / "decisions.json").read_text())
    print("decisions:", counts)
    stages = (
        json.loads((out / "loop" / "loop.json").read_text())["stages"]
        if (out / "loop" / "loop.json").is_file()
        else None
    )
    if stages is None or "register" not in stages:
        stages = run_loop(store, args.model.resolve(), out, args)
    before_gguf = next((out / "before").glob("*.gguf"), None) or export_before(args.model.resolve(), out / "before")
    before, before_totals = evaluate(before_gguf, args.eval_data, args.examples, out / "eval-before")
    after, after_totals = evaluate(Path(stages["gguf"]["file"]), args.eval_data, args.examples, out / "eval-after")
    low, high = paired_interval(before_totals, after_totals, args.seed)
    lines = ["| figure | before | after |", "|---|---|---|"]
    lines += [f"| {name} | {before[name]:.4f} | {after[name]:.4f} |" for name in METRICS]
    lines += [
        f"| reward {k} | {before['rewards'][k]:.4f} | {after['rewards'][k]:.4f} |" for k in sorted(before["rewards"])
    ]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(
        f"RESULT reward_before={before['reward_total']:.4f} reward_after={after['reward_total']:.4f} "
        f"reward_gain={after['reward_total'] - before['reward_total']:.4f} gain_low={low:.4f} gain_high={high:.4f} "
        f"rougeL_before={before['rougeL']:.4f} rougeL_after={after['rougeL']:.4f} pairs={stages['pairs']['pairs']}"
    )


if __name__ == "__main__":
    sys.exit(main())
