"""Passphrase feedback in the spirit of NIST SP 800-63B: length and guessability, no
composition rules (no "one digit, one symbol"). The store enforces the minimum."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from therapist_app.core.store.keys import MIN_PASSPHRASE_CHARS

# Passwords that top every breach list: refused as weak whatever their length.
_COMMON = frozenset(
    """
password password1 password123 passw0rd 12345678 123456789 1234567890 qwertyuiop
qwerty123 iloveyou sunshine princess football baseball welcome welcome1 letmein
admin123 abc12345 trustno1 dragon monkey123 11111111 00000000 superman starwars
therapist therapy counselling counseling clinic123 changeme
""".split()
)


@dataclass(frozen=True)
class Strength:
    score: int  # 0 too short, 1 weak (refused: a breach-list or trivial phrase), 2-4 fine
    label: str
    advice: str

    @property
    def acceptable(self) -> bool:
        return self.score >= 2


def assess_passphrase(passphrase: str, profile_name: str = "") -> Strength:
    """
    >>> assess_passphrase("short").label
    'Too short'
    >>> assess_passphrase("password123").label
    'Weak'
    >>> assess_passphrase("violet kettle harbour morning").label
    'Strong'
    """
    text = unicodedata.normalize("NFKC", passphrase)
    length = len(text)
    if length < MIN_PASSPHRASE_CHARS:
        return Strength(
            0,
            "Too short",
            f"Use at least {MIN_PASSPHRASE_CHARS} characters; a few unrelated "
            "words make a long passphrase that is easy to remember.",
        )
    folded = text.casefold()
    name = profile_name.strip().casefold()
    if folded in _COMMON or len(set(folded)) <= 2 or _is_sequence(folded) or (len(name) >= 3 and name in folded):
        return Strength(
            1, "Weak", "This is easy to guess (a common, repeated or personal phrase). Try a few unrelated words."
        )
    if length < 12:
        return Strength(2, "Fair", "Longer is stronger: 15 or more characters is good.")
    if length < 20:
        return Strength(3, "Good", "Good. A longer passphrase is stronger still.")
    return Strength(4, "Strong", "Strong passphrase.")


def _is_sequence(text: str) -> bool:
    steps = {ord(b) - ord(a) for a, b in zip(text, text[1:])}
    return len(steps) == 1 and steps.pop() in (-1, 1)
