"""The word lists behind `deidentify`, and the tests it puts to a single word.

`assets/deidentify_words.txt` (built by `scripts/build_deidentify_words.py`: US SSA given
names, US Census surnames, nicknames, GeoNames places, SCOWL's everyday English words)
and the authored `assets/deidentify.toml` say what a word can be; the functions here say
whether, after a given cue, it counts as a name. The balance they strike: a listed name
that is not also an everyday word is a name anywhere and in any case ("sarah"); one that
is ("Grace", "will", "rose") only when popular as a name and capitalised mid-sentence, or
after a cue that grammar cannot fill ("my daughter rose", "in will's name").
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from dataclasses import dataclass
from functools import cache
from typing import Iterable

from therapist_app.core.assets import asset_path

COMMON = 40  # a SCOWL level at or under this is an everyday word, above it a rare one
L = r"[^\W\d_]"  # a letter, accented ones included
WORD = rf"{L}+(?:['’-]{L}+)*"
TOKEN = re.compile(WORD)

# Capitalised words that are never a name or place by capitals alone.
NOT_PROPER = frozenset(
    "i i'm i've i'd i'll the a an it he she they we you my our his her their this that "
    "monday tuesday wednesday thursday friday saturday sunday january february march "
    "april may june july august september october november december christmas easter "
    "eid diwali ramadan hanukkah halloween god mum mom mam dad nan gran grandma grandpa "
    "grandad granny nana mammy daddy mummy today tomorrow yesterday tonight and but so "
    "then because when if is was english him me us them oh ok okay yes no not hi hello "
    "thanks sorry well just also anyway maybe please year week month covid mother father "
    "sister brother son daughter wife husband auntie aunt uncle grandmother grandfather "
    "army navy council church king queen grade "
    # feasts and holidays
    "thanksgiving passover lent advent pentecost kwanzaa holi navratri vesak hogmanay "
    "matariki waitangi anzac valentine valentines halloween purim sukkot "
    # nationalities, languages and faiths are not identifiers on their own
    "german dutch french spanish italian polish irish scottish welsh british american "
    "canadian australian indian chinese japanese korean african european asian arab "
    "arabic russian ukrainian turkish greek portuguese brazilian mexican nigerian "
    "pakistani filipino muslim christian catholic protestant jewish hindu sikh buddhist "
    # star signs
    "aries taurus gemini cancer leo virgo libra scorpio sagittarius capricorn aquarius "
    "pisces".split()
)
# Grammar, not a name, after a cue: "my husband will", "my sister in law", "called her".
FUNCTION_WORDS = frozenset(
    "in on at to of for with by from up down out off over under about into onto as like "
    "than since until after before through and or but nor so yet if because though while "
    "the a an this that these those my your his her its our their me you him us them i "
    "he she it we they who whom whose which what where when why how all any some no not "
    "every each both either neither one none own same such very too also just only even "
    "still again ever never always often here there now then is am are was were be been "
    "being has have had having do does did doing will would shall should may might must "
    "can could get got gets go goes went gone said says say told tell rang called call "
    "know think thought want wanted need feel felt left right back well much many more "
    "most less lot bit really quite rather maybe yes no yo".split()
)


def fold(word: str) -> str:
    """Lower case without accents, as the word lists are stored: "Siobhán" is
    "siobhan"."""
    if word.isascii():
        return word.lower()
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c)).replace("’", "'")


@dataclass(frozen=True)
class Lexicon:
    classes: dict[str, str]  # word -> G/g given name (G popular), s surname, n nickname, p place
    level: dict[str, int]  # word -> SCOWL level of an ordinary English word
    ordinary: frozenset[str]  # authored: never a name by the lists alone
    longest_place: int  # words in the longest multi-word place
    place_starts: frozenset[str]  # first words of multi-word places
    generic_places: frozenset[str]  # authored: words that name a kind of place ("local", "pain")
    generic_streets: frozenset[str]  # authored: "main", "ring" in "the main road"
    acronyms: frozenset[str]  # authored: initials that name no place ("NHS", "ICU")
    speaker_roles: frozenset[str]  # authored: "MOM" in "MOM: ...", a role, not a name
    not_initials: frozenset[str]  # authored, exact: "U.S.", "A.M." are not a person's initials

    def is_english(self, word: str) -> bool:
        return word in self.level or word in self.ordinary

    def is_common(self, word: str) -> bool:
        return word in self.ordinary or self.level.get(word, 99) <= COMMON

    def has(self, word: str, classes: str) -> bool:
        return any(c in classes for c in self.classes.get(word, ""))

    def is_name(self, word: str) -> bool:
        return self.has(word, "Ggsn")

    def is_given(self, word: str) -> bool:
        return self.has(word, "Ggn")

    def is_popular(self, word: str) -> bool:
        return self.has(word, "G")

    def is_place(self, word: str) -> bool:
        return self.has(word, "p")


@cache
def lexicon() -> Lexicon:
    classes: dict[str, str] = {}
    level: dict[str, int] = {}
    longest = 1
    with asset_path("deidentify_words.txt").open(encoding="utf-8") as lines:
        for line in lines:
            if line.startswith("#") or not line.strip():
                continue
            word, cls, lvl = line.rstrip("\n").split("\t")
            if cls != "-":
                classes[word] = cls
                if "p" in cls:
                    longest = max(longest, word.count(" ") + 1)
            if lvl != "-":
                level[word] = int(lvl)
    with asset_path("deidentify.toml").open("rb") as f:
        table = tomllib.load(f)
    for place in table["places"]:
        word = fold(place)
        classes[word] = classes.get(word, "") + "p"
        longest = max(longest, word.count(" ") + 1)
    starts = frozenset(w.split()[0] for w, c in classes.items() if " " in w and "p" in c)
    return Lexicon(
        classes,
        level,
        frozenset(fold(w) for w in table["ordinary_words"]),
        longest,
        starts,
        frozenset(fold(w) for w in table["generic_place_words"]),
        frozenset(fold(w) for w in table["generic_street_words"]),
        frozenset(fold(w) for w in table["common_acronyms"]),
        frozenset(fold(w) for w in table["speaker_roles"]),
        frozenset(table["not_initials"]),
    )


def title_case(token: str) -> bool:
    return token[:1].isupper() and not token.isupper()


def _grammar(word: str) -> bool:
    return word in NOT_PROPER or word in FUNCTION_WORDS or word in lexicon().ordinary


def core(token: str) -> str:
    """The word without a possessive: "Mum's" -> "Mum"."""
    return token[:-2] if token[-2:] in ("'s", "’s") else token


def cue_word(token: str, loose: bool = False, naming: bool = False) -> bool:
    """A word after a cue ("___ said") that can be a name: capitalised and not an
    everyday word unless a popular given name; lower case and not English, or a popular
    given name ("grace"), or rare and a name. `loose` (after "my sister ___") also
    takes a given name or nickname that is not a core word ("paddy", not "saw");
    `naming` (after "calls me ___") any word that is not an everyday one ("tizz")."""
    lex, token = lexicon(), core(token)
    word = fold(token)
    if len(word) < 2 or _grammar(word) or _english_compound(word):
        return False
    if title_case(token) or token.isupper():
        return loose or not lex.is_common(word) or lex.is_popular(word)
    return (
        not lex.is_english(word)
        or lex.is_popular(word)
        or (not lex.is_common(word) and (naming or lex.is_name(word)))
        or (loose and lex.is_given(word) and lex.level.get(word, 99) >= 20)
    )


def unknown_proper(token: str) -> bool:
    """Capitalised, three letters or more, and no dictionary or authored list knows it."""
    return title_case(token) and len(token) >= 3 and not _known_word(fold(token)) and not _camel(token)


def _camel(token: str) -> bool:
    """A capital inside a word: a brand or a degree ("WeChat", "PhD"), not a name, unless
    it follows a name's prefix ("McKenzie", "DeShawn", "O'Neill")."""
    inner = [i for i, c in enumerate(token) if i and c.isupper()]
    return bool(inner) and not re.match(r"(?:Mc|Mac|De|Di|Da|La|Le|Van|Von|Du|O['’]|D['’])[A-Z]", token)


