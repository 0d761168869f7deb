"""Replace identifying details in free text with typed placeholders.

[NAME], [PLACE], [DATE], [AGE], [PHONE], [EMAIL], [ADDRESS], [ID] and [URL].
Deterministic and offline: regular expressions, cue words ("my sister ...", "Dr ...",
"calls me ...", "in ..."), and the word lists of `deidentify_words` (US SSA given
names, US Census surnames, nicknames, GeoNames places, SCOWL's everyday English words).
A listed name that is not also an everyday word is a name in any case ("sarah",
"SARAH"); one that is ("Grace", "will") only where capitalised mid-sentence or after a
cue. The client's stored name and code (`known_names`) are
removed in any case, every part of them, and so are their nicknames and misspellings
("Tom", "Tommo" for Thomas); a string removed once as a name is removed everywhere in
the text, and `deidentify_session` carries them across a session's texts.

Linear in the text's length: every pattern is applied once with `finditer`, and a span
is accepted by looking at a per-character mask, never by comparing it with every span
taken before (which made 10 MB take longer than four minutes).

It removes what it recognises, nothing more: a rare name after no cue survives, which
is why the export is also audited and can be turned off by clinic policy. The method and
its measured recall are in docs/deidentification.md.

>>> deidentify("Call Sarah Jones on 07700 900123 before 3 March.")
'Call [NAME] on [PHONE] before [DATE].'
>>> deidentify("my boss tariq is 34 and lives in leeds", known_names=["Jo Bloggs"])
'my boss [NAME] is [AGE] and lives in [PLACE]'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Callable, Iterable, Sequence

from therapist_app.core.deidentify_words import (
    FUNCTION_WORDS, L, NOT_PROPER, TOKEN, WORD, Known, Lexicon, core, cue_word, fold,
    given_word, lexicon, listed_name, make_known, naming_word, place_or_name, place_word,
    possessive_word, relation_word, title_case, token_kind,
)

KINDS = ("NAME", "PLACE", "DATE", "AGE", "PHONE", "EMAIL", "ADDRESS", "ID", "URL")

_CAPWORD = rf"[A-Z]{L}*(?:['’-]{L}+)*"
_MONTH = (r"(?:january|february|march|april|may|june|july|august|september|october|"
          r"november|december|jan|feb|mar|apr|jun|jul|aug|sept|sep|oct|nov|dec)\.?")
_DAY = (r"(?:\d{1,2}(?:st|nd|rd|th)?|(?:twenty[- ]|thirty[- ])?(?:first|second|third|"
        r"fourth|fifth|sixth|seventh|eighth|ninth)|tenth|eleventh|twelfth|thirteenth|"
        r"fourteenth|fifteenth|sixteenth|seventeenth|eighteenth|nineteenth|twentieth|"
        r"thirtieth)")
_ORDINAL = r"(?:[12]?1st|2?2nd|2?3rd|(?:[12]?[4-9]|1[0-3]|[23]0)th|31st)"
_NUMBER_WORD = (r"(?:(?:twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)"
                r"(?:[- ](?:one|two|three|four|five|six|seven|eight|nine))?|one|two|three|"
                r"four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|"
                r"fifteen|sixteen|seventeen|eighteen|nineteen|a hundred)")
_AGE_NUMBER = rf"(?:1[01]\d|\d{{1,2}}|{_NUMBER_WORD})"
# What follows a number that is a quantity, a time or a score rather than an age.
_NOT_AGE_AFTER = (r"(?!\s*(?:%|/|:|'|′|\"|\.\d|,\d|-\d|percent|per\b|am\b|pm\b|a\.m|p\.m|o'?clock|"
                  r"quid|pounds?|p\b|pence|euros?|dollars?|bucks|grand|k\b|mg|ml|g\b|kgs?|"
                  r"kilos?|stone|st\b|lbs?|miles?|km|metres?|meters?|cm|ft|feet|foot|inch|"
                  r"minutes?|mins?|hours?|hrs?|days?|nights?|weeks?|wks?|months?|times?|"
                  r"years?(?![- ]old)|yrs?(?![- ]old)|"
                  r"x\b|of\b|out\b|steps|points?|pts|hundred|thousand|million|units?|"
                  r"pills?|tablets?|drinks?|pints?|cans?|bottles?|people|kids|children|"
                  r"sessions?|things?|more|less))")
_STREET = (r"(?:Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Drive|Dr|Boulevard|Blvd|Way|Court|Ct|"
           r"Place|Pl|Close|Crescent|Cres|Terrace|Square|Sq|Gardens|Parkway|Highway|Hwy|"
           r"Park|Grove|View|Walk|Row|Mews|Hill|Rise|Green|Vale|Dale|Wynd|Brae|Parade|"
           r"Quay|Wharf|Yard|Gate|Circus|Heights|House|Tower|Towers|Mansions|Cottages|"
           r"Lodge|Estate|Plaza|Trail|Pike)")
_INSTITUTION = (r"(?:Hospital|Infirmary|School|Academy|College|University|Uni|Clinic|"
                r"Surgery|Practice|Primary|Nursery|Church|Chapel|Cathedral|Mosque|Synagogue|"
                r"Temple|Gurdwara|Park|Station|Airport|Prison|Centre|Center|Mall|Hall|"
                r"Ward|Hotel|Library|Stadium|Barracks)")
_RELATION_NOUN = (r"(?:husband|wife|partner|boyfriend|girlfriend|fianc[eé]e?|son|daughter|"
                  r"kid|child|baby|mum|mom|mam|mother|dad|da|father|brother|sister|"
                  r"(?:best |old )?friend|mate|pal|boss|manager|supervisor|colleague|"
                  r"co-?worker|teacher|neighbou?r|ex|cousin|aunt|auntie|uncle|nan|nana|gran|"
                  r"granny|grandma|grandmother|grandpa|grandad|grandfather|niece|nephew|"
                  r"step-?(?:dad|mum|mom|son|daughter|brother|sister)|half-?(?:brother|sister)|"
                  r"therapist|doctor|counsell?or|gp|lawyer|solicitor|sponsor|carer|"
                  r"(?:key|social|support|case) worker|housing officer|youngest|eldest|"
                  r"oldest|lad|fella|girl|boy|twin|flatmate|housemate|landlord|landlady)")
_RELATION = rf"(?i:\b(?:my|our|his|her|their|your)\s+(?:ex[- ])?{_RELATION_NOUN})"
_TITLE = (r"(?:Mrs|Mr|Ms|Miss|Mx|Dr|Prof|Professor|Doctor|Auntie|Aunty|Aunt|Uncle|Nurse|"
          r"PC|DC|DS|DI|Sgt|Sergeant|Officer|Inspector|Detective|Father|Fr|Sister|"
          r"Rev|Reverend|Judge|Coach|Sir|Dame|Cousin|Nanny|Granny|Grandma|Grandad)\.?")


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    kind: str


def _phone_like(text: str) -> bool:
    """7 to 15 digits (E.164), and not a span of years such as 1990-2000."""
    digits = sum(c.isdigit() for c in text)
    return 7 <= digits <= 15 and not re.fullmatch(r"(?:19|20)\d\d\s*-\s*(?:19|20)\d\d", text)


def _code_like(text: str) -> bool:
    """A reference number, not a score ("50/50"), a year span or "PHQ-9"."""
    digits = sum(c.isdigit() for c in text)
    letters = any(c.isalpha() for c in text)
    return (digits >= 5 or (digits >= 3 and letters and len(text) >= 5)) and not re.fullmatch(
        r"(?:19|20)\d\d\s*[-/]\s*(?:19|20)?\d\d", text)


_JOINED_CODE = r"\b[A-Z0-9]+(?:[-/][A-Z0-9]+)+\b"


@dataclass(frozen=True)
class _Rule:
    kind: str | Callable[[str], str]  # a placeholder kind, or one chosen by the text
    pattern: re.Pattern
    group: int = 0
    check: Callable[[str], bool] | None = None  # an extra test on the matched text


@cache
def _rules() -> tuple[_Rule, ...]:
    # the capital first, so that most positions fail before the long look-ahead
    proper = rf"(?=[A-Z])(?!(?i:{'|'.join(sorted(NOT_PROPER, key=len, reverse=True))})\b){_CAPWORD}"
    word = rf"(?<![\w@.'’-]){WORD}"
    tlds = r"(?:com|org|net|co|uk|ie|io|me|ly|gov|edu|ac|info|biz|app|tv|us|ca|au|de|fr|nz)"
    return (
        _Rule("EMAIL", re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")),
        _Rule("EMAIL", re.compile(  # spelt out: "jo underscore p at hotmail dot co dot uk"
            rf"(?i:\b\w+(?:\s+(?:underscore|dot|dash|hyphen)\s+\w+)*\s+(?:at|\(at\)|\[at\])"
            rf"\s+\w+(?:\s+(?:dot|\(dot\)|\[dot\])\s+{tlds})+\b)")),
        _Rule("URL", re.compile(r"\b(?:https?://|www\.)[^\s<>\"']+[^\s<>\"'.,;:!?)]")),
        _Rule("URL", re.compile(
            rf"(?i:\b(?:[a-z0-9-]+\.)+{tlds}\b(?:/[^\s<>\"']*[^\s<>\"'.,;:!?)])?)")),
        _Rule("URL", re.compile(r"(?<![\w.@])@\w(?:[\w.]*\w)?")),  # a social media handle
        _Rule("URL", re.compile(r"\b[A-Za-z0-9]+(?:_+[A-Za-z0-9]+)+_*")),  # user_name_9
        _Rule("ID", re.compile(r"\b\d{3}-\d{2}-\d{4}\b")),
        _Rule("ID", re.compile(r"\b[A-Z]{2}\s?\d{2}\s?\d{2}\s?\d{2}\s?[A-D]\b")),  # UK NI
        _Rule("ID", re.compile(
            r"(?i:\b(?:ssn|social security|nhs|pps|ni|national insurance|mrn|medical record|"
            r"hospital|patient|passport|licen[cs]e|driving licen[cs]e|account|member(?:ship)?|"
            r"insurance|policy|case|reference|ref|client|claim|badge|staff|employee|payroll|"
            r"student|pupil|card|reg|registration|plate|tax|benefit|id)"
            r"(?:\s+(?:id|no\.?|number|num|#|code))?(?:\s*[:#]\s*|\s+is\s+|\s+))"
            r"(\d[\d -]{2,}\d|[A-Za-z]*\d[A-Za-z0-9-/]{2,})\b"), group=1),
        _Rule("ADDRESS", re.compile(
            rf"(?i:\b(?:flat|apt|apartment|unit|suite)\.?\s*#?\s*\w+,?\s+)?"
            rf"\b\d{{1,5}}[A-Za-z]?,?\s+(?:(?:{_CAPWORD}|[NSEW]\.?|\d+(?:st|nd|rd|th))\s+)"
            rf"{{1,3}}{_STREET}\b")),
        _Rule("ADDRESS", re.compile(  # "27 glenview park", but not "a 10 min drive"
            r"(?i:\b\d{1,5}[a-z]?\s+(?!(?:min(?:ute)?s?|hours?|hrs?|miles?|km|mins|seconds?|"
            r"days?|weeks?|months?|years?|times?|more|other|of|in|on|to|the|a)\b)"
            r"(?:[a-z]+\s+){1,2}(?:street|road|avenue|lane|drive|close|crescent|terrace|"
            r"gardens|grove|boulevard|blvd|ave|rd)\b)")),
        _Rule("ADDRESS", re.compile(  # a street without its number: "we lived on Cedar Lane"
            rf"\b(?:{proper}\s+){{1,2}}(?:Street|Road|Avenue|Ave|Lane|Drive|Boulevard|Blvd|"
            rf"Crescent|Terrace|Close|Grove|Gardens|Parkway|Rd)\b")),
        _Rule("ADDRESS", re.compile(r"(?i:\b(?:flat|apt|apartment|suite)\.?\s*#?\s*\d+[a-z]?\b"
                                    r"(?!\s+(?:years?|months?|weeks?|days?)))")),
        _Rule("ADDRESS", re.compile(r"(?i:\bP\.?\s?O\.?\s+Box\s+\d+)")),
        _Rule("ADDRESS", re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]?\s+\d[ABD-HJLNP-UW-Z]{2}\b")),
        _Rule("ADDRESS", re.compile(r"\b[A-Z]{2}\s+\d{5}(?:-\d{4})?\b")),
        _Rule("ADDRESS", re.compile(r"\b[AC-FHKNPRTV-Y]\d[\dW]\s?[\dAC-FHKNPRTV-Y]{4}\b"),
              check=lambda t: any(c.isalpha() for c in t[3:])),  # Irish Eircode
        _Rule("ADDRESS", re.compile(r"\b[A-Z]\d[A-Z]\s?\d[A-Z]\d\b")),  # Canadian postcode
        _Rule("ADDRESS", re.compile(r"(?i:\bzip(?:\s*code)?(?:\s+is)?\s*:?\s*)(\d{5})\b"),
              group=1),
        _Rule("DATE", re.compile(r"\b\d{4}-\d{1,2}-\d{1,2}\b|\b\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}\b")),
        _Rule("DATE", re.compile(
            rf"(?i:\b(?:{_DAY}\s+(?:of\s+)?{_MONTH}|{_MONTH}\s+(?:the\s+)?{_DAY}\b)"
            rf"(?:,?\s+\d{{4}})?\b)")),
        _Rule("DATE", re.compile(rf"(?i:\b{_MONTH}\s+\d{{4}}\b)")),
        _Rule("DATE", re.compile(  # "on 3/14", "since 14.3"
            r"(?i:\b(?:on|since|by|until|till|before|after)\s+)"
            r"((?:[12]\d|3[01]|0?[1-9])[/.](?:[12]\d|3[01]|0?[1-9]))\b(?![/.]\d)"), group=1),
        _Rule("DATE", re.compile(  # "on the 9th", "since the 21st,"
            rf"(?i:\b(?:on|since|by|from|until|till|til|before|after|the)\s+(?:the\s+)?)"
            rf"({_ORDINAL})\b(?!\s*(?:time|floor|grade|year|attempt|go|place|one|week|"
            rf"day|session|child|kid|baby|try|round|century|birthday))"), group=1),
        _Rule("ID", re.compile(_JOINED_CODE), check=lambda t: _code_like(t) and any(
            c.isalpha() for c in t)),
        _Rule("PHONE", re.compile(r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,5}\)[\s.-]?)?"
                                  r"\d[\d\s.-]{4,}\d(?!\w)"), check=_phone_like),
        _Rule("ID", re.compile(_JOINED_CODE), check=_code_like),
        _Rule("ID", re.compile(r"\b(?=[A-Z]*\d)(?=\d*[A-Z])[A-Z0-9]{5,}\b"), check=_code_like),
        _Rule("ID", re.compile(r"(?i:\b(?=[a-z]*\d)(?=\d*[a-z])[a-z0-9]{6,}\b)"),
              check=lambda t: sum(c.isdigit() for c in t) >= 4 and not re.fullmatch(
                  r"(?i:\d+(?:mg|ml|kg|km|lbs?|mins?|hrs?|am|pm|k|st|nd|rd|th|s|m|g|x))", t)),
        _Rule("AGE", re.compile(
            rf"(?i:\b(?:i'?m|i am|i was|i'?ll be|i'?d be|you'?re|you are|you were|he'?s|hes|"
            rf"he is|he was|she'?s|shes|she is|she was|they'?re|they are|they were|"
            rf"(?:he|she|they|i)'?d be|(?:he|she|they|i|you) will be|"
            rf"turn(?:ed|s|ing)?|aged?|age of)\s+(?:only\s+|just\s+|nearly\s+|almost\s+|"
            rf"about\s+|barely\s+|already\s+|still\s+|now\s+|over\s+|under\s+)?)"
            rf"({_AGE_NUMBER})\b{_NOT_AGE_AFTER}"), group=1),
        _Rule("AGE", re.compile(  # "my son is 12", "the kids are 4 and 6", "who's 9"
            rf"(?:{_RELATION}s?(?:['’]s|\s+(?:is|was|are|were|turns|turned))|"
            rf"(?i:\bwho(?:['’]s|\s+is|\s+was)))\s+(?:only\s+|just\s+|nearly\s+|"
            rf"almost\s+|now\s+)?((?i:{_AGE_NUMBER}))\b{_NOT_AGE_AFTER}"), group=1),
        _Rule("AGE", re.compile(
            rf"(?i:\b{_AGE_NUMBER}(?:[- ]?(?:years?|yrs?)[- ]old|\s?(?:yo|y/o|y\.o\.))\b)")),
        _Rule("AGE", re.compile(
            r"(?i:\bin\s+(?:my|his|her|their|your)\s+(?:early\s+|mid[- ]?|late\s+)?)"
            r"((?:\d0'?s)|(?:twenties|thirties|forties|fifties|sixties|seventies|eighties|"
            r"nineties|teens))\b"), group=1),
        _Rule("PLACE", re.compile(rf"\b(?:{proper}\s+){{1,3}}{_INSTITUTION}\b")),
        _Rule("PLACE", re.compile(
            rf"\b(?:St\.?|Saint)\s+[A-Z]{L}*+(?!(?:['’]s)?\s+(?:Day|Eve|Night)\b)(?:['’]s)?")),
        _Rule("KEEP", re.compile(  # a feast, not a person: "St Patrick's Day"
            rf"\b((?:St\.?\s+|Saint\s+)?[A-Z]{L}*+)(?=['’]s\s+Day\b)"), group=1),
        _Rule("KEEP", re.compile(  # a pet's name is not the client's business to hide
            rf"(?i:\b(?:my|our|his|her|their|the)\s+(?:old\s+)?(?:dog|cat|puppy|pup|kitten|"
            rf"pet|horse|pony|rabbit|bunny|hamster|guinea pig|parrot|budgie|tortoise|fish)),?"
            rf"\s+({word})"), group=1, check=cue_word),
        _Rule("NAME", re.compile(rf"\b{_TITLE}\s+({proper}(?:\s+{proper})?)"), group=1),
        _Rule("NAME", re.compile(rf"(?i:\b(?:mrs|mr|ms|mx|dr|pc|sgt)\.?)\s+({word})"),
              group=1, check=cue_word),
        _Rule("NAME", re.compile(rf"{_RELATION},?\s+({word})"), group=1,
              check=relation_word),
        _Rule("NAME", re.compile(
            rf"(?i:\bnamed|\bcalled|\bcall me|\bcalls me|\bmy name is|\bmy name's|"
            rf"\bname's|\bgoes by|\bknown as|\bnickname is|\bdown as)\s+({word})"),
            group=1, check=naming_word),
        _Rule("NAME", re.compile(  # "gaz is what everyone calls me", "deano they call me"
            rf"({word})(?:\s+is\s+what|,)?\s+(?i:everyone|everybody|people|they|we|"
            rf"(?:my|me|the|his|her)\s+\w+)\s+(?:\w+\s+)?calls?\s+me\b"),
            group=1, check=naming_word),
        _Rule("NAME", re.compile(  # "iris, my key worker"
            rf"({word}),\s+{_RELATION}\b"), group=1, check=cue_word),
        _Rule("NAME", re.compile(  # "mo my cousin does mornings"
            rf"({word})\s+{_RELATION}\b"), group=1, check=given_word),
        _Rule("NAME", re.compile(rf"(?i:\bme and\s+)({word})|({word})(?=\s+and me\b)"),
              check=cue_word),
        _Rule("NAME", re.compile(
            rf"({word})(?=\s+(?:said|says|rang|texted|messaged|phoned|told|asked|shouted))"),
            group=1, check=cue_word),
        _Rule("NAME", re.compile(  # "in will's name", "at grace's house"
            rf"({word})(?=['’]s\s+(?:name|house|flat|place|room|car|phone|mum|mam|mom|dad|"
            rf"party|wedding|funeral|birthday|kids?))"), group=1, check=possessive_word),
        _Rule(place_or_name, re.compile(
            r"(?i:\b(?:live[sd]?|living|moved|moving|move|grew up|born|raised|from|come|came|"
            r"visit(?:ed|ing)?|stay(?:ed|ing)?|went|go(?:ing)?|travel(?:l?ed)?|flew|in|near|"
            r"at|off|outside|out|up|down|over|back)(?:\s+(?:in|to|at|near|from|off|round))?"
            r"(?:\s+the)?)\s+"
            rf"((?:{proper})(?:\s+{proper}){{0,2}}|{word})"), group=1, check=place_word),
    )


_SENTENCE_END = re.compile(r"[.!?\n]\W*$")
_AFTER_NAME_AGE = re.compile(
    rf"(?:['’]s|,?\s+is|\s*[,.])\s+(?:only\s+|just\s+|nearly\s+|almost\s+)?"
    rf"({_AGE_NUMBER})(?=\s*(?:[,.;!?)]|$|and\b|now\b|next\b|this\b|in\b))", re.I)
_BEFORE_NAME = re.compile(rf"(?<![\w'’-])({WORD})(?:,?\s+or|,)\s+$")
_AGE_PAIR = re.compile(rf"(?:,\s*|\s+and\s+|\s*&\s*)({_AGE_NUMBER})\b{_NOT_AGE_AFTER}", re.I)
_FIRST_NAME_BEFORE = re.compile(rf"(?<![\w'’-])([A-Z]{L}+) $")
_AFTER_PLACE_POSTCODE = re.compile(r",\s*([A-Z]{1,2}\d{1,2}[A-Z]?)\b(?!\s*\d)")
# Between two parts of one name: a space, a hyphen, a particle ("Bríd Ó Ceallaigh").
_NAME_GAP = re.compile(r"(?:\s+|\s*-\s*)(?i:(?:ó|o|de|da|di|du|van|von|der|den|del|la|le|"
                       r"mac|mc|ní|ni|nic|bin|ibn|al|el|ap|ua)['’]?\s+)?")

_KEEP = 255  # a mask code: no placeholder, and no later rule either


class _Spans:
    """Spans taken so far, with a per-character mask so that a new span's overlap test
    costs its own length, not the number of spans already taken."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.mask = bytearray(len(text))  # 0 free, else 1 + the kind's index in KINDS
        self.spans: list[Span] = []

    def free(self, start: int, end: int) -> bool:
        return self.mask.count(0, start, end) == end - start

    def kind_at(self, position: int) -> str | None:
        code = self.mask[position] if 0 <= position < len(self.mask) else 0
        return KINDS[code - 1] if 0 < code <= len(KINDS) else None

    def take(self, start: int, end: int, kind: str) -> bool:
        """Replace [start, end) with `kind`'s placeholder, or with nothing but keep
        later rules off it when `kind` is KEEP."""
        if start >= end or not self.free(start, end):
            return False
        code = _KEEP if kind == "KEEP" else KINDS.index(kind) + 1
        self.mask[start:end] = bytes([code]) * (end - start)
        if kind != "KEEP":
            self.spans.append(Span(start, end, kind))
        return True


