"""Records > Export training data: the de-identified decisions, as the CLI writes them."""

from __future__ import annotations

import json

import pytest

from tests.ui.conftest import new_session, say, unlock
from therapist_app.core.policy import Policy

pytestmark = pytest.mark.gui


def test_the_window_exports_every_decision_and_own_reply(qtbot, make_window, tmp_path):
    h = make_window()
    window = h.window
    unlock(qtbot, window)
    new_session(qtbot, window)
    say(qtbot, window, "My brother Callum never calls me back.")
    window.suggestions.own_reply.setText("That sounds hurtful. What do you make of it?")
    window.suggestions.use_own_reply()
    assert window.training_export_action.isEnabled()
    out = tmp_path / "training.jsonl"
    window.export_training_to(out)
    qtbot.waitUntil(lambda: not window.tasks.busy, timeout=5000)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["decision"] for r in rows] == ["not_chosen"] * 3 + ["own"]
    assert all("Callum" not in r["client_words"] for r in rows)
    assert (out.stat().st_mode & 0o777) == 0o600
    assert window.store.audit_log(limit=1)[0].action == "export_training"


def test_policy_can_forbid_the_training_export(qtbot, make_window):
    h = make_window(policy=Policy(export_allowed=False))
    unlock(qtbot, h.window)
    assert not h.window.training_export_action.isEnabled()