def _known_word(word: str) -> bool:
    """An English or authored ordinary word, also in the plural ("Tuesdays"), or a
    compound of them ("Grown-Ups")."""
    lex = lexicon()
    forms = (word, word[:-1]) if word.endswith("s") else (word,)
    return any(
        lex.is_english(w) or w in NOT_PROPER or _english_compound(w) or (w.endswith("'") and lex.is_english(w[:-1]))
        for w in forms
    )


def _english_compound(word: str) -> bool:
    """'one-word', 'end-of-year', 'mother-in-law': every part an English word."""
    return "-" in word and all(lexicon().is_english(p) or p in NOT_PROPER for p in word.split("-"))


def relation_word(token: str) -> bool:
    return cue_word(token, loose=True)


def naming_word(token: str) -> bool:
    return cue_word(token, naming=True)


def given_word(token: str) -> bool:
    """A popular given name, or a capitalised word that is a name or not a word."""
    lex, word = lexicon(), fold(core(token))
    return not _grammar(word) and (lex.is_popular(word) or (title_case(token) and not lex.is_common(word)))


def listed_name(token: str) -> bool:
    """A listed name that is not an everyday word, or a popular one: "becks, becky"."""
    lex, word = lexicon(), fold(core(token))
    return not _grammar(word) and lex.is_name(word) and (not lex.is_common(word) or lex.is_popular(word))


