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

Shapes are written for several countries (US, UK, Irish, Canadian, Australian and New
Zealand addresses and postcodes, European streets, ID numbers after their cue words)
and for speech-to-text (numbers, e-mails, handles and dates said aloud).

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
    FUNCTION_WORDS,
    NOT_PROPER,
    TOKEN,
    WORD,
    Known,
    L,
    Lexicon,
    core,
    cue_word,
    fold,
    given_word,
    lexicon,
    listed_name,
    make_known,
    naming_word,
    place_or_name,
    place_word,
    possessive_word,
    relation_word,
    title_case,
    token_kind,
    unknown_proper,
)

KINDS = ("NAME", "PLACE", "DATE", "AGE", "PHONE", "EMAIL", "ADDRESS", "ID", "URL")

_CAPWORD = rf"[A-Z]{L}*(?:['’-]{L}+)*"
_MONTH = (
    r"(?:january|february|march|april|may|june|july|august|september|october|"
    r"november|december|jan|feb|mar|apr|jun|jul|aug|sept|sep|oct|nov|dec)\.?"
)
_DAY = (
    r"(?:\d{1,2}(?:st|nd|rd|th)?|(?:twenty[- ]|thirty[- ])?(?:first|second|third|"
    r"fourth|fifth|sixth|seventh|eighth|ninth)|tenth|eleventh|twelfth|thirteenth|"
    r"fourteenth|fifteenth|sixteenth|seventeenth|eighteenth|nineteenth|twentieth|"
    r"thirtieth)"
)
# Numbers said in words, below a hundred: "nine", "fourteen", "seventy six".
_UNIT_WORD = r"(?:one|two|three|four|five|six|seven|eight|nine)"
_TENS_WORD = rf"(?:(?:twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)(?:[- ]{_UNIT_WORD})?)"
_BELOW_HUNDRED = (
    rf"(?:{_TENS_WORD}|{_UNIT_WORD}|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen)"
)
_WEEKDAY = r"(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday|mon|tues?|wed|thu(?:rs?)?|fri|sat|sun)\.?"
# A year said in two words after a month or "born in": "eighty five", "twenty twenty".
_SHORT_YEAR = (
    rf"(?:twenty[- ](?:twenty|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|"
    rf"nineteen)(?:[- ]{_UNIT_WORD})?|(?:fifty|sixty|seventy|eighty|ninety)(?:[- ]{_UNIT_WORD})?)"
)
_ORDINAL = r"(?:[12]?1st|2?2nd|2?3rd|(?:[12]?[4-9]|1[0-3]|[23]0)th|31st)"
_NUMBER_WORD = rf"(?:{_BELOW_HUNDRED}|a hundred)"
_AGE_NUMBER = rf"(?:1[01]\d|\d{{1,2}}|{_NUMBER_WORD})"
_AGE_ORDINAL = (
    r"(?:(?:1[3-9]|[2-9]\d|10\d)(?:st|nd|rd|th)|(?:thir|four|fif|six|seven|eigh|"
    r"nine)teenth|(?:twen|thir|for|fif|six|seven|eigh|nine)tieth|hundredth|"
    r"(?:twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)[- ](?:first|"
    r"second|third|fourth|fifth|sixth|seventh|eighth|ninth))"
)
# What follows a number that is a quantity, a time or a score rather than an age.
_NOT_AGE_AFTER = (
    r"(?!\s*(?:%|/|:|'|′|\"|\.\d|,\d|-\d|percent|per\b|am\b|pm\b|a\.m|p\.m|o'?clock|"
    r"quid|pounds?|p\b|pence|euros?|dollars?|bucks|grand|k\b|mg|ml|g\b|kgs?|"
    r"kilos?|stone|st\b|lbs?|miles?|km|metres?|meters?|cm|ft|feet|foot|inch|"
    r"minutes?|mins?|hours?|hrs?|days?|nights?|weeks?|wks?|months?|times?|"
    r"years?(?![- ]old)|yrs?(?![- ]old)|"
    r"x\b|of\b|out\b|steps|points?|pts|hundred|thousand|million|units?|"
    r"pills?|tablets?|drinks?|pints?|cans?|bottles?|people|kids|children|"
    r"sessions?|things?|more|less))"
)
_STREET = (
    r"(?:Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Drive|Dr|Boulevard|Blvd|Way|Court|Ct|"
    r"Place|Pl|Close|Cl|Crescent|Cres|Terrace|Tce|Square|Sq|Gardens|Gdns|Parkway|Pkwy|"
    r"Highway|Hwy|Circuit|Cct|Esplanade|Esp|Promenade|Pde|Broadway|Marg|Nagar|Chowk|"
    r"Loop|Crossing|Ridge|Bend|Glen|"
    r"Park|Grove|View|Walk|Row|Mews|Hill|Rise|Green|Vale|Dale|Wynd|Brae|Parade|"
    r"Quay|Wharf|Yard|Gate|Circus|Heights|House|Tower|Towers|Mansions|Cottages|"
    r"Lodge|Estate|Plaza|Trail|Pike)"
)
_INSTITUTION = (
    r"(?:Hospital|Infirmary|School|Academy|College|University|Uni|Clinic|"
    r"Surgery|Practice|Primary|Nursery|Church|Chapel|Cathedral|Mosque|Synagogue|"
    r"Temple|Gurdwara|Park|Station|Airport|Prison|Centre|Center|Mall|Hall|"
    r"Ward|Hotel|Library|Stadium|Barracks|House|Hospice|Refuge|Shelter|Hostel|Counseling|Counselling|"
    r"Reservation|Alliance|Trust|Council|Parish|Corporation|Society|Aid|Beach|Care Center|Care Centre|"
    r"Medical Group|Mental Health|Behavioral Health|Behavioural Health|Family Services|Indian School|"
    r"Foundation Trust|High School|Middle School|Elementary|Plant|Mill|Mine|Depot|Institute)"
)
# One part of an address: "flat 2/1", "Blk 512", "House 47", "plot 906", "RR 2", "PO Box 17".
_ADDRESS_UNIT = (
    rf"(?:flat|apt|apartment|unit|suite|house|building|bldg|blk|block|blok|lot|plot|lp|rr|site|"
    rf"p\.?\s?o\.?\s+box|box|level|floor|street|st|road|lane|sector|phase|tc)\.?\s*#?\s*"
    rf"(?:\d[\w/-]*|[a-z]\b|{_BELOW_HUNDRED}\b)"
)
# An institution in lower case has to be told from a kind of place ("the local
# hospital", "the shopping centre") by a word in its name that is not generic.
_LOWER_INSTITUTION = (
    r"(?:hospital|infirmary|surgery|(?:group|medical|health|family|general) practice|"
    r"(?:medical |health |community |day |carers |care )?cent(?:re|er)|(?:care|nursing|rest|retirement) home|"
    r"lodge|court|house|hospice|church|chapel|cathedral|mosque|temple|gurdwara|synagogue|"
    r"(?:primary |secondary |high |grammar |junior |infant )?school|academy|college|clinic|homecare|"
    r"assisted living|manor)"
)
# A word of an institution's name: never grammar, so "move into oakfield house" starts at "oakfield".
_NOT_GRAMMAR = rf"(?!(?:{'|'.join(sorted(FUNCTION_WORDS, key=len, reverse=True))})\b)"
_LOWER_WORD = rf"(?:{_NOT_GRAMMAR}[a-z][\w'’-]*)"


def _named_institution(text: str) -> bool:
    """'elm tree surgery', 'st clement's court': a word of the name is not a generic one
    and none is grammar ("my", "his", "that")."""
    words = [fold(w) for w in re.findall(rf"{WORD}", text)]
    head = len(re.findall(rf"{WORD}", re.search(_LOWER_INSTITUTION + r"$", text).group()))
    modifiers = [w for w in words[:-head] if w not in ("and", "of", "on")]
    if not modifiers or any(w in FUNCTION_WORDS for w in modifiers):
        return False
    for k, w in enumerate(modifiers):
        stem = w.rstrip("'’s") if w.endswith(("'s", "’s", "s'")) else None
        if stem and not (k and modifiers[k - 1] in ("st", "saint")) and lexicon().is_common(stem):
            return False  # "the dentist's surgery", "my son's school"
    return any(w not in lexicon().generic_places and not w.isdigit() for w in modifiers)


