"""Reading what a therapist pastes or loads: any common encoding in, clean text out."""

from __future__ import annotations

import codecs
from pathlib import Path

from therapist_app.core.dialogue_format import Turn

# Big enough for a long session transcript, small enough that a mistaken file (a
# video, a database) is refused before it is read into memory.
MAX_TEXT_FILE_BYTES = 16 * 1024 * 1024

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


class TextInputError(ValueError):
    """The input cannot be read as text; the message says why."""


def decode_text(data: bytes) -> str:
    """Decode bytes by their BOM, else as UTF-8; UTF-16 without a BOM is recognised by
    its NUL pattern. Raises TextInputError for anything else.

    >>> decode_text("h\\u00e9".encode("utf-16"))
    'hé'
    >>> decode_text(b"\\xef\\xbb\\xbfhi")
    'hi'
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return _decode(data[len(bom) :], encoding)
    if len(data) >= 4 and data[1::2].count(0) > len(data) // 4 and data[0::2].count(0) == 0:
        return _decode(data, "utf-16-le")
    if len(data) >= 4 and data[0::2].count(0) > len(data) // 4 and data[1::2].count(0) == 0:
        return _decode(data, "utf-16-be")
    return _decode(data, "utf-8")


def _decode(data: bytes, encoding: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as err:
        raise TextInputError(
            f"the text is not valid {encoding.upper()} (bad byte at offset {err.start}); save it as UTF-8 and try again"
        ) from None


def read_text_file(path: str | Path) -> str:
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise TextInputError(f"file not found: {path}") from None
    if size > MAX_TEXT_FILE_BYTES:
        raise TextInputError(
            f"{path.name} is {size // (1024 * 1024)} MB; text files over "
            f"{MAX_TEXT_FILE_BYTES // (1024 * 1024)} MB are refused"
        )
    return decode_text(path.read_bytes())


def parse_transcript(text: str) -> tuple[Turn, ...]:
    """Turns from lines like `Client: ...` / `Therapist: ...`; unlabelled lines continue
    the previous turn. Raises TextInputError when no line names a speaker.

    >>> parse_transcript("Therapist: Hi.\\nClient: I'm tired\\nand sad.")
    (Turn(speaker='therapist', text='Hi.'), Turn(speaker='client', text="I'm tired\\nand sad."))
    """
    speakers = {"client": "client", "therapist": "therapist", "c": "client", "t": "therapist"}
    turns: list[list] = []
    for number, line in enumerate(text.splitlines(), start=1):
        label, sep, rest = line.partition(":")
        speaker = speakers.get(label.strip().casefold()) if sep else None
        if speaker:
            turns.append([speaker, rest.strip()])
        elif line.strip():
            if not turns:
                raise TextInputError(f"line {number}: a transcript line must start with 'Client:' or 'Therapist:'")
            turns[-1][1] = (turns[-1][1] + "\n" + line.strip()).strip()
    if not turns:
        raise TextInputError("the transcript has no 'Client:' or 'Therapist:' lines")
    return tuple(Turn(speaker, body) for speaker, body in turns if body)