@dataclass(frozen=True)
class _Token:
    start: int
    end: int  # without a possessive 's
    text: str
    word: str  # folded


def _tokens(text: str) -> list[_Token]:
    tokens = []
    for match in TOKEN.finditer(text):
        start, end = match.span()
        token = core(match.group())
        tokens.append(_Token(start, start + len(token), token, fold(token)))
    return tokens


def _scan_words(spans: _Spans, tokens: list[_Token], known: Known) -> None:
    """Listed names and places, multi-word places, and a surname after a first name."""
    text, lex = spans.text, lexicon()
    i, previous_end, previous_kind = 0, -10, None
    while i < len(tokens):
        token = tokens[i]
        start, end, word = token.start, token.end, token.word
        if word in lex.place_starts:
            taken = _multiword_place(spans, tokens, i, lex)
            if taken:
                i += taken
                continue
        at_start = start == 0 or bool(_SENTENCE_END.search(text, max(0, start - 4), start))
        kind = token_kind(token.text, word, at_start, known)
        if kind != "NAME" and previous_kind and text[previous_end:start] == " " \
                and word not in lex.ordinary and word not in FUNCTION_WORDS and (
                    (title_case(token.text) and word not in NOT_PROPER)
                    or (previous_kind == "NAME" and not lex.is_english(word))):
            kind = previous_kind  # "Priya Chandrasekaran", "Tower Hamlets"
        if kind and spans.take(start, end, kind):
            previous_end, previous_kind = end, kind
        elif spans.kind_at(end - 1) in ("NAME", "PLACE") and spans.kind_at(end) is None:
            previous_end, previous_kind = end, spans.kind_at(end - 1)
        else:
            previous_kind = None
        i += 1