_RELATION_NOUN = (
    r"(?:husband|wife|partner|boyfriend|girlfriend|fianc[eé]e?|son|daughter|"
    r"kid|child|baby|mum|mom|mam|mother|dad|da|father|brother|sister|"
    r"(?:best |old )?friend|mate|pal|boss|manager|supervisor|colleague|"
    r"co-?worker|teacher|neighbou?r|ex|cousin|aunt|auntie|uncle|nan|nana|gran|"
    r"granny|grandma|grandmother|grandpa|grandad|grandfather|niece|nephew|"
    r"step-?(?:dad|mum|mom|son|daughter|brother|sister)|half-?(?:brother|sister)|"
    r"therapist|doctor|counsell?or|gp|lawyer|solicitor|sponsor|carer|"
    r"(?:key|social|support|case) worker|housing officer|youngest|eldest|"
    r"oldest|lad|fella|girl|boy|twin|flatmate|housemate|landlord|landlady|"
    r"bf|gf|bff|hubby|fiance|stepfather|stepmother|godmother|godfather|"
    r"grandson|granddaughter|grandchild|spouse|roommate|classmate|"
    r"mil|fil|sil|bil)"
)
# a possessor: "my", "her", and in notes "pt's", "client's", "Anna's"
_RELATION = (
    rf"(?i:\b(?:my|our|his|her|their|your|pt['’]?s|patient['’]?s|client['’]?s)"
    rf"\s+(?:ex[- ]|late\s+|older\s+|younger\s+|little\s+|big\s+|twin\s+|great[- ](?:great[- ])?)?{_RELATION_NOUN}"
    rf"(?:-in-law)?)"
)
# Spoken digits, as speech-to-text writes a phone or card number.
_DIGIT_WORD = r"(?:zero|oh|nought|one|two|three|four|five|six|seven|eight|nine|\d+)"
_SPOKEN_DIGITS = (
    rf"(?i:\b(?:(?:double|triple)\s+)?{_DIGIT_WORD}"
    rf"(?:[\s,-]+(?:(?:double|triple)\s+)?{_DIGIT_WORD})+\b)"
)
# A code spelt out letter by letter: "sw one a one a a", "b n x four seven k".
_SPELLED = (
    rf"(?i:\b(?:[a-z]{{1,2}}|{_DIGIT_WORD})(?:[\s-]+(?:[a-z]|{_DIGIT_WORD}))"
    rf"{{3,9}}\b)"
)
# A year as digits or spoken: "1987", "nineteen eighty-seven", "twenty twenty-three".
_YEAR = (
    rf"(?:(?:19|20)\d\d|(?:nineteen|twenty)[- ](?:hundred[- ]and[- ]|oh[- ]|o[- ])?"
    rf"{_BELOW_HUNDRED}|two thousand(?: and)?(?: \w+)?)"
)
# US states, Canadian provinces and Australian states, as written after a town.
_REGION = (
    r"(?:AL|AK|AZ|AR|CA|CO|CT|DE|DC|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|"
    r"MO|MT|NE|NV|NH|NJ|NM|NY|NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY|"
    r"ON|QC|BC|AB|MB|SK|NS|NB|NL|PE|YT|NT|NU|NSW|VIC|QLD|TAS|ACT)"
)
# Codes that are also words or names ("OK", "me", "Al"): a region only with a postcode.
_REGION_WORDS = frozenset("AL HI ID IN ME MA OH OK OR PA ON".split())
_PET = (
    r"(?:dog|cat|puppy|pup|kitten|pet|horse|pony|rabbit|bunny|hamster|guinea pig|"
    r"parrot|budgie|tortoise|fish|gecko|lizard|snake|ferret)"
)
_TITLE = (
    r"(?:Mrs|Mr|Ms|Miss|Mx|Dr|Prof|Professor|Doctor|Auntie|Aunty|Aunt|Uncle|Nurse|"
    r"PC|DC|DS|DI|Sgt|Sergeant|Officer|Inspector|Detective|Father|Fr|Sister|"
    r"Rev|Reverend|Judge|Coach|Sir|Dame|Cousin|Nanny|Granny|Grandma|Grandad|Adv|Advocate|"
    r"Pastor|Imam|Ustaz|Ustazah|Rabbi|Elder|Chief)\.?"
)


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
    """A reference number, not a score ("50/50"), a year span, "PHQ-9" or a countdown
    ("5-4-3-2-1")."""
    digits = sum(c.isdigit() for c in text)
    letters = any(c.isalpha() for c in text)
    return (digits >= 5 or (digits >= 3 and letters and len(text) >= 5)) and not re.fullmatch(
        r"(?:19|20)\d\d\s*[-/]\s*(?:19|20)?\d\d|\w(?:[-/]\w)+", text
    )


_DIGIT_VALUE = re.compile(
    r"(?i:\b(?:(double|triple)\s+)?(zero|oh|nought|one|two|three|four|"
    r"five|six|seven|eight|nine)\b|\d)"
)


def _spoken_digits(text: str) -> int:
    """How many digits a run of spoken ones stands for: "oh seven double one" is 4."""
    count = 0
    for match in _DIGIT_VALUE.finditer(text):
        count += {"double": 2, "triple": 3}.get((match.group(1) or "").lower(), 1)
    return count


def _id_like(text: str) -> bool:
    """After a cue ("plate", "member ID"): two digits in four characters, or four
    spoken digits."""
    digits = sum(c.isdigit() for c in text)
    if re.fullmatch(r"(?:19|20)\d\d", text):
        return False  # a year: "the 2019 file" is not "file 2019"
    letters = re.match(r"([A-Za-z]+)\s", text)
    if letters and digits and lexicon().is_common(fold(letters.group(1))):
        return False  # "tax here 11 years"
    return (digits >= 2 and sum(c.isalnum() for c in text) >= 4) or (digits == 0 and _spoken_digits(text) >= 4)


def _handle_like(text: str) -> bool:
    """A user name, not "my insta is dead": joined by dots or underscores, with a
    digit, or not an English word."""
    return any(c.isalpha() for c in text) and (
        bool(re.search(r"[\d._]|\s", text)) or not lexicon().is_english(text.lower())
    )