def possessive_word(token: str) -> bool:
    """'will' in "in will's name": a possessive is never the verb."""
    lex, word = lexicon(), fold(token)
    if word in NOT_PROPER or word in lex.ordinary:
        return False
    return lex.is_popular(word) or not lex.is_common(word) and (token[:1].isupper() or not lex.is_english(word))


def place_word(token: str) -> bool:
    lex, token = lexicon(), core(token)
    word = fold(token)
    if len(word) < 2 or _grammar(word) or (token.isupper() and len(token) <= 4):
        return False  # an acronym: "the TV", "at GA"
    if token[:1].isupper():
        return True
    return len(word) >= 3 and not lex.is_english(word) and (lex.is_place(word) or not lex.is_name(word))


def place_or_name(text: str) -> str:
    lex = lexicon()
    first = fold(text.split()[0])
    return "NAME" if lex.is_given(first) and not lex.is_place(fold(text)) else "PLACE"


@dataclass(frozen=True)
class Known:
    """Names to remove wherever they occur: any case for a name that is not an English
    word, exact case for one that is ("Frank" but not "frank" after "my uncle Frank")."""

    any_case: frozenset[str]
    exact: frozenset[str]
    nick_roots: tuple[str, ...]  # first names and surnames whose nicknames count too
    codes: tuple[str, ...] = ()  # stored strings that are not plain words: "C-7"


_PLAIN_NAME = re.compile(rf"(?:{L}|[\s'’.-])+")


