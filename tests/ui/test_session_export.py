"""The app's session export, de-identified: the client's stored name and code leave
every turn, the note and the title, and a name found in one turn leaves them all."""

from __future__ import annotations

import pytest

from therapist_app.core.store.records import Client, Note, Session, Transcript, Utterance
from therapist_app.ui.session_export import build_export, to_markdown

pytestmark = pytest.mark.gui

CLIENT = Client(id=1, code="ZQ-1138", display_name="Zebedee Quartermain", created_at="2026-01-01T09:00:00")
SAID = ("zeb here. My sponsor Bartholomeus says hi.", "quartermain is my dad's name too, bartholomeus knew him.")


def _transcript() -> Transcript:
    session = Session(id=7, client_id=1, conversation_id="c-7", started_at="2026-01-02T10:00:00", ended_at=None)
    utterances = tuple(
        Utterance(
            id=i,
            session_id=7,
            speaker="client",
            text=text,
            created_at="2026-01-02T10:00:00",
            emotion_detected=None,
            emotion_confidence=None,
            emotion_corrected=None,
            risk_flags=(),
        )
        for i, text in enumerate(SAID, start=1)
    )
    return Transcript(session=session, utterances=utterances, suggestions=(), decisions=())


def test_deidentified_export_leaves_out_the_stored_name_code_and_session_names():
    note = Note(session_id=7, text="Zebedee to call Bartholomeus.", updated_at="x")
    export = build_export(CLIENT, _transcript(), note, deidentified=True)
    assert [t.text for t in export.turns] == [
        "[NAME] here. My sponsor [NAME] says hi.",
        "[NAME] is my dad's name too, [NAME] knew him.",
    ]
    assert export.note == "[NAME] to call [NAME]."
    text = to_markdown(export).lower()
    for identifier in ("zeb", "quartermain", "zq-1138", "bartholomeus"):
        assert identifier not in text


def test_plain_export_keeps_the_text_and_names_the_record():
    export = build_export(CLIENT, _transcript(), None, deidentified=False)
    assert [t.text for t in export.turns] == list(SAID)
    assert export.title == "Session 7 — client ZQ-1138"