def _scan_known(spans: _Spans, tokens: list[_Token], known: Known) -> None:
    for token in tokens:
        if token.word in known.any_case or token.text in known.exact:
            spans.take(token.start, token.end, "NAME")


def _multiword_place(spans: _Spans, tokens: list[_Token], i: int, lex: Lexicon) -> int:
    for n in range(min(lex.longest_place, len(tokens) - i), 1, -1):
        run = tokens[i:i + n]
        if any(spans.text[run[k].end:run[k + 1].start] != " " for k in range(n - 1)):
            continue
        if not lex.is_place(" ".join(t.word for t in run)):
            continue
        if all(title_case(t.text) for t in run) or not all(
                lex.is_english(t.word) for t in run):
            if spans.take(run[0].start, run[-1].end, "PLACE"):
                return n
    return 0


def _after_spans(spans: _Spans) -> None:
    """An age right after a name ("ailsa's 8", "nadia. 29."), a first name that is
    also a word before a surname ("May Sutton"), another name listed before a name
    ("becks, becky", "mo, or Mohammed"), and a postcode district after an address or
    place ("Peckham, SE15")."""
    text = spans.text
    for span in sorted(spans.spans, key=lambda s: s.start):
        if span.kind == "NAME":
            match = _BEFORE_NAME.search(text, max(0, span.start - 40), span.start)
            if match and listed_name(match.group(1)):
                spans.take(*match.span(1), "NAME")
            match = _FIRST_NAME_BEFORE.search(text, max(0, span.start - 40), span.start)
            if match and lexicon().is_popular(fold(match.group(1))):
                spans.take(*match.span(1), "NAME")  # "May Sutton", "Will Jones"
        if span.kind == "AGE":
            match = _AGE_PAIR.match(text, span.end)  # "4 and 6"
            if match:
                spans.take(*match.span(1), "AGE")
        if span.kind in ("NAME", "PLACE"):
            match = _AFTER_NAME_AGE.match(text, span.end)
            if match:
                spans.take(*match.span(1), "AGE")
        if span.kind in ("ADDRESS", "PLACE"):
            match = _AFTER_PLACE_POSTCODE.match(text, span.end)
            if match:
                spans.take(*match.span(1), "ADDRESS")


