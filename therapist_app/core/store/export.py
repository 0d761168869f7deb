"""De-identified export of the therapist's decisions as training JSONL.

One line per decision in the dialogue format (`dialogue_format.Example.to_json`), with
every text passed through `deidentify`. Refused when clinic policy disallows export;
each export writes an audit row (with the line count) in the same transaction as the
reads, and the file is removed again if that transaction fails.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from therapist_app.core.deidentify import deidentify
from therapist_app.core.dialogue_format import Example, Turn
from therapist_app.core.policy import Policy
from therapist_app.core.store.errors import ExportRefused, StoreExists

if TYPE_CHECKING:
    from therapist_app.core.store.store import Store

log = logging.getLogger(__name__)

_DECISIONS = """
    SELECT d.decision, d.final_text, s.text, s.strategy, u.id, u.session_id, u.text,
           coalesce(u.emotion_corrected, u.emotion_detected), se.conversation_id
    FROM decisions d
    JOIN suggestions s ON s.id = d.suggestion_id
    JOIN utterances u ON u.id = s.utterance_id
    JOIN sessions se ON se.id = u.session_id
    ORDER BY u.session_id, d.id
"""


def _examples(store: "Store") -> Iterator[Example]:
    conn = store._require()
    ordinal: dict[str, int] = {}
    for (decision, final_text, suggestion, strategy, utterance_id, session_id, client_words,
         emotion, conversation_id) in conn.execute(_DECISIONS).fetchall():
        context = tuple(
            Turn(speaker, deidentify(text)) for speaker, text in conn.execute(
                "SELECT speaker, text FROM utterances WHERE session_id = ? AND id < ? "
                "ORDER BY id", (session_id, utterance_id)))
        ordinal[conversation_id] = ordinal.get(conversation_id, 0) + 1
        yield Example(
            client_words=deidentify(client_words),
            reply=None if final_text is None else deidentify(final_text),
            context=context,
            emotion=emotion,
            strategy=strategy,
            source="app",
            conversation_id=conversation_id,
            id=f"{conversation_id}-{ordinal[conversation_id]}",
            decision=decision,
            suggestion=deidentify(suggestion),
        )


def export_training(store: "Store", destination: str | os.PathLike, policy: Policy) -> int:
    """Write every decision as one de-identified JSONL line; returns the line count."""
    if not policy.export_allowed:
        raise ExportRefused("clinic policy does not allow exporting training data "
                            "(export_allowed = false)")
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