# Words before an identity number: "NHS number", "member ID", "plate", "CRN", "Aadhaar".
_ID_CUE = (
    r"ssn|social security|social insurance|sin|nhs|chi|pps|ppsn|ni|nino|"
    r"national insurance|national id|national identity|identity|identification|"
    r"mrn|medical record|medical|hospital|patient|health|health card|medicare|"
    r"medicaid|ohip|ramq|nhi|ird|tfn|tax file|abn|crn|centrelink|aadhaar|aadhar|pan|"
    r"nric|fin|bsn|dni|nie|nif|cpf|curp|rfc|rut|cedula|cédula|emirates id|iqama|omang|"
    r"personnummer|steuer|passport|visa|permit|residence permit|green card|alien|"
    r"uscis|licen[cs]e|driving licen[cs]e|driver['’]?s licen[cs]e|dl|dln|vin|"
    r"account|acct|member(?:ship)?|subscriber|group|insurance|insurer|policy|case|"
    r"file|docket|matter|court|reference|ref|client|claim|badge|staff|employee|"
    r"payroll|student|pupil|roll|card|reg|registration|rego|plate|number plate|tax|"
    r"benefit|pension|voter|booking|confirmation|order|invoice|tracking|"
    r"prescription|rx|id"
)


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
    tlds = (
        r"(?:com|org|net|co|uk|ie|io|me|ly|gov|edu|ac|info|biz|app|tv|us|ca|au|de|fr|nz|"
        r"dev|ai|xyz|site|online|blog|tech|shop|page|za|ng|ke|gh|sg|ph|pk|nl|es|br|mx|jp|"
        r"ch|se|dk|pl|in)"
    )
    number = rf"(?:\d+|{_NUMBER_WORD})"
    house = r"(?:\d{1,4}[A-Za-z]?/)?\d{1,5}[A-Za-z]?"  # "9/22": flat 9 at number 22
    return (
        _Rule(
            "PLACE",
            re.compile(  # first, or its words go one by one: "at elm tree surgery": "at elm tree surgery", "at the willows nursing home"
                rf"(?i:\b(?:at|from|to|into|in|near|outside|called|visit(?:ed|ing)?)\s+(?:the\s+)?)"
                rf"((?:{_LOWER_WORD}\s+(?:(?:and|of|on)\s+)?){{1,4}}{_LOWER_INSTITUTION})\b"
                r"(?!\s+(?:runs?|trips?|holidays?|uniforms?|bus|fees|gates?|friends?|work|years?|days?|"
                r"terms?|reports?|meetings?|grounds?|staff|party|parties|doors?|kitchen|rooms?))"
            ),
            group=1,
            check=_named_institution,
        ),
        _Rule("EMAIL", re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")),
        _Rule(
            "EMAIL",
            re.compile(  # spelt out: "jo underscore p at hotmail dot co dot uk"
                rf"(?i:\b(?:[a-z]\s+(?=\w+\s+at\s))?\w+(?:\s+(?:underscore|dot|period|point|dash|hyphen)\s+\w+|\s+{number})*"
                rf"\s+(?:at|\(at\)|\[at\]|at sign|at symbol)\s+(?:[a-z]\s+)?\w+"
                rf"(?:(?:\.|\s+(?:dot|\(dot\)|\[dot\])\s+){tlds})+\b)"
            ),
        ),
        _Rule("URL", re.compile(r"\b(?:https?://|www\.)[^\s<>\"']+[^\s<>\"'.,;:!?)]")),
        _Rule("URL", re.compile(rf"(?i:\b(?:[a-z0-9-]+\.)+{tlds}\b(?:/[^\s<>\"']*[^\s<>\"'.,;:!?)])?)")),
        _Rule(
            "URL",
            re.compile(  # said aloud: "dhlim dot dev slash cv"
                rf"(?i:\b(?:www\s+dot\s+)?(?!(?:the|a|an|my|your|his|her|our|their|its|it)\b)"
                rf"[a-z0-9-]+(?:\s+dot\s+[a-z0-9-]+)*\s+dot\s+{tlds}\b"
                rf"(?:\s+(?:forward\s+)?slash\s+(?:at\s+)?[a-z0-9-]+(?:\s+{_NOT_GRAMMAR}[a-z0-9]+){{0,2}})*)"
            ),
        ),
        _Rule("URL", re.compile(r"(?<![\w.@])@\w(?:[\w.]*\w)?")),  # a social media handle
        _Rule(
            "URL",
            re.compile(  # "my insta is jo dot p", "handle's dyl underscore 9"
                r"(?i:\b(?:handle|username|user name|insta|instagram|ig|twitter|tiktok|snapchat|"
                r"snap|discord|gamertag|threads|bluesky|youtube|twitch)(?:\s+(?:handle|name|"
                r"account))?(?:['’]s|\s+is|\s*:|\s+at|\s+it['’]?s)\s+(?:at\s+(?:sign\s+)?)?)"
                r"(\w+(?:(?:\s+(?:underscore|dot)\s+|[._])\w+)*)"
            ),
            group=1,
            check=_handle_like,
        ),
        _Rule("URL", re.compile(r"\b[A-Za-z0-9]+(?:_+[A-Za-z0-9]+)+_*")),  # user_name_9
        _Rule(
            "URL",
            re.compile(  # said aloud: "priya underscore draws"
                r"(?i:\b(?:at\s+(?:sign\s+)?)?\w+(?:\s+(?:underscore|dot)\s+\w+)*"
                r"\s+underscore\s+\w+(?:\s+(?:underscore|dot)\s+\w+)*)"
            ),
        ),
        _Rule("ID", re.compile(r"\b\d{3}-\d{2}-\d{4}\b")),
        _Rule("ID", re.compile(r"\b[A-Z]{2}\s?\d{2}\s?\d{2}\s?\d{2}\s?[A-D]\b")),  # UK NI
        _Rule("ID", re.compile(r"\b[A-Z9]{5}\s?\d{6}\s?[A-Z9]{2}\d[A-Z]{2}\b")),  # UK driving licence
        _Rule("ID", re.compile(r"\b[A-Z]{2}\d{2}\s[A-Z]{3}\b")),  # UK number plate: "LK09 WXP"
        _Rule("ID", re.compile(r"\b[A-Z]{1,2}\d{6}\([0-9A]\)")),  # Hong Kong identity card
        _Rule(
            "ID",
            re.compile(  # spelt letter by letter, then digits: "k n h zero zero four five one"
                rf"(?i:\b(?:[a-z]\s+){{2,8}}{_SPOKEN_DIGITS}(?:\s+(?:[a-z]\s+)*[a-z]\b)?(?:\s+{_SPOKEN_DIGITS})?)"
            ),
            check=lambda t: _spoken_digits(t) >= 4,
        ),
        _Rule(
            "ID",
            re.compile(
                rf"(?i:\b(?:{_ID_CUE})(?:\s+(?:id|no\.?|nos?|number|num|#|code))?"
                rf"(?:\s*[:#]\s*|\s+is\s+|['’]s\s+|,?\s+(?:it['’]?s\s+)?))"
                rf"((?!(?i:on|in|at|is|no|of|to|by|for|was|and|the|dated|from)\b)"  # "wgh 4471 0928"
                rf"[A-Za-z]{{1,5}}(?:\s\d{{2,6}}){{1,3}}(?:\s(?=[A-Za-z]*\d)[A-Za-z0-9]{{2,6}})?(?![/.:-]?\w)"
                rf"|(?=[A-Za-z-/.]*\d)[A-Za-z0-9]+(?:[-/.][A-Za-z0-9]+)+"
                rf"|\d[\d -]{{2,}}\d[A-Za-z]?|[A-Za-z]*\d[A-Za-z0-9]{{2,}}|{_SPOKEN_DIGITS})\b"
            ),
            group=1,
            check=_id_like,
        ),
        _Rule(
            "ADDRESS",
            re.compile(
                rf"(?i:\b(?:flat|apt|apartment|unit|suite)\.?\s*#?\s*[\w/-]+,?\s+)?"
                rf"\b{house},?\s+(?:(?:{_CAPWORD}|[NSEW]\.?|\d+(?:st|nd|rd|th))\s+)"
                rf"{{1,3}}{_STREET}\b(?:\.?\s+[NSEW]{{1,2}}\b)?"
            ),
        ),
        _Rule(
            "ADDRESS",
            re.compile(  # "27 glenview park", "forty two willow lane"
                rf"(?i:\b(?:{house}|(?!one\b){_NUMBER_WORD})\s+(?!(?:min(?:ute)?s?|hours?|hrs?|"
                r"miles?|km|mins|seconds?|days?|weeks?|months?|years?|times?|more|other|of|in|on|"
                r"to|the|a|lane|way)\b)"
                r"(?:[a-z]+\s+){1,2}(?:street|road|avenue|lane|drive|close|crescent|terrace|"
                r"gardens|grove|boulevard|blvd|ave|rd|st|parkway|pkwy|highway|hwy)\b)"
            ),
        ),
        _Rule(
            "ADDRESS",
            re.compile(  # a street without its number: "we lived on Cedar Lane"
                rf"\b(?:{proper}\s+){{1,2}}(?:Street|Road|Avenue|Ave|Lane|Drive|Boulevard|Blvd|"
                rf"Crescent|Terrace|Close|Grove|Gardens|Parkway|Pkwy|Rd)\b"
            ),
        ),
        _Rule(
            "ADDRESS",
            re.compile(  # parts of an address in a row: "House 47, Street 9, Block C", "RR 2, Site 4, Box 17"
                rf"(?i:\b{_ADDRESS_UNIT}(?:,?\s+(?:{_ADDRESS_UNIT}|\d{{1,3}}/F\b))+)"
            ),
        ),
        _Rule(
            "ADDRESS",
            re.compile(  # one part after an address cue: "Lot 22, Bamaga", "live at flat two fourteen abbeyfield road"
                rf"(?i:\b(?:address(?:\s+is)?:?|lives?\s+at|living\s+at|resides\s+at|home:|at|send\s+it\s+to)\s+)"
                rf"((?i:{_ADDRESS_UNIT})(?:,?\s+(?i:{number}\s+)?(?:{_NOT_GRAMMAR}[A-Za-z]+\s+){{1,3}}"
                rf"(?i:{_STREET})\b)?)"
            ),
            group=1,
        ),
        _Rule(
            "ADDRESS",
            re.compile(  # "402 Calle Luna", "rue Saint-Denis", "Via Roma 12"
                rf"(?:\b{house},?\s+)?(?i:\b(?:calle|carrer|rue|avenida|rua|jalan|jln|chemin|"
                rf"paseo|strada|ulica|ul\.)\s+)(?:(?i:de|del|la|le|les|du|des|da|do|dos|di|della|"
                rf"van|von)\s+)*{_CAPWORD}(?:[\s-]{_CAPWORD}){{0,2}}(?:,?\s+\d{{1,5}}[A-Za-z]?\b)?"
                rf"|(?i:\b(?:via|viale|piazza|avenida|calle|rua|rue)\s+)(?:{_CAPWORD}\s+){{1,3}}"
                rf"\d{{1,5}}[A-Za-z]?\b"
            ),
        ),
        _Rule(
            "ADDRESS",
            re.compile(  # as dictation writes it, after a house number: "4410 east calle ocotillo", "9 heol y nant"
                rf"(?i:\b{house},?\s+(?:(?:north|south|east|west|n|s|e|w)\s+)?(?:calle|carrer|rue|avenida|rua|"
                rf"jalan|jln|chemin|paseo|strada|ulica|heol|ffordd|stryd|lôn|lon|via|viale|piazza)\s+"
                rf"(?:(?:de|del|la|le|les|du|des|da|do|dos|di|della|van|von|y|yr)\s+)*{_NOT_GRAMMAR}{L}+"
                rf"(?:[\s-]{_NOT_GRAMMAR}{L}+)?)"
            ),
        ),
        _Rule(
            "ADDRESS",
            re.compile(  # "Hauptstraße 5", "Kerkstraat 12"
                rf"(?i:\b{L}{{3,}}(?:straße|strasse|str\.|weg|gasse|allee|platz|straat|laan|gracht|"
                rf"plein|vej|gade|gatan|vägen|veien|gata)\s+\d{{1,4}}[a-z]?\b)"
            ),
        ),
        _Rule(
            "ADDRESS",
            re.compile(
                r"(?i:\b(?:flat|apt|apartment|suite|unit)\.?\s*#?\s*"
                r"\d+[a-z]?\b(?!\s+(?:years?|months?|weeks?|days?|"
                r"mg|ml|of|hours?|mins?|minutes?)))"
            ),
        ),
        _Rule("ADDRESS", re.compile(r"(?i:\b(?:blk|block)\s+\d{1,4}[a-z]?\b)")),  # Singapore
        _Rule(
            "ADDRESS",
            re.compile(
                r"(?i:\b(?:P\.?\s?O\.?|GPO|post office)\s+Box\s+\d+"
                r"|\b(?:private|locked)\s+bag\s+\d+)"
            ),
        ),
        _Rule(
            "ADDRESS",
            re.compile(  # "postcode is LS1 4AB", "pin code 560 001"
                r"(?i:\b(?:post\s?code|postal code|zip(?:\s*code)?|pin\s?code|eircode)"
                rf"(?:\s+is|\s*:)?\s*)((?=[A-Za-z]{{0,3}}\d)[A-Za-z0-9]{{2,8}}"
                rf"(?:[ -](?:(?=[A-Za-z]?\d)[A-Za-z0-9]{{3}}|\d{{3,4}}|[A-Z]{{2}}\b))?\b"
                rf"|{_SPELLED})"
            ),
            group=1,
        ),
        _Rule("ADDRESS", re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]?\s+\d[ABD-HJLNP-UW-Z]{2}\b")),
        _Rule(
            "ADDRESS",
            re.compile(r"\b[a-z]{1,2}\d[a-z\d]?\s+\d[abd-hjlnp-uw-z]{2}\b"),
            check=lambda t: not re.search(r"\d(?:st|nd|rd|th)$", t),
        ),  # "ls1 4ab"
        _Rule("ADDRESS", re.compile(rf"\b{_REGION}\s+\d{{4,5}}(?:-\d{{4}})?\b")),
        _Rule(
            "PLACE",
            re.compile(  # "Verona, WI", "Santa Fe, NM"
                rf"\b(?:{proper}\s+){{0,2}}{proper},\s+{_REGION}\b(?![\w'’])"
            ),
            check=lambda t: t.rsplit(None, 1)[-1] not in _REGION_WORDS,
        ),
        _Rule(
            "ADDRESS",
            re.compile(r"\b[AC-FHKNPRTV-Y]\d[\dW]\s?[\dAC-FHKNPRTV-Y]{4}\b"),
            check=lambda t: any(c.isalpha() for c in t[3:]),
        ),  # Irish Eircode
        _Rule("ADDRESS", re.compile(r"\b[A-Z]\d[A-Z]\s?\d[A-Z]\d\b")),  # Canadian postcode
        _Rule(
            "DATE",
            re.compile(
                r"\b\d{4}[-/.]\d{1,2}[-/.]\d{1,2}\b"
                r"|\b\d{1,2}[/.-]\d{1,2}[/.-](?:\d{4}|\d{2}\b)"
            ),
        ),
        _Rule(
            "DATE",
            re.compile(
                rf"(?i:\b(?:{_WEEKDAY},?\s+)?(?:(?:the\s+)?{_DAY}(?:\s+|-)(?:of\s+)?{_MONTH}|{_MONTH}\s+(?:the\s+)?{_DAY}\b)"
                rf"(?:,?[\s-]+(?:{_YEAR}|['’]\d\d|{_SHORT_YEAR}))?\b)"
            ),
        ),
        _Rule("DATE", re.compile(rf"(?i:\b{_MONTH}\s+(?:of\s+)?(?:{_YEAR}|['’]\d\d)\b)")),
        _Rule(
            "DATE",
            re.compile(  # "born in 1987", "DOB: nineteen eighty-seven"
                rf"(?i:\b(?:born(?:\s+in)?|dob|d\.o\.b\.?|date of birth|birth year)"
                rf"(?:\s+(?:is|was))?\s*:?\s+)({_YEAR}|{_SHORT_YEAR})\b"
            ),
            group=1,
        ),
        _Rule(
            "DATE",
            re.compile(  # "on 3/14", "since 14.3", "appt is 3/8"
                r"(?i:\b(?:on|since|by|until|till|before|after|dated|due|dob|"
                r"(?:appt|appointment|meeting|birthday|bday|b-day|date|hearing|court|review|"
                r"interview|surgery|scan)(?:\s+(?:is|was|on|at|of))?)\s+)"
                r"((?:[12]\d|3[01]|0?[1-9])[/.](?:[12]\d|3[01]|0?[1-9]))\b(?![/.]\d)"
            ),
            group=1,
        ),
        _Rule(
            "DATE",
            re.compile(  # "22/11": a day over its month cannot be a score out of it
                r"(?<![\w/.])((?:[12]\d|3[01]|0?[1-9])/(?:1[0-2]|0?[1-9]))\b(?![/.,]\d|\s*%)"
            ),
            check=lambda t: int(t.split("/")[0]) > int(t.split("/")[1]) and t != "24/7",
        ),
        _Rule(
            "DATE",
            re.compile(  # "on the 9th", "since the 21st,", "on the fourteenth"
                rf"(?i:\b(?:on|since|by|from|until|till|til|before|after|the)\s+(?:the\s+)?)"
                rf"({_ORDINAL})\b(?!\s*(?:time|floor|grade|year|attempt|go|place|one|week|"
                rf"day|session|child|kid|baby|try|round|century|birthday))"
                rf"|(?i:\b(?:on|since|by|until|till|before|after)\s+the\s+)"
                rf"((?!first\b|\d){_DAY})\b(?=\s*(?:[,.;!?)]|$|of\s+{_MONTH}|and\b|at\b|so\b|"
                rf"but\b|when\b|i\b|we\b|he\b|she\b|they\b|it\b|too\b))"
            ),
        ),
        _Rule("ID", re.compile(_JOINED_CODE), check=lambda t: _code_like(t) and any(c.isalpha() for c in t)),
        _Rule(
            "PHONE",
            re.compile(
                r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,5}\)[\s.-]?)?"
                r"\d[\d\s.-]{4,}\d(?:,?\s*(?i:ext\.?|extension|x)\s*\d{1,5})?(?!\w)"
            ),
            check=_phone_like,
        ),
        _Rule(
            "PHONE",
            re.compile(rf"(?i:\bplus\s+)?{_SPOKEN_DIGITS}"),  # "oh seven seven..."
            check=lambda t: any(c.isalpha() for c in t) and 7 <= _spoken_digits(t) <= 15,
        ),
        _Rule("ID", re.compile(_JOINED_CODE), check=_code_like),
        _Rule("ID", re.compile(r"\b(?=[A-Z]*\d)(?=\d*[A-Z])[A-Z0-9]{5,}\b"), check=_code_like),
        _Rule(
            "ID",
            re.compile(r"(?i:\b(?=[a-z]*\d)(?=\d*[a-z])[a-z0-9]{6,}\b)"),
            check=lambda t: (
                sum(c.isdigit() for c in t) >= 4
                and not re.fullmatch(r"(?i:\d+(?:mg|ml|kg|km|lbs?|mins?|hrs?|am|pm|k|st|nd|rd|th|s|m|g|x))", t)
            ),
        ),
        _Rule(
            "AGE",
            re.compile(  # the cue is part of it: "(aged 11)", "since age 16", "turning five"
                rf"(?i:\b(?:aged?|turning)\s+(?:{_AGE_NUMBER}))\b{_NOT_AGE_AFTER}"
            ),
        ),
        _Rule(
            "AGE",
            re.compile(
                rf"(?i:\b(?:i'?m|i am|i was|i'?ll be|i'?d be|you'?re|you are|you were|he'?s|hes|"
                rf"he is|he was|she'?s|shes|she is|she was|they'?re|they are|they were|"
                rf"(?:he|she|they|i|you)(?:'?d|'?ll| will| would) be|"
                rf"(?:i'?m|i am|he'?s|she'?s|they'?re|you'?re) (?:going to|gonna) be|"
                rf"turn(?:ed|s|ing)?|aged?|ages|age of|age:)\s+(?:only\s+|just\s+|nearly\s+|almost\s+|"
                rf"about\s+|barely\s+|already\s+|still\s+|now\s+|over\s+|under\s+)?)"
                rf"({_AGE_NUMBER})\b{_NOT_AGE_AFTER}"
            ),
            group=1,
        ),
        _Rule(
            "AGE",
            re.compile(  # "my son is 12", "the kids are 4 and 6", "who's 9"
                rf"(?:{_RELATION}s?(?:['’]s|\s+(?:is|was|are|were|turns|turned))|"
                rf"(?i:\bwho(?:['’]s|\s+is|\s+was)))\s+(?:only\s+|just\s+|nearly\s+|"
                rf"almost\s+|now\s+)?((?i:{_AGE_NUMBER}))\b{_NOT_AGE_AFTER}"
            ),
            group=1,
        ),
        _Rule(
            "AGE",
            re.compile(  # "Mum's sixtieth", "her 40th birthday"
                rf"(?i:(?:['’]s|\b(?:my|his|her|their|your|our))\s+)({_AGE_ORDINAL})"
                rf"(?=\s+(?:birthday|bday|b-day|party|dinner|do|celebration|lunch|drinks)\b"
                rf"|\s*[.,!?]|\s*$)"
            ),
            group=1,
        ),
        _Rule("AGE", re.compile(rf"(?i:\b{_AGE_NUMBER}(?:[- ]?(?:years?|yrs?)[- ]old|\s?(?:yo|y/o|y\.o\.))\b)")),
        _Rule("AGE", re.compile(r"(?<![\w/.-])(?:1[01]\d|\d{1,2})[MF](?![\w/-])")),  # notes: "34F", "22M"
        _Rule(
            "AGE",
            re.compile(
                r"(?i:\bin\s+(?:my|his|her|their|your)\s+)"
                r"((?i:early\s+|mid[- ]?|late\s+)?(?:(?:\d0'?s)|(?:twenties|thirties|forties|fifties|sixties|"
                r"seventies|eighties|nineties|teens)))\b"
            ),
            group=1,
        ),
        _Rule(
            "AGE",
            re.compile(  # "his father, 68,", "son Maksym (8)", "Pt 31."
                rf"(?:{_RELATION}s?\s*[,(]|(?i:\b(?:pt|patient|client)(?:\s+is|\s+was|,)?))\s*"
                rf"((?i:{_AGE_NUMBER}))(?=\s*(?:[,.;!?)]|$|and\b|y/?o\b|years? old))"
            ),
            group=1,
        ),
        _Rule(
            "AGE",
            re.compile(  # unpunctuated dictation: "client is 79 lives in", "patient is seventy six widowed"
                rf"(?i:\b(?:pt|patient|client|(?<![\w'’] )(?<!\bthe ){_RELATION_NOUN})\s+(?:is|was|aged|now)\s+"
                rf"(?:only\s+|just\s+|nearly\s+|almost\s+|now\s+)?)((?i:{_AGE_NUMBER}))\b{_NOT_AGE_AFTER}"
                rf"(?!\s+(?:past|to|mph|degrees?|stone|weeks?|o['’]clock|in\s+the))"
            ),
            group=1,
        ),
        _Rule(
            "AGE",
            re.compile(  # "elderly client eighty seven from", "hard at seventy nine", "both 36,"
                rf"(?i:\b(?:pt|patient|client|at|both)\s+)"
                rf"({_TENS_WORD}|1[3-9]|[2-9]\d|10\d)\b{_NOT_AGE_AFTER}"
                rf"(?!\s+(?:past|to|mph|degrees?|stone|weeks?|o['’]clock|in\s+the|and\s+\d|down|up|from|"
                rf"higher|lower|which|on|point|now|last|this|today)\b)"
            ),
            group=1,
        ),
        _Rule(
            "PLACE",
            re.compile(  # "Bethany Christian Trust", "Children's Aid Society of Toronto"
                rf"\b{proper}\s+(?:{_CAPWORD}\s+){{0,2}}{_INSTITUTION}\b"
                rf"(?:\s+of\s+(?:the\s+)?{_CAPWORD}(?:\s+{_CAPWORD})?)?"
            ),
        ),
        _Rule(
            "PLACE",
            re.compile(  # a capitalised name, then its kind in lower case: "Prestwich CAMHS clinic"
                rf"\b{proper}(?:\s+(?:{_CAPWORD}|of|de|du|d['’]|la|le|del)){{1,4}}\s+"
                rf"(?:clinic|parish|plant|hall|centre|center|church|school|surgery|practice|ward|unit|mosque|temple)\b"
            ),
        ),
        _Rule(
            "PLACE",
            re.compile(  # an institution by its initials: "night shift at VGH", "referred from KPH"
                r"(?:\b(?i:at|from|to|admitted(?:\s+to)?|referred\s+(?:from|to|by)|via|discharged\s+from)\s+)"
                r"([A-Z]{3,5})\b(?![&'’-])"
            ),
            group=1,
            check=lambda t: fold(t) not in lexicon().acronyms and fold(t) not in lexicon().ordinary,
        ),
        _Rule(
            "PLACE",
            re.compile(  # a street without its number: "on rye lane", "on nguyen van linh street"
                rf"(?i:\b(?:on|off|along|up|down|near)\s+(?:the\s+)?)((?:{_NOT_GRAMMAR}{L}+\s+){{1,3}}"
                rf"(?i:street|road|lane|avenue|boulevard|drive|crescent|terrace|parade|highway))\b"
            ),
            group=1,
            check=lambda t: any(fold(w) not in lexicon().generic_streets for w in t.split()[:-1]),
        ),
        _Rule(
            "PLACE",
            re.compile(  # named first, without a number: "on rue pasteur", "on ulica dluga"
                rf"(?i:\b(?:on|in|at|off)\s+)((?i:calle|rue|ulica|avenida|rua|jalan|via|strada|heol|souq|souk)\s+"
                rf"(?:(?i:de|del|la|le|les|du|des|da|do|dos|di|della|el|al)\s+)*{_NOT_GRAMMAR}{L}{{3,}}"
                rf"(?:\s+{_NOT_GRAMMAR}{L}{{3,}})?)"
            ),
            group=1,
        ),
        _Rule("PLACE", re.compile(rf"(?i:\b{L}{{3,}}(?:straße|strasse|gasse|allee|platz|straat|laan|gracht))\b")),
        _Rule(
            "PLACE",
            re.compile(  # "nasr city", "gwarinpa area", "barangay san roque"
                rf"(?i:\b({_NOT_GRAMMAR}[a-z]{L}{{2,}}\s+(?:city|area|district|province|municipality|suburb|"
                rf"township|county)))\b"
                rf"|(?i:\b(?:in|from|to|at)\s+)((?i:district|sector|barangay|colonia)\s+(?:\d{{1,3}}|{_NUMBER_WORD}|"
                rf"{_NOT_GRAMMAR}{L}+(?:\s+{_NOT_GRAMMAR}{L}+)?))\b"
            ),
            check=lambda t: (
                not lexicon().is_english(fold(t.split()[0]))
                or t.split()[0].lower() in ("district", "sector", "barangay", "colonia")
            ),
        ),
        _Rule("PLACE", re.compile(rf"\b(?:St\.?|Saint)\s+[A-Z]{L}*+(?!(?:['’]s)?\s+(?:Day|Eve|Night)\b)(?:['’]s)?")),
        _Rule(
            "KEEP",
            re.compile(  # a feast, not a person: "St Patrick's Day"
                rf"\b((?:St\.?\s+|Saint\s+)?[A-Z]{L}*+)(?=['’]s\s+Day\b)"
            ),
            group=1,
        ),
        _Rule(
            "KEEP",
            re.compile(  # a pet's name is not the client's business to hide
                rf"(?i:\b{_PET}(?:\s+(?:called|named))?),?\s+({word})"
                rf"|({word})\s*\((?i:(?:my|our|his|her|their|the|pt['’]?s)\s+{_PET})\)"
            ),
            check=cue_word,
        ),
        _Rule("NAME", re.compile(rf"\b{_TITLE}\s+({proper}(?:\s+{proper})?)"), group=1),
        _Rule("NAME", re.compile(rf"(?i:\b(?:mrs|mr|ms|mx|dr|pc|sgt)\.?)\s+({word})"), group=1, check=cue_word),
        _Rule(
            "NAME",
            re.compile(  # in notes: "Pt Oksana reports"
                rf"\b(?:Pt|Patient|Client)\.?\s+({proper})"
            ),
            group=1,
            check=cue_word,
        ),
        _Rule("NAME", re.compile(rf"{_RELATION},?\s+({word})"), group=1, check=relation_word),
        _Rule(
            "NAME",
            re.compile(  # "Wife Hoa and 2 kids", "sister-in-law Deepthi"
                rf"(?i:\b{_RELATION_NOUN}(?:-in-law)?)(?:,|\s+(?:named|called))?\s+({proper})"
            ),
            group=1,
            check=cue_word,
        ),
        _Rule(
            "NAME",
            re.compile(  # a speaker's name in a transcript: "GOLNAZ: ...", "Golnaz: ..."
                rf"(?:^|(?<=[\n.!?)\]] )|(?<=[\n.!?)\]]  ))([A-ZÀ-Þ]{L}+(?:[-' ][A-ZÀ-Þ]{L}+)?)(?=:\s)"
            ),
            group=1,
            check=lambda t: fold(t) not in lexicon().speaker_roles and cue_word(t.title()),
        ),
        _Rule(
            "NAME",
            re.compile(  # initials standing for a person: "client R.K.", "Re: T.H.", "A.-S. L.", "A.McK."
                r"(?<![\w.])((?:[A-Z]\.-?){1,2}(?:Mc[A-Z]|[A-Z][a-z]?)\.(?:\s?[A-Z]\.)?|(?<=Client )[A-Z]\.)(?![\w])"
            ),
            group=1,
            check=lambda t: t.replace(" ", "") not in lexicon().not_initials,
        ),
        _Rule(
            "NAME",
            re.compile(  # "Sister-in-law 'Guddu'", "Cousin 'Precious'": a quoted word after a relation is a name
                rf"(?i:\b{_RELATION_NOUN}(?:-in-law)?)\s+['‘\"“]({WORD})['’\"”]"
            ),
            group=1,
        ),
        _Rule(
            "NAME",
            re.compile(  # lower case, as dictation writes it: "daughter joy is 19"
                rf"(?i:\b{_RELATION_NOUN}(?:-in-law)?)(?:,|\s+(?:named|called))?\s+([a-z]{L}*+(?:['’-]{L}+)*)"
            ),
            group=1,
            check=relation_word,
        ),
        _Rule(
            "NAME",
            re.compile(  # kinship said as a title in other languages: "kuya bong", "Tannie Marie"
                rf"(?:\b(?i:kuya|tita|tito|lola|lolo|tia|tio|tía|tío|tante|oom|tannie|ouma|oupa|"
                rf"aunty|auntie|baba|bibi|didi|bhaiya|abang|kakak|kak|makcik|mak cik|pakcik|"
                rf"pak cik|encik|puan|nanay|tatay|inay|itay|mang|aling|ninong|ninang|gogo|"
                rf"mkhulu|baba|mama|papa|bà|ông|cô|chú|anh|chị|abu|umm|um|bint)|\bAte)\s+({word})"
            ),
            group=1,
            check=relation_word,
        ),
        _Rule(
            "NAME",
            re.compile(  # "whom pt calls 'Pops'", "goes by 'Gosia'"
                rf"(?i:\b(?:named|called|calls?|call(?:s|ed)?\s+(?:me|him|her|them)|goes by|go by|"
                rf"known as|nickname(?:\s+is|\s+was)?))\s+['\"‘“]({WORD})['\"’”]"
            ),
            group=1,
            check=lambda t: fold(t) not in FUNCTION_WORDS and (title_case(t) or not lexicon().is_english(fold(t))),
        ),
        _Rule(
            "NAME",
            re.compile(
                rf"(?i:\bnamed|\bcalled|\bcall(?:s|ed)?\s+(?:me|him|her|them)|\bname\s+(?:is|was)|"
                rf"\bname['’]s|\bgoes by|\bgo by|\bknown as|\bnickname(?:\s+is|\s+was)?|"
                rf"\bdown as)\s+({word})"
            ),
            group=1,
            check=naming_word,
        ),
        _Rule(
            "NAME",
            re.compile(  # who writes: "xav here", "hi its chantelle"
                rf"(?:^|[.!?\n]\s*)(?i:(?:(?:hi|hey|hiya|hello|morning)\W+)?"
                rf"(?:it['’]?s\s+|this is\s+)?)({word})(?=\s+here\b)"
                rf"|(?:^|[.!?\n]\s*)(?i:(?:hi|hey|hiya|hello|morning|good morning|evening)\W+(?:\w+\W+)?"
                rf"(?:it['’]?s|its|this is)\s+)({word})"
            ),
            check=naming_word,
        ),
        _Rule(
            "NAME",
            re.compile(  # who is written to: "Hi Jen,"
                rf"(?:^|[.!?\n]\s*)(?i:(?:hi|hey|hiya|hello|dear|morning)\s+)({word})(?=\s*[,!\n])"
            ),
            group=1,
            check=naming_word,
        ),
        _Rule(
            "NAME",
            re.compile(  # a sign-off: "Cheers, Rangi", "thanks - Lia x"
                rf"(?i:\b(?:cheers|thanks|thank you|thx|ta|regards|best|love|bye|talk soon|"
                rf"speak soon|see you|xx?)),?\s*(?:[-–—]\s*)?({word})(?:\s*x+)?\W*$"
            ),
            group=1,
            check=naming_word,
        ),
        _Rule(
            "NAME",
            re.compile(  # "gaz is what everyone calls me", "deano they call me"
                rf"({word})(?:\s+is\s+what|,)?\s+(?i:everyone|everybody|people|they|we|"
                rf"(?:my|me|the|his|her)\s+\w+)\s+(?:\w+\s+)?calls?\s+me\b"
            ),
            group=1,
            check=naming_word,
        ),
        _Rule(
            "NAME",
            re.compile(  # "iris, my key worker"
                rf"({word}),\s+{_RELATION}\b"
            ),
            group=1,
            check=cue_word,
        ),
        _Rule(
            "NAME",
            re.compile(  # "mo my cousin does mornings"
                rf"({word})\s+{_RELATION}\b"
            ),
            group=1,
            check=given_word,
        ),
        _Rule("NAME", re.compile(rf"(?i:\bme and\s+)({word})|({word})(?=\s+and me\b)"), check=cue_word),
        _Rule(
            "NAME",
            re.compile(
                rf"({word})(?=\s+(?:said|says|rang|texted|messaged|phoned|told|asked|shouted|"
                rf"reports|reported|states|stated|shared|mentioned|admits|admitted|explained|"
                rf"complained|emailed|replied|yelled|screamed|whispered|insisted|promised|"
                rf"denies|denied|endorses|wants|thinks|believes))"
            ),
            group=1,
            check=cue_word,
        ),
        _Rule(
            "NAME",
            re.compile(  # "in will's name", "at grace's house"
                rf"({word})(?=['’]s\s+(?:name|house|flat|place|room|car|phone|mum|mam|mom|dad|"
                rf"party|wedding|funeral|birthday|kids?))"
            ),
            group=1,
            check=possessive_word,
        ),
        _Rule(
            place_or_name,
            re.compile(
                r"(?i:\b(?:live[sd]?|living|moved|moving|move|grew up|born|raised|from|come|came|"
                r"visit(?:ed|ing)?|stay(?:ed|ing)?|went|go(?:ing)?|travel(?:l?ed)?|flew|in|near|"
                r"at|off|outside|out|up|down|over|back)(?:\s+(?:in|to|at|near|from|off|round))?"
                r"(?:\s+the)?)\s+"
                rf"((?:{proper})(?:\s+{proper}){{0,2}}|{word})"
            ),
            group=1,
            check=place_word,
        ),
        _Rule(
            "PLACE",
            re.compile(  # a university by its initials: "at UIC", "from NYU"
                r"(?i:\b(?:at|from|attends?|attending|studying at|graduated from))\s+"
                r"((?=U|[A-Z]{2,4}U\b)[A-Z]{3,5})\b"
            ),
            group=1,
            check=lambda t: t not in ("ICU", "USA", "UTI", "USB", "UFO", "URL"),
        ),
    )


