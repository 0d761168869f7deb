"""`therapist-trainer import` and `split`: bring data into the normalised JSONL schema."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from trainer.data.app_export import import_app_export
from trainer.data.counselchat import import_counselchat
from trainer.data.dedup import deduplicate
from trainer.data.empathetic import import_empathetic
from trainer.data.esconv import import_esconv
from trainer.data.generic import EMOTION_SCHEMES, import_table, parse_mapping
from trainer.data.hub import import_hub
from trainer.data.records import read_jsonl, write_jsonl
from trainer.data.split import SPLITS, SplitFractions, split_examples
from trainer.run import command

log = logging.getLogger(__name__)

FORMATS = ("esconv", "empathetic", "counselchat", "table", "hub", "app-export", "jsonl")


def register(subparsers: argparse._SubParsersAction) -> None:
    imp = subparsers.add_parser(
        "import",
        help="convert data files (or a hub dataset) into the normalised JSONL schema",
        description="Validate, convert and deduplicate examples into one JSONL file. "
        "Bad rows are reported with their line numbers.",
    )
    imp.add_argument("inputs", nargs="+", help="input files (for --format hub: dataset names or folders)")
    imp.add_argument("--format", required=True, choices=FORMATS, help="the inputs' format")
    imp.add_argument("-o", "--output", required=True, type=Path, help="the JSONL file to write")
    imp.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="FIELD=COLUMN",
        help="for table and hub: the column holding a field (client_words, reply, context, "
        "emotion, strategy, conversation_id, id); repeat per field",
    )
    imp.add_argument(
        "--emotion-labels",
        choices=EMOTION_SCHEMES,
        default="ours",
        help="for table and hub: which label set the emotion column uses",
    )
    imp.add_argument("--source", help="for table: the source name recorded on each example")
    imp.add_argument("--split", default="train", help="for hub: the dataset split to read")
    imp.add_argument("--subset", help="for hub: the dataset configuration name")
    imp.add_argument(
        "--max-context-turns", type=int, default=8, help="for esconv and empathetic: earlier turns kept as context"
    )
    imp.add_argument(
        "--skip-invalid", action="store_true", help="import the valid rows and report the bad ones instead of failing"
    )
    imp.add_argument("--keep-duplicates", action="store_true", help="do not drop repeated exchanges")
    imp.set_defaults(func=run_import)

    split = subparsers.add_parser(
        "split",
        help="split a normalised JSONL file into train/validation/test, conversations kept whole",
        description="Write train.jsonl, validation.jsonl and test.jsonl into a folder.",
    )
    split.add_argument("input", type=Path, help="a normalised JSONL file")
    split.add_argument("-o", "--output-dir", required=True, type=Path, help="folder for the split files")
    split.add_argument("--fractions", default="0.8,0.1,0.1", help="train,validation,test fractions (sum to 1)")
    split.add_argument("--seed", type=int, default=0, help="shuffle seed")
    split.set_defaults(func=run_split)

    corpus = subparsers.add_parser(
        "corpus",
        help="write the authored conversations as train/validation/test JSONL, held out by whole batches",
        description="Turn the authored batches (assets/corpus/dialogues) into examples and write "
        "train.jsonl, validation.jsonl, test.jsonl and batches.json (which batch went where, counts, "
        "file hashes). Held-out batches are whole: text by another writer, as users bring.",
    )
    corpus.add_argument("--folder", type=Path, help="a folder of batch files (default: the shipped corpus)")
    corpus.add_argument("--test", default="", help="comma-separated batch ids held out for testing")
    corpus.add_argument("--validation", default="", help="comma-separated batch ids held out for validation")
    corpus.add_argument("-o", "--output-dir", required=True, type=Path, help="folder for the split files")
    corpus.set_defaults(func=run_corpus)


def _read(fmt: str, path: str, args: argparse.Namespace):
    if fmt == "esconv":
        return import_esconv(path, args.max_context_turns, args.skip_invalid)
    if fmt == "empathetic":
        return import_empathetic(path, args.max_context_turns, args.skip_invalid)
    if fmt == "counselchat":
        return import_counselchat(path, args.skip_invalid)
    if fmt == "table":
        return import_table(path, parse_mapping(args.map), args.source, args.emotion_labels, args.skip_invalid)
    if fmt == "hub":
        return import_hub(
            path, parse_mapping(args.map), args.split, args.subset, args.emotion_labels, args.skip_invalid
        )
    if fmt == "app-export":
        return import_app_export(path, args.skip_invalid)
    return read_jsonl(path, args.skip_invalid)


@command()
def run_import(args: argparse.Namespace) -> int:
    examples, skipped = [], 0
    for path in args.inputs:
        result = _read(args.format, path, args)
        examples.extend(result.examples)
        skipped += len(result.errors)
    dropped = 0
    if not args.keep_duplicates:
        examples, dropped = deduplicate(examples)
    count = write_jsonl(examples, args.output)
    print(f"wrote {count} examples to {args.output} ({dropped} duplicates dropped, {skipped} invalid rows skipped)")
    return 0


@command(ValueError)  # --fractions that are not three numbers summing to 1
def run_split(args: argparse.Namespace) -> int:
    parts = [float(p) for p in args.fractions.split(",")]
    if len(parts) != 3:
        raise ValueError("--fractions needs three numbers: train,validation,test")
    splits = split_examples(read_jsonl(args.input).examples, SplitFractions(*parts), args.seed)
    for name in SPLITS:
        write_jsonl(splits[name], args.output_dir / f"{name}.jsonl")
    print(", ".join(f"{name}: {len(splits[name])}" for name in SPLITS) + f" examples in {args.output_dir}")
    return 0


@command()
def run_corpus(args: argparse.Namespace) -> int:
    from trainer.data.authored import batch_files, read_corpus, split_by_batch
    from trainer.data.records import file_sha256

    names = lambda text: [b.strip() for b in text.split(",") if b.strip()]  # noqa: E731
    batches = read_corpus(args.folder)
    parts = split_by_batch(batches, names(args.test), names(args.validation))
    for name in SPLITS:
        write_jsonl(parts[name], args.output_dir / f"{name}.jsonl")
    held = {b: "test" for b in names(args.test)} | {b: "validation" for b in names(args.validation)}
    record = {
        "batches": {b: {"split": held.get(b, "train"), "examples": len(rows)} for b, rows in batches.items()},
        "sha256": {p.stem: file_sha256(p) for p in batch_files(args.folder)},
    }
    (args.output_dir / "batches.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(", ".join(f"{name}: {len(parts[name])}" for name in SPLITS) + f" examples in {args.output_dir}")
    return 0