def _propagate(spans: _Spans, known: Known) -> Known:
    """Every word removed as a name is removed wherever else it occurs in the text."""
    found = make_known((), (spans.text[s.start:s.end] for s in spans.spans if s.kind == "NAME"))
    return Known(known.any_case | found.any_case, known.exact | found.exact,
                  known.nick_roots)


def _known_strings(spans: _Spans, known: Known) -> None:
    """The client's stored strings that are not plain words, such as a code ("C-7"),
    in any case; plain names are found word by word."""
    for code in known.codes:
        pattern = re.compile(rf"(?<!\w){re.escape(code)}(?!\w)", re.IGNORECASE)
        for match in pattern.finditer(spans.text):
            spans.take(*match.span(), "ID")


def find_identifiers(text: str, known_names: Iterable[str] = ()) -> list[Span]:
    """Spans to replace, in text order. Earlier rules win where spans overlap."""
    return _find(text, make_known(known_names))


def _find(text: str, known: Known) -> list[Span]:
    spans = _Spans(text)
    _known_strings(spans, known)
    for rule in _rules():
        for match in rule.pattern.finditer(text):
            group = rule.group or (
                next(g for g in range(1, rule.pattern.groups + 1) if match.group(g))
                if rule.pattern.groups else 0)
            start, end = match.span(group)
            matched = match.group(group)
            if start == end or (rule.check and not rule.check(matched)):
                continue
            kind = rule.kind if isinstance(rule.kind, str) else rule.kind(matched)
            spans.take(start, end, kind)
    tokens = _tokens(text)
    _scan_words(spans, tokens, known)
    _after_spans(spans)
    _scan_known(spans, tokens, _propagate(spans, known))
    return _merge(sorted(spans.spans, key=lambda s: s.start), text)