def make_known(names: Iterable[str], found: Iterable[str] = ()) -> Known:
    """`names` are the client's: every part in any case, nicknames too. `found` were
    removed as names elsewhere in the session: a part that is an everyday word
    ("Will") counts only in the same case."""
    lex = lexicon()
    names = [name.strip() for name in names if name and name.strip()]
    any_case: set[str] = set()
    exact: set[str] = set()
    roots: list[str] = []
    for name, is_client in [*((n, True) for n in names), *((n, False) for n in found)]:
        for part in TOKEN.findall(name):
            for piece in {part, *part.split("-")}:
                word = fold(piece)
                if len(word) < 2 or (not is_client and (word in lex.ordinary or word in NOT_PROPER)):
                    continue
                if is_client or not lex.is_common(word):
                    any_case.add(word)
                else:
                    exact.add(piece)
                if is_client and len(word) >= 3:
                    roots.append("mac" + word[2:] if word.startswith("mc") else word)
                    if word[1] == "h":  # Thomas -> Tom, Chloe -> Clo
                        roots.append(word[0] + word[2:])
    codes = tuple(name for name in names if len(name) >= 2 and not _PLAIN_NAME.fullmatch(name))
    return Known(frozenset(any_case), frozenset(exact), tuple(roots), codes)


# Endings of English nicknames made from the start of a name: Tommo, Gaz, Macca, Bernie.
_NICK_SUFFIXES = (
    "",
    "o",
    "y",
    "ie",
    "ey",
    "s",
    "sy",
    "z",
    "za",
    "zza",
    "a",
    "ers",
    "x",
    "ks",
    "mo",
    "ca",
    "ka",
    "ker",
    "ster",
    "ee",
)


def _nickname_of(word: str, known: Known) -> bool:
    """'tommo' of Thomas, 'gaz' of Gareth, 'macca' of McAvoy, 'oison' for Oisin."""
    lex = lexicon()
    if len(word) < 2 or word in FUNCTION_WORDS or lex.level.get(word, 99) < 35:
        return False
    for root in known.nick_roots:
        for suffix in _NICK_SUFFIXES:
            stem = word[: len(word) - len(suffix)] if suffix else word
            if word.endswith(suffix) and len(stem) >= 2 and root.startswith(stem):
                return True
        if len(root) >= 5 and abs(len(root) - len(word)) <= 1 and _one_edit(root, word):
            return True
    return False


def _one_edit(a: str, b: str) -> bool:
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b)) == 1
    short, long = sorted((a, b), key=len)
    return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))


def token_kind(token: str, word: str, at_sentence_start: bool, known: Known) -> str | None:
    """NAME or PLACE for a word by the lists alone, or None."""
    lex = lexicon()
    if word in known.any_case or token in known.exact:
        return "NAME"
    if word in lex.ordinary or word in NOT_PROPER:
        return None
    if _nickname_of(word, known):
        return "NAME"
    if (token.isupper() and len(token) <= 4) or re.fullmatch(r"[A-Z]{2,}s", token):
        return None  # an acronym: GP, NHS, PIP, DUIs
    if lex.is_name(word) and (
        (not lex.is_english(word) and (len(word) > 2 or lex.is_given(word)))
        or (not lex.is_common(word) and lex.is_popular(word))
    ):
        return "PLACE" if lex.is_place(word) and not lex.is_given(word) else "NAME"
    if lex.is_place(word) and not lex.is_english(word) and len(word) >= 4:
        return "PLACE"
    if title_case(token) and lex.is_given(word) and not lex.is_common(word):
        return "NAME"  # "Shiv." opening a message
    if title_case(token) and not at_sentence_start:
        if lex.is_popular(word) or (lex.is_name(word) and not lex.is_common(word)):
            return "NAME"
        if lex.is_place(word) and not lex.is_common(word):
            return "PLACE"
    if not at_sentence_start and unknown_proper(token):
        # A capitalised word no dictionary knows, inside a sentence: a proper noun the
        # lists do not hold ("Marlize", "Pretorius"); brands and medicines are ordinary.
        return "PLACE" if lex.is_place(word) and not lex.is_given(word) else "NAME"
    if "-" in word and not lex.is_english(word):
        parts = word.split("-")
        if any(lex.is_name(p) and not lex.is_english(p) for p in parts) and all(
            lex.is_name(p) or not lex.is_english(p) for p in parts
        ):
            return "NAME"
    return None
