"""Export of one session as Markdown or PDF, optionally de-identified.

A plaintext copy of health data leaves the encrypted store here, so the export is an
explicit action that clinic policy can turn off (`export_allowed`) and the file is created
readable by its owner only. Its audit trail is the `view_session` row the store writes
when the transcript is read for the export: the store has no session-export action.
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtGui import QPageSize, QPdfWriter, QTextDocument

from therapist_app.core.deidentify import deidentify_session
from therapist_app.core.store.records import Client, Note, RiskAcknowledgement, Transcript
from therapist_app.core.taxonomy import emotions

FORMATS = ("markdown", "pdf")
SPEAKERS = {"client": "Client", "therapist": "Therapist"}


@dataclass(frozen=True)
class ExportTurn:
    speaker: str
    text: str
    emotion: str | None
    crisis: str = ""
    """For a flagged client turn: the warning and whether (and when) it was acknowledged."""


@dataclass(frozen=True)
class SessionExport:
    title: str
    started_at: str
    turns: tuple[ExportTurn, ...]
    note: str
    deidentified: bool


def build_export(client: Client, transcript: Transcript, note: Note | None, deidentified: bool) -> SessionExport:
    texts = [u.text for u in transcript.utterances] + [note.text if note else ""]
    if deidentified:
        # The session's texts together: the client's stored name and code go from
        # every one, and so does a name found in any of them.
        known = [name for name in (client.display_name, client.code) if name]
        texts = deidentify_session(texts, known_names=known)
    acknowledged = {a.utterance_id: a for a in transcript.acknowledgements}
    turns = tuple(
        ExportTurn(
            SPEAKERS[u.speaker],
            text,
            emotions()[u.emotion].name if u.emotion else None,
            crisis_note(u.risk_flags, acknowledged.get(u.id), deidentified) if u.risk_flags else "",
        )
        for u, text in zip(transcript.utterances, texts)
    )
    # A display name may be a real name, so it is left out of every export; the
    # pseudonymous code identifies the record within the clinic, so only an export that
    # is not de-identified names it.
    client_part = "" if deidentified else f" — client {client.code}"
    return SessionExport(
        title=f"Session {transcript.session.id}{client_part}",
        started_at=transcript.session.started_at[:16].replace("T", " "),
        turns=turns,
        note=texts[-1],
        deidentified=deidentified,
    )


def crisis_note(categories: tuple[str, ...], acknowledgement: RiskAcknowledgement | None, deidentified: bool) -> str:
    """A flagged turn's warning as the export states it (the acknowledger's name is
    left out of a de-identified export).

    >>> crisis_note(("abuse",), None, False)
    'Crisis warning (abuse): not acknowledged'
    """
    names = ", ".join(c.replace("_", " ") for c in categories)
    if acknowledgement is None:
        return f"Crisis warning ({names}): not acknowledged"
    when = acknowledgement.acknowledged_at[:16].replace("T", " ")
    who = "" if deidentified else f" by {acknowledgement.acknowledged_by}"
    return f"Crisis warning ({names}): acknowledged{who} {when} UTC"


def to_markdown(export: SessionExport) -> str:
    lines = [f"# {export.title}", "", f"Started {export.started_at} UTC."]
    if export.deidentified:
        lines.append(
            "De-identified: names, places, dates and contact details are replaced "
            "by placeholders such as [NAME]; review before sharing."
        )
    lines += ["", "## Transcript", ""]
    for turn in export.turns:
        emotion = f" _({turn.emotion})_" if turn.emotion else ""
        text = turn.text.replace("\n", "  \n")
        lines.append(f"**{turn.speaker}**{emotion}: {text}")
        if turn.crisis:
            lines.append(f"> ⚠ {turn.crisis}")
        lines.append("")
    lines += ["## Notes", "", export.note or "_No notes._", ""]
    return "\n".join(lines)


def to_html(export: SessionExport) -> str:
    esc = html.escape
    parts = [f"<h1>{esc(export.title)}</h1>", f"<p>Started {esc(export.started_at)} UTC.</p>"]
    if export.deidentified:
        parts.append(
            "<p><i>De-identified: identifiers are replaced by placeholders such as "
            "[NAME]; review before sharing.</i></p>"
        )
    parts.append("<h2>Transcript</h2>")
    for turn in export.turns:
        emotion = f" <i>({esc(turn.emotion)})</i>" if turn.emotion else ""
        text = esc(turn.text).replace("\n", "<br>")
        parts.append(f"<p><b>{esc(turn.speaker)}</b>{emotion}: {text}</p>")
        if turn.crisis:
            parts.append(f"<p><i>⚠ {esc(turn.crisis)}</i></p>")
    note = esc(export.note).replace("\n", "<br>") if export.note else "<i>No notes.</i>"
    parts += ["<h2>Notes</h2>", f"<p>{note}</p>"]
    return "\n".join(parts)


def _create_private(path: Path) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)


def write_markdown(export: SessionExport, path: Path) -> None:
    with os.fdopen(_create_private(path), "w", encoding="utf-8") as out:
        out.write(to_markdown(export))


def write_pdf(export: SessionExport, path: Path) -> None:
    """Render with QTextDocument into QPdfWriter (GUI thread: both are Qt paint objects)."""
    os.close(_create_private(path))  # owner-only permissions before any content exists
    writer = QPdfWriter(str(path))
    writer.setPageSize(QPageSize(QPageSize.PageSizeId.A4))
    writer.setTitle(export.title)
    writer.setCreator("therapist-app")
    document = QTextDocument()
    document.setHtml(to_html(export))
    document.print_(writer)
    del writer  # flushes and closes the file
    if path.stat().st_size == 0:
        raise OSError(f"the PDF could not be written to {path}")