def _merge(spans: list[Span], text: str) -> list[Span]:
    """One [NAME] for "Sean McCartney" and "Bríd Ó Ceallaigh", one [PLACE] for
    "Tower Hamlets": not one per word."""
    merged: list[Span] = []
    for span in spans:
        last = merged[-1] if merged else None
        if last and last.kind == span.kind and (
                (span.kind == "NAME" and _NAME_GAP.fullmatch(text, last.end, span.start))
                or (span.kind == "PLACE" and text[last.end:span.start].isspace())):
            merged[-1] = Span(last.start, span.end, span.kind)
        else:
            merged.append(span)
    return merged


def _replace(text: str, spans: list[Span]) -> str:
    parts, position = [], 0
    for span in spans:
        parts.append(text[position:span.start])
        parts.append(f"[{span.kind}]")
        position = span.end
    parts.append(text[position:])
    return "".join(parts)


def deidentify(text: str, known_names: Iterable[str] = ()) -> str:
    """`text` with every recognised identifier replaced by its typed placeholder.
    `known_names` (the client's stored name and code) are removed in any case, every
    part of them, with their nicknames.

    >>> deidentify("Email me at sam@example.org or see Dr Patel at St Mary's Hospital.")
    'Email me at [EMAIL] or see Dr [NAME] at [PLACE].'
    >>> deidentify("thats gaz, he's 40", known_names=["Gareth Holloway"])
    "thats [NAME], he's [AGE]"
    """
    return _replace(text, find_identifiers(text, known_names))


def deidentify_session(texts: Sequence[str], known_names: Iterable[str] = ()) -> list[str]:
    """Each text de-identified, and a name removed from any of them removed from all.

    >>> deidentify_session(["My friend Will rang.", "Will is coming."])
    ['My friend [NAME] rang.', '[NAME] is coming.']
    """
    client = make_known(known_names)
    found = {text[s.start:s.end] for text in texts for s in _find(text, client)
             if s.kind == "NAME"}
    known = make_known(known_names, found)
    return [_replace(text, _find(text, known)) for text in texts]
