"""De-identified export of the therapist's decisions as training JSONL.

One line per decision (accepted, edited, rejected, not chosen) and per reply the
therapist typed themselves ("own"), in the dialogue format (`Example.to_json`), with
every text de-identified a session at a time (`deidentify_session`): the client's
stored display name and code are always removed, and a name removed from one text of
the session is removed from all of them. Refused when clinic policy disallows export;
each export writes an audit row (with the line count) in the same transaction as the
reads, and the file is removed again if that transaction fails.
"""

from __future__ import annotations

import bisect
import logging
import os
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from therapist_app.core.deidentify import deidentify_session
from therapist_app.core.dialogue_format import Example, Turn
from therapist_app.core.policy import Policy
from therapist_app.core.store.errors import ExportRefused, StoreExists

if TYPE_CHECKING:
    from therapist_app.core.store.store import Store

log = logging.getLogger(__name__)

_SESSIONS = """
    SELECT u.session_id FROM decisions d
        JOIN suggestions s ON s.id = d.suggestion_id JOIN utterances u ON u.id = s.utterance_id
    UNION SELECT session_id FROM utterances WHERE origin = 'own'
    ORDER BY 1
"""
_DECISIONS = """
    SELECT d.decision, d.final_text, s.text, s.strategy, u.id
    FROM decisions d
    JOIN suggestions s ON s.id = d.suggestion_id
    JOIN utterances u ON u.id = s.utterance_id
    WHERE u.session_id = ?
    ORDER BY d.id
"""
_CLIENT_NAMES = """
    SELECT c.display_name, c.code FROM sessions se JOIN clients c ON c.id = se.client_id
    WHERE se.id = ?
"""


def _as_text(value) -> str:
    """Text as stored. A row written outside the store's API (an old version, a SQL
    shell) may hold bytes: decoded, never a reason for the whole export to fail."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return "" if value is None else str(value)


def _examples(store: "Store") -> Iterator[Example]:
    conn = store._require()
    ordinal: dict[str, int] = {}
    for (session_id,) in conn.execute(_SESSIONS).fetchall():
        yield from _session_examples(conn, session_id, ordinal)


def _session_examples(conn: sqlite3.Connection, session_id: int, ordinal: dict[str, int]) -> Iterator[Example]:
    """One session's decisions and own replies, its texts de-identified together, each
    once. An own reply (typed by the therapist instead of a draft) answers the client
    utterance before it, and is exported as decision "own" with no suggestion."""
    conversation_id = conn.execute("SELECT conversation_id FROM sessions WHERE id = ?", (session_id,)).fetchone()[0]
    utterances = conn.execute(
        "SELECT id, speaker, text, coalesce(emotion_corrected, emotion_detected), origin "
        "FROM utterances WHERE session_id = ? ORDER BY id",
        (session_id,),
    ).fetchall()
    decisions = conn.execute(_DECISIONS, (session_id,)).fetchall()
    known = [_as_text(name) for name in conn.execute(_CLIENT_NAMES, (session_id,)).fetchone() if name]
    texts = [_as_text(text) for _, _, text, _, _ in utterances]
    for _, final_text, suggestion, _, _ in decisions:
        texts += [_as_text(suggestion), _as_text(final_text)]
    clean = iter(deidentify_session(texts, known_names=known))
    ids = [row[0] for row in utterances]
    turns = [Turn(speaker, next(clean)) for _, speaker, _, _, _ in utterances]

    def example(position: int, reply: str | None, **fields) -> Example:
        ordinal[conversation_id] = ordinal.get(conversation_id, 0) + 1
        return Example(
            client_words=turns[position].text,
            reply=reply,
            context=tuple(turns[:position]),
            emotion=utterances[position][3],
            source="app",
            conversation_id=conversation_id,
            id=f"{conversation_id}-{ordinal[conversation_id]}",
            **fields,
        )

    for decision, final_text, _, strategy, utterance_id in decisions:
        suggestion, reply = next(clean), next(clean)
        yield example(
            bisect.bisect_left(ids, utterance_id),
            None if final_text is None else reply,
            strategy=strategy,
            decision=decision,
            suggestion=suggestion,
        )
    client_at = None
    for position, (_, speaker, _, _, origin) in enumerate(utterances):
        if speaker == "client":
            client_at = position
        elif origin == "own" and client_at is not None:
            yield example(client_at, turns[position].text, decision="own")


def export_training(store: "Store", destination: str | os.PathLike, policy: Policy) -> int:
    """Write every decision as one de-identified JSONL line; returns the line count."""
    if not policy.export_allowed:
        raise ExportRefused("clinic policy does not allow exporting training data (export_allowed = false)")
    destination = Path(destination)
    count = 0
    try:
        with store.atomic():
            fd = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                for example in _examples(store):
                    out.write(example.to_json() + "\n")
                    count += 1
                out.flush()
                os.fsync(out.fileno())
            store._audit("export_training", count=count)
    except FileExistsError:
        raise StoreExists(f"{destination} already exists; choose a new export file") from None
    except BaseException:
        destination.unlink(missing_ok=True)
        raise
    log.info("exported %d de-identified decisions", count)
    return count
