"""Replace identifying details in free text with typed placeholders.

[NAME], [PLACE], [DATE], [PHONE], [EMAIL], [ADDRESS], [ID] and [URL]. Deterministic:
regular expressions plus the authored word lists in `assets/deidentify.toml`. Used by
the store's training export, the app's session export and the trainer.

It removes the identifiers it recognises, nothing more: a rare name that is neither in
the list nor after a cue ("my sister ...", "Dr ...", "called ...") survives, which is why
the export is also audited and can be turned off by clinic policy.

>>> deidentify("Call Sarah Jones on 07700 900123 before 3 March.")
'Call [NAME] on [PHONE] before [DATE].'
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache
from typing import Callable

from therapist_app.core.assets import asset_path

KINDS = ("NAME", "PLACE", "DATE", "PHONE", "EMAIL", "ADDRESS", "ID", "URL")

_MONTH = (r"(?:January|February|March|April|May|June|July|August|September|October|"
          r"November|December|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept|Sep|Oct|Nov|Dec)\.?")
_DAY = r"\d{1,2}(?:st|nd|rd|th)?"
_CAPWORD = r"[A-Z][a-zA-Z'’-]*[a-zA-Z]"
_STREET = (r"(?:Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Drive|Dr|Boulevard|Blvd|Way|Court|Ct|"
           r"Place|Close|Crescent|Terrace|Square|Gardens|Parkway|Highway|Hwy)")
_INSTITUTION = (r"(?:Hospital|School|Academy|College|University|Clinic|Surgery|Church|"
                r"Mosque|Synagogue|Temple|Park|Station|Airport|Prison|Centre|Center|Mall)")
_RELATION = (r"(?i:my|our|his|her|their)\s+(?i:husband|wife|partner|boyfriend|girlfriend|"
             r"fianc[eé]e?|son|daughter|kid|child|mum|mom|mother|dad|father|brother|sister|"
             r"friend|best friend|boss|manager|colleague|co-?worker|teacher|neighbou?r|ex|"
             r"cousin|aunt|auntie|uncle|nan|gran|grandma|grandmother|grandpa|grandfather|"
             r"niece|nephew|stepdad|stepmum|stepmom|therapist|doctor|counsell?or|GP|lawyer)")
_TITLE = r"(?:Mrs|Mr|Ms|Miss|Mx|Dr|Prof|Professor|Doctor|Auntie|Aunt|Uncle|Nurse)\.?"
# Capitalised words that are never a name or place even after a cue.
_NOT_PROPER = frozenset(
    "I I'm I've I'd I'll The A An It He She They We You My Our His Her Their This That "
    "Monday Tuesday Wednesday Thursday Friday Saturday Sunday January February March "
    "April May June July August September October November December Christmas Easter "
    "God Mum Mom Dad Nan Gran Grandma Grandpa Today Tomorrow Yesterday And But So Then "
    "Because When If Is Was English Him Me Us Them".split()
)


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    kind: str


@dataclass(frozen=True)
class _Rule:
    kind: str
    pattern: re.Pattern
    group: int = 0
    check: Callable[[str], bool] | None = None  # an extra test on the matched text


@cache
def _lists() -> dict[str, frozenset[str]]:
    with asset_path("deidentify.toml").open("rb") as f:
        table = tomllib.load(f)
    return {key: frozenset(table[key]) for key in ("given_names", "ambiguous_names", "places")}


def _alternation(words: frozenset[str]) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


def _phone_like(text: str) -> bool:
    """7 to 15 digits (E.164), and not a span of years such as 1990-2000."""
    digits = sum(c.isdigit() for c in text)
    return 7 <= digits <= 15 and not re.fullmatch(r"(?:19|20)\d\d\s*-\s*(?:19|20)\d\d", text)


def _long_code(text: str) -> bool:
    return len(text) >= 5


@cache
def _rules() -> tuple[_Rule, ...]:
    lists = _lists()
    given = _alternation(lists["given_names"])
    any_name = _alternation(lists["given_names"] | lists["ambiguous_names"])
    places = _alternation(lists["places"])
    proper = rf"(?!(?:{_alternation(_NOT_PROPER)})\b){_CAPWORD}"
    surname = rf"(?:\s+{proper})?"
    return (
        _Rule("EMAIL", re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")),
        _Rule("URL", re.compile(r"\b(?:https?://|www\.)[^\s<>\"']+[^\s<>\"'.,;:!?)]")),
        _Rule("ID", re.compile(r"\b\d{3}-\d{2}-\d{4}\b")),
        _Rule("ID", re.compile(
            r"(?i:\b(?:ssn|social security|nhs|mrn|medical record|patient|passport|"
            r"licen[cs]e|account|member(?:ship)?|insurance|policy|case|reference|client|"
            r"id)(?:\s+(?:id|no\.?|number|#))?(?:\s*[:#]\s*|\s+is\s+|\s+))"
            r"(\d[\d -]{2,}\d|[A-Za-z]*\d[A-Za-z0-9-]{2,})\b"), group=1),
        _Rule("ID", re.compile(r"\b(?=(?:[A-Z-]*\d){3})[A-Z0-9]*[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)*\b"),
              check=_long_code),
        _Rule("ADDRESS", re.compile(
            rf"(?i:\b(?:flat|apt|apartment|unit|suite)\.?\s*#?\s*\w+,?\s+)?"
            rf"\b\d{{1,5}}[A-Za-z]?,?\s+(?:{_CAPWORD}\s+){{1,3}}{_STREET}\b")),
        _Rule("ADDRESS", re.compile(r"(?i:\bP\.?\s?O\.?\s+Box\s+\d+)")),
        _Rule("ADDRESS", re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]?\s+\d[ABD-HJLNP-UW-Z]{2}\b")),
        _Rule("ADDRESS", re.compile(r"\b[A-Z]{2}\s+\d{5}(?:-\d{4})?\b")),
        _Rule("DATE", re.compile(r"\b\d{4}-\d{1,2}-\d{1,2}\b|\b\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}\b")),
        _Rule("DATE", re.compile(
            rf"\b(?:{_DAY}\s+(?:of\s+)?{_MONTH}|{_MONTH}\s+{_DAY}\b)(?:,?\s+\d{{4}})?\b")),
        _Rule("DATE", re.compile(rf"\b{_MONTH}\s+\d{{4}}\b")),
        _Rule("PHONE", re.compile(r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,5}\)[\s.-]?)?"
                                  r"\d[\d\s.-]{4,}\d(?!\w)"), check=_phone_like),
        _Rule("PLACE", re.compile(rf"\b(?:{proper}\s+){{1,3}}{_INSTITUTION}\b")),
        _Rule("NAME", re.compile(rf"\b{_TITLE}\s+({proper}{surname})"), group=1),
        _Rule("NAME", re.compile(
            rf"(?:\b{_RELATION},?|(?i:\bnamed|\bcalled|\bmy name is|\bname's|\bcall me))"
            rf"\s+({proper}{surname})"), group=1),
        _Rule("NAME", re.compile(rf"\b(?:{given})\b{surname}")),
        _Rule("NAME", re.compile(rf"\b(?:{any_name})\s+{proper}")),
        _Rule("PLACE", re.compile(rf"\b(?:{places})\b")),
        _Rule("PLACE", re.compile(
            r"(?i:\b(?:live[sd]?|living|moved|moving|grew up|born|raised|from|come|came|"
            r"visit(?:ed|ing)?|stay(?:ed|ing)?|went|go(?:ing)?|travel(?:l?ed)?|flew|in|near|at)"
            r"(?:\s+(?:in|to|at|near|back to))?)"
            rf"\s+({proper}(?:\s+{proper})?)"), group=1),
    )


def find_identifiers(text: str) -> list[Span]:
    """Spans to replace, in text order. Earlier rules win where spans overlap."""
    taken: list[Span] = []
    for rule in _rules():
        for match in rule.pattern.finditer(text):
            start, end = match.span(rule.group)
            if start == end or (rule.check and not rule.check(match.group(rule.group))):
                continue
            if any(start < s.end and s.start < end for s in taken):
                continue
            taken.append(Span(start, end, rule.kind))
    return sorted(taken, key=lambda s: s.start)


def deidentify(text: str) -> str:
    """`text` with every recognised identifier replaced by its typed placeholder.

    >>> deidentify("Email me at sam@example.org or see Dr Patel at St Mary's Hospital.")
    'Email me at [EMAIL] or see Dr [NAME] at [PLACE].'
    """
    parts, position = [], 0
    for span in find_identifiers(text):
        parts.append(text[position:span.start])
        parts.append(f"[{span.kind}]")
        position = span.end
    parts.append(text[position:])
    return "".join(parts)