# A sentence starts after a full stop, a colon or an opening quote: "states 'Faith and".
_ARTICLE_BEFORE = re.compile(r"(?<![\w'’])(?i:an?)\s+$")
# After a word opening a sentence, what makes it a person: a possessive, a bracket, a
# speech verb.
_NAMED_AFTER = re.compile(
    r"['’]s\b|\s+\(|,?\s+(?:and|said|says|told|asked|rang|called|texted|wants|wanted|came|went|"
    r"is|was|has|had|feels|felt|thinks|thought|reports|reported|states|stated|denies|denied|"
    r"agreed|attended|arrived|left|lives|lived|works|worked|moved|cried|shouted|hit|keeps|"
    r"kept|will|would|can|could|did|does|doesn['’]t|didn['’]t|isn['’]t|wasn['’]t)\b"
)
_OF_AFTER = re.compile(r"\s+of\s+(?:the\s+)?[A-Z]")
_SENTENCE_END = re.compile(r"[.!?\n:]\W*$|(?:^|\s)['\"‘“]$")
_AFTER_NAME_AGE = re.compile(
    rf"(?:['’]s|[)'’\"”]?,?\s+(?:is|was|are|were|turns|turned|aged)|,\s+now|[)'’\"”]?\s*[,.]|\)|\s*\()\s*"
    rf"(?:only\s+|just\s+|nearly\s+|almost\s+)?"
    rf"({_AGE_NUMBER})(?=\s*(?:[,.;!?)]|$|and\b|now\b|next\b|this\b|in\b))",
    re.I,
)
# Unpunctuated, as dictation writes it: "mr wiśniewski is seventy came over".
_AFTER_NAME_IS_AGE = re.compile(
    rf",?\s+(?:is|was|are|were|turns|turned|aged)\s+(?:only\s+|just\s+|nearly\s+|almost\s+)?"
    rf"({_AGE_NUMBER})\b{_NOT_AGE_AFTER}(?!\s+(?:past|to|mph|degrees?|o['’]clock|in\s+the)\b)",
    re.I,
)
_BEFORE_NAME = re.compile(rf"(?<![\w'’-])({WORD})(?:,?\s+or|,)\s+$")
_AGE_PAIR = re.compile(rf"(?:,\s*|\s+and\s+|\s*&\s*)({_AGE_NUMBER})\b{_NOT_AGE_AFTER}", re.I)
_FIRST_NAME_BEFORE = re.compile(rf"(?<![\w'’-])([A-Z]{L}+) $")
_AFTER_PLACE_POSTCODE = re.compile(
    r",?\s*([A-Z]{1,2}\d{1,2}[A-Z]?\b(?!\s*\d)|(?:[-–]\s*)?\d{3}\s?\d{3}\b|\d{4,5}\b"
    r"|\d{4}\s?[A-Z]{2}\b)(?![/.:-]?\d)"
)
_NOT_POSTCODE_AFTER = re.compile(_NOT_AGE_AFTER.replace("(?!", "(?=", 1))
_BEFORE_PLACE_POSTCODE = re.compile(r"(?<![\w/.,-])(\d{4,5}),?\s+$")  # "10115 Berlin"
# What may follow a street address: a flat, a town, a region, a postcode.
_ADDRESS_TAIL = re.compile(
    rf"(?:,?\s*#\s?\w+(?:-\w+)?|\s+\d{{1,3}}[A-Za-z]?\b(?![/.:,]?\d)"
    rf"|,?\s+(?i:block|blk|tower|wing|floor|building|bldg|level)\s+\w+"
    rf"|,\s+(?i:(?:[a-z]+\s+){{0,2}}(?:apartments|apts|towers|residency|society|complex|"
    rf"nagar|colony|estate|village|heights|gardens|court|mansions|house|flats))\b|,\s*[A-Z]{{1,2}}\d{{1,2}}[A-Z]?\b(?!\s*\d)|,?\s+(?i:apt|apartment|unit|suite|ste|flat)\.?\s*#?\s*\w+"
    rf"|,\s+(?!(?:{'|'.join(sorted(NOT_PROPER, key=len, reverse=True))})\b)"
    rf"[A-Z]{L}*(?:[\s-][A-Z]{L}*){{0,2}}|,?\s+{_REGION}\b|,?\s+\d{{4,5}}\b(?![/.:]\d))"
)
_INITIALS_AFTER = re.compile(r"(?:\s+|\s*\(\s*)((?:[A-Z][a-z]?\.){1,3}(?![\w])|(?<=\()[A-Z]{2,3}(?=\)))")
_INITIALS_BEFORE = re.compile(r"(?<![\w.])((?:[A-Z]\.){1,3}|[A-Z]\.[A-Z][a-z]?\.)\s*$")
_LISTED_AFTER = re.compile(rf"(?:\s+(?:and|or|&)\s+|,\s+(?:and\s+)?)(?:little\s+)?({WORD})\b(?!['’]s\b)")
_LISTED_BEFORE = re.compile(rf"(?<![\w'’-])({WORD})(?:\s+(?:and|or|&)|,)\s+$")
_NICKNAME_AFTER = re.compile(rf"\s*\(\s*(['\"‘“])?({WORD})['\"’”]?\s*\)|\s+(['\"‘“])({WORD})['\"’”]")
_PLACE_BEFORE = re.compile(rf"(?<![\w'’-])([A-Z]{L}+),\s+$")
# Between two parts of one name: a space, a hyphen, a particle ("Bríd Ó Ceallaigh").
_NAME_GAP = re.compile(
    r"(?:\.(?:[A-Z]\.)+\s*|\s+|\s*-\s*)(?i:(?:ó|o|de|da|di|du|van|von|der|den|del|la|le|"
    r"mac|mc|ní|ni|nic|bin|ibn|al|el|ap|ua)['’]?\s+)?"
)

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
        if not kind and at_start and unknown_proper(token.text) and _NAMED_AFTER.match(text, end):
            kind = "NAME"  # opening a sentence: "Muthulakshmi (goes by Muthu)", "Tunde's brother"
        if (
            kind
            and word not in known.any_case
            and token.text not in known.exact
            and (
                (_ARTICLE_BEFORE.search(text, max(0, start - 4), start) and (kind == "NAME" or lex.is_name(word)))
                or (lex.is_english(word) and _OF_AFTER.match(text, end))
            )
        ):
            kind = None  # a thing, not a person: "a Honda Civic", "a Bill of Rights"
        if (
            kind != "NAME"
            and previous_kind
            and text[previous_end:start] == " "
            and word not in lex.ordinary
            and word not in FUNCTION_WORDS
            and (
                (title_case(token.text) and word not in NOT_PROPER)
                or (previous_kind == "NAME" and not lex.is_english(word))
            )
        ):
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
        run = tokens[i : i + n]
        if any(spans.text[run[k].end : run[k + 1].start] != " " for k in range(n - 1)):
            continue
        if not lex.is_place(" ".join(t.word for t in run)):
            continue
        if all(title_case(t.text) for t in run) or not all(lex.is_english(t.word) for t in run):
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
            match = _AFTER_NAME_AGE.match(text, span.end) or _AFTER_NAME_IS_AGE.match(text, span.end)
            if match:
                spans.take(*match.span(1), "AGE")
        if span.kind == "NAME":
            _nickname_after(spans, span)
            _initials_around(spans, span)
        if span.kind == "ADDRESS":
            _address_tail(spans, span)
        if span.kind in ("ADDRESS", "PLACE"):
            match = _AFTER_PLACE_POSTCODE.match(text, span.end)
            if (
                match
                and (span.kind == "ADDRESS" or not _year(match.group(1)))
                and not _NOT_POSTCODE_AFTER.match(text, match.end())
            ):
                spans.take(*match.span(1), "ADDRESS")
        if span.kind == "PLACE" or (span.kind == "NAME" and lexicon().is_place(fold(text[span.start : span.end]))):
            match = _BEFORE_PLACE_POSTCODE.search(text, max(0, span.start - 8), span.start)
            if match and not _year(match.group(1)):
                spans.take(*match.span(1), "ADDRESS")
            match = _PLACE_BEFORE.search(text, max(0, span.start - 40), span.start)
            if match and span.kind == "PLACE" and not lexicon().is_english(fold(match.group(1))):
                spans.take(*match.span(1), "PLACE")  # "Cali, Colombia"


