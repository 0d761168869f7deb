"""A blind rating of reply quality: `therapist-trainer blind-pack` and `blind-score`.

Lexical overlap and judged quality can disagree, so replies are also rated by a reviewer
who wrote none of the data. `blind-pack` takes held-out examples and the replies of each
system (eval's `replies.jsonl`, plus the human reference), shuffles every context's
replies with a seed, hides where they came from, and writes the pack the reviewer sees
(context, client words, replies labelled A, B, C...) and a separate key. `blind-score`
joins the reviewer's 1-5 ratings with the key and reports each system's mean and the
share rated 4 or 5 (the protocol is in docs/evaluation.md).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import defaultdict
from pathlib import Path

from trainer.data.records import DataError, read_jsonl

REFERENCE = "reference"


def _replies(path: Path) -> dict[str, str]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {row["id"]: row["reply"] for row in rows}


def build_pack(data: Path, systems: dict[str, Path], contexts: int, seed: int) -> tuple[list[dict], dict]:
    """(pack rows, key): `contexts` examples drawn with `seed` from those every system
    answered; each row's replies shuffled and lettered."""
    examples = [e for e in read_jsonl(data).examples if e.reply and e.id]
    replies = {name: _replies(path) for name, path in systems.items()}
    usable = [e for e in examples if all(e.id in r and r[e.id].strip() for r in replies.values())]
    if len(usable) < contexts:
        raise DataError(f"only {len(usable)} examples have a reply from every system; asked for {contexts}")
    rng = random.Random(seed)
    chosen = rng.sample(usable, contexts)
    pack, key = [], {}
    for number, example in enumerate(chosen, start=1):
        options = [(REFERENCE, example.reply)] + [(name, replies[name][example.id]) for name in systems]
        rng.shuffle(options)
        letters = [chr(ord("A") + i) for i in range(len(options))]
        item = f"item-{number:03d}"
        pack.append(
            {
                "item": item,
                "context": [f"{t.speaker.title()}: {t.text}" for t in example.context[-4:]],
                "client_words": example.client_words,
                "replies": {letter: text for letter, (_, text) in zip(letters, options)},
            }
        )
        key[item] = {"id": example.id, "systems": {letter: name for letter, (name, _) in zip(letters, options)}}
    return pack, key


def score(key: dict, ratings: dict) -> dict[str, dict[str, float]]:
    """Each system's mean rating, share rated 4 or 5, and count.

    >>> key = {"item-001": {"systems": {"A": "tuned", "B": "reference"}}}
    >>> score(key, {"item-001": {"A": 4, "B": 3}})["tuned"]
    {'mean': 4.0, 'share_4_or_5': 1.0, 'rated': 1}
    """
    given: dict[str, list[int]] = defaultdict(list)
    for item, letters in ratings.items():
        if item not in key:
            raise DataError(f"rating for unknown item {item!r}")
        for letter, value in letters.items():
            if letter not in key[item]["systems"]:
                raise DataError(f"{item} has no reply {letter!r}")
            if not isinstance(value, int) or not 1 <= value <= 5:
                raise DataError(f"{item} {letter}: a rating is a whole number from 1 to 5, not {value!r}")
            given[key[item]["systems"][letter]].append(value)
    return {
        name: {
            "mean": round(sum(v) / len(v), 3),
            "share_4_or_5": round(sum(x >= 4 for x in v) / len(v), 3),
            "rated": len(v),
        }
        for name, v in sorted(given.items())
    }


def register(subparsers: argparse._SubParsersAction) -> None:
    pack = subparsers.add_parser(
        "blind-pack",
        help="shuffle held-out replies of several systems (and the reference) into a blind rating pack",
        description="Write pack.json (what the reviewer sees: context, client words, replies lettered in a "
        "random order) and key.json (which system wrote each letter) for a blind 1-5 rating.",
    )
    pack.add_argument("--data", type=Path, required=True, help="held-out examples (JSONL with ids and references)")
    pack.add_argument(
        "--system",
        action="append",
        required=True,
        metavar="NAME=replies.jsonl",
        help="a system's replies (eval --save-replies); repeat per system",
    )
    pack.add_argument("--contexts", type=int, default=40, help="how many contexts to rate (default 40)")
    pack.add_argument("--seed", type=int, default=7, help="sampling and shuffling seed")
    pack.add_argument("-o", "--output-dir", type=Path, required=True, help="folder for pack.json and key.json")
    pack.set_defaults(func=run_pack)

    scored = subparsers.add_parser(
        "blind-score",
        help="join a reviewer's blind ratings with the key and report each system's mean",
        description="Read key.json and ratings.json ({item: {letter: 1-5}}) and print each system's mean "
        "rating and share rated 4 or 5; end with a RESULT line.",
    )
    scored.add_argument("--key", type=Path, required=True, help="key.json from blind-pack")
    scored.add_argument("--ratings", type=Path, required=True, help="the reviewer's ratings.json")
    scored.set_defaults(func=run_score)


def run_pack(args: argparse.Namespace) -> int:
    try:
        systems = {}
        for item in args.system:
            name, _, path = item.partition("=")
            if not path or name == REFERENCE:
                raise DataError(f"--system wants NAME=FILE with a name other than {REFERENCE!r}, not {item!r}")
            systems[name] = Path(path)
        pack, key = build_pack(args.data, systems, args.contexts, args.seed)
    except (DataError, OSError, json.JSONDecodeError, KeyError) as problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / "pack.json").write_text(json.dumps(pack, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    (args.output_dir / "key.json").write_text(json.dumps(key, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {len(pack)} items with {len(pack[0]['replies'])} replies each to {args.output_dir}")
    return 0


def run_score(args: argparse.Namespace) -> int:
    try:
        key = json.loads(args.key.read_text(encoding="utf-8"))
        result = score(key, json.loads(args.ratings.read_text(encoding="utf-8")))
    except (DataError, OSError, json.JSONDecodeError, KeyError) as problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    for name, figures in result.items():
        print(
            f"{name:<16} mean {figures['mean']:.2f}  rated 4-5: {figures['share_4_or_5']:.0%}  "
            f"({figures['rated']} rated)"
        )
    print(
        "RESULT "
        + " ".join(f"{name}_mean={f['mean']:.3f} {name}_share45={f['share_4_or_5']:.3f}" for name, f in result.items())
    )
    return 0
