"""The crisis gate through the real controller and the real encrypted store: a warning
survives leaving the session and locking the store, blocks every suggestion until it is
acknowledged, and the acknowledgement is stored, audited and shown."""

from __future__ import annotations

import pytest

from tests.ui.conftest import new_session, say, unlock
from therapist_app.ui.session_controller import SessionError
from therapist_app.ui.session_export import build_export, to_markdown
from therapist_app.ui.widgets.transcript import TranscriptModel

pytestmark = pytest.mark.gui

RISK_WORDS = "I want to kill myself, I have been thinking about it every night."


def _wait_round(qtbot, controller) -> None:
    qtbot.waitUntil(lambda: not controller.generating and bool(controller.slots), timeout=5000)


def test_a_warning_survives_reopening_and_locking_until_acknowledged(qtbot, make_window):
    h = make_window()
    window = h.window
    unlock(qtbot, window)
    new_session(qtbot, window)
    controller = window.controller
    client, session = controller.client, controller.session
    say(qtbot, window, RISK_WORDS)
    flagged = controller.target
    assert controller.crisis_pending

    # Leave and reopen: the warning is back, from the stored flags.
    controller.close_session()
    assert controller.crisis is None
    controller.open_session(client, session)
    assert controller.crisis_pending
    assert (controller.crisis.utterance_id, controller.crisis.categories) == (flagged.id, ("suicide_selfharm",))
    assert "earlier in this session" in window.banner.label.text()

    # A regenerated suggestion for the flagged turn cannot be used.
    controller.regenerate()
    _wait_round(qtbot, controller)
    for action in (lambda: controller.accept(0), lambda: controller.edit(0, "Are you safe tonight?")):
        with pytest.raises(SessionError, match="acknowledge"):
            action()
    assert not window.store.session_transcript(session.id).decisions

    # Lock and unlock: still pending, and said so on unlocking.
    window.lock()
    unlock(qtbot, window)
    assert f"session {session.id} of client {client.code}" in window.statusBar().currentMessage()
    controller.open_session(client, session)
    assert controller.crisis_pending

    # Acknowledge, reopen: acknowledged, audited, shown in the transcript and export.
    controller.acknowledge_crisis()
    assert not controller.crisis_pending
    controller.close_session()
    controller.open_session(client, session)
    assert controller.crisis is None
    record = controller.acknowledgements[flagged.id]
    assert record.acknowledged_by == "Dr Test" and record.categories == ("suicide_selfharm",)
    audit = [e for e in window.store.audit_log() if e.action == "crisis_acknowledged"]
    assert [(e.session_id, e.object_id) for e in audit] == [(session.id, flagged.id)]
    model = TranscriptModel(controller)
    row = next(i for i, u in enumerate(controller.utterances) if u.id == flagged.id)
    assert "acknowledged by Dr Test" in model.data(model.index(row))
    transcript = window.store.session_transcript(session.id)
    exported = to_markdown(build_export(client, transcript, None, deidentified=False))
    assert "Crisis warning (suicide selfharm): acknowledged by Dr Test" in exported
    assert "Dr Test" not in to_markdown(build_export(client, transcript, None, deidentified=True))

    # Now a suggestion can be used.
    controller.regenerate()
    _wait_round(qtbot, controller)
    controller.accept(0)
    fates = [d.decision for d in window.store.session_transcript(session.id).decisions]
    assert "accepted" in fates and set(fates) <= {"accepted", "not_chosen"}


def test_a_later_unacknowledged_flag_comes_up_after_the_first_is_acknowledged(qtbot, make_window):
    h = make_window()
    window = h.window
    unlock(qtbot, window)
    new_session(qtbot, window)
    controller = window.controller
    say(qtbot, window, RISK_WORDS)
    first = controller.target
    say(qtbot, window, "He hit me again last night and I'm scared to go home.")
    second = controller.target
    assert controller.crisis.utterance_id == second.id
    controller.acknowledge_crisis()
    assert controller.crisis_pending and controller.crisis.utterance_id == first.id
    controller.acknowledge_crisis()
    assert not controller.crisis_pending