def _year(digits: str) -> bool:
    return bool(re.fullmatch(r"(?:19|20)\d\d", digits))


def _initials_around(spans: _Spans, span: Span) -> None:
    """'Skye W.', 'T.M. Chan', 'D.Ll. Evans', 'Anjali Menon (A.M.)': initials beside a
    name are part of it."""
    for match in (
        _INITIALS_AFTER.match(spans.text, span.end),
        _INITIALS_BEFORE.search(spans.text, max(0, span.start - 12), span.start),
    ):
        if match:
            spans.take(*match.span(1), "NAME")


def _names_in_lists(spans: _Spans) -> None:
    """'njoroge and kamau and mwangi', 'funke and tolu and bisi': a word joined by "and",
    "or" or a comma to a name is a name too when it could be one (not an everyday
    word), along the whole list."""
    text = spans.text
    todo = [s for s in spans.spans if s.kind == "NAME"]
    while todo:
        span = todo.pop()
        for match in (
            _LISTED_AFTER.match(text, span.end),
            _LISTED_BEFORE.search(text, max(0, span.start - 40), span.start),
        ):
            if match and cue_word(match.group(1)) and not lexicon().is_common(fold(match.group(1))):
                if spans.take(*match.span(1), "NAME"):
                    todo.append(spans.spans[-1])


def _nickname_after(spans: _Spans, span: Span) -> None:
    """Małgorzata ('Gosia'), Wojciech 'Wojtek': a quoted word, or a capitalised one in
    brackets, right after a name is another name for the same person."""
    match = _NICKNAME_AFTER.match(spans.text, span.end)
    if not match:
        return
    quoted, group = (match.group(1), 2) if match.group(2) else (match.group(3), 4)
    word = match.group(group)
    if (quoted and fold(word) not in FUNCTION_WORDS) or cue_word(word):
        spans.take(*match.span(group), "NAME")


def _address_tail(spans: _Spans, span: Span) -> None:
    """ "1450 Ocean Pkwy #6C, Brooklyn, NY 11230": the flat, town, region and postcode
    after a street address belong to it. At most six parts, so the walk is bounded."""
    end = span.end
    for _ in range(6):
        match = _ADDRESS_TAIL.match(spans.text, end)
        if not match:
            return
        start = match.start() + len(match.group()) - len(match.group().lstrip(", "))
        if not spans.take(start, match.end(), "ADDRESS") and spans.kind_at(start) is None:
            return
        end = match.end()


def _propagate(spans: _Spans, known: Known) -> Known:
    """Every word removed as a name is removed wherever else it occurs in the text."""
    found = make_known((), (spans.text[s.start : s.end] for s in spans.spans if s.kind == "NAME"))
    return Known(known.any_case | found.any_case, known.exact | found.exact, known.nick_roots)


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
                next(g for g in range(1, rule.pattern.groups + 1) if match.group(g)) if rule.pattern.groups else 0
            )
            start, end = match.span(group)
            matched = match.group(group)
            if start == end or (rule.check and not rule.check(matched)):
                continue
            kind = rule.kind if isinstance(rule.kind, str) else rule.kind(matched)
            if kind == "NAME" and matched[-2:] in ("'s", "’s"):
                end -= 2  # "Anika's nine": the name, so that the age after it is seen
            spans.take(start, end, kind)
    tokens = _tokens(text)
    _scan_words(spans, tokens, known)
    _after_spans(spans)
    _names_in_lists(spans)
    _scan_known(spans, tokens, _propagate(spans, known))
    return _merge(sorted(spans.spans, key=lambda s: s.start), text)


def _merge(spans: list[Span], text: str) -> list[Span]:
    """One [NAME] for "Sean McCartney" and "Bríd Ó Ceallaigh", one [PLACE] for
    "Tower Hamlets": not one per word."""
    merged: list[Span] = []
    for span in spans:
        last = merged[-1] if merged else None
        if (
            last
            and last.kind == span.kind
            and (
                (span.kind == "NAME" and _NAME_GAP.fullmatch(text, last.end, span.start))
                or (span.kind == "PLACE" and text[last.end : span.start].isspace())
            )
        ):
            merged[-1] = Span(last.start, span.end, span.kind)
        else:
            merged.append(span)
    return merged


def _replace(text: str, spans: list[Span]) -> str:
    parts, position = [], 0
    for span in spans:
        parts.append(text[position : span.start])
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
    found = {text[s.start : s.end] for text in texts for s in _find(text, client) if s.kind == "NAME"}
    known = make_known(known_names, found)
    return [_replace(text, _find(text, known)) for text in texts]
