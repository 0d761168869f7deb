"""Best-of-N in the window: distinct ranked drafts with reasons, a round where nothing
passes, regenerated rounds that sample anew, and crisis rounds."""

from __future__ import annotations

import pytest

from tests.ui.conftest import new_session, say, unlock
from tests.ui.fakes import FakeScript
from therapist_app.core.scoring.safety import asks_about_risk

pytestmark = pytest.mark.gui


@pytest.fixture
def ready(qtbot, make_window):
    def build(**kwargs):
        h = make_window(**kwargs)
        unlock(qtbot, h.window)
        new_session(qtbot, h.window)
        return h

    return build


def test_shown_drafts_are_distinct_ranked_and_say_why(qtbot, ready):
    h = ready()  # the fake's six candidates repeat its three replies
    window = h.window
    say(qtbot, window, "Work has been a lot this week.")
    slots = window.controller.slots
    assert len(slots) == 3 and len({s.text for s in slots}) == 3
    assert all(s.explanation.startswith(f"ranked {i + 1} ") for i, s in enumerate(slots))
    card = window.suggestions.cards[0]
    assert card.toolTip().startswith("Why this draft: ranked 1") and "strategy" in card.toolTip()
    stored = window.store.session_transcript(window.controller.session.id).suggestions
    assert [s.text for s in stored] == [s.text for s in slots]


def test_when_no_draft_passes_none_is_shown_and_regenerating_is_offered(qtbot, ready):
    script = FakeScript(
        replies=(
            "I promise everything will be fine.",
            "You clearly have an anxiety disorder.",
            "I'll call your manager for you.",
        )
    )
    h = ready(script=script)
    window = h.window
    window.input.setPlainText("I can't sleep before the exam.")
    window.submit_button.click()
    qtbot.waitUntil(
        lambda: (
            window.controller.target is not None and not window.controller.generating and window.controller.none_passed
        ),
        timeout=5000,
    )
    assert window.controller.slots == []
    assert "passed the safety checks" in window.suggestions.status.text()
    assert window.suggestions.regenerate_button.isEnabled()
    assert not window.store.session_transcript(window.controller.session.id).suggestions


def test_a_regenerated_round_samples_with_new_seeds(qtbot, ready):
    h = ready()
    window = h.window
    say(qtbot, window, "Work has been a lot this week.")
    window.suggestions.regenerate()
    qtbot.waitUntil(lambda: len(h.script.seeds) == 2 and not window.controller.generating, timeout=5000)
    assert h.script.seeds[1] != h.script.seeds[0]
    say(qtbot, window, "And my sister is moving away.")
    assert h.script.seeds[2] == h.script.seeds[0]  # new words start again from the base seed


def test_a_crisis_turn_shows_a_reviewed_screening_question_at_once(qtbot, ready):
    h = ready(script=FakeScript(token_delay_s=0.05))
    window = h.window
    controller = window.controller
    window.input.setPlainText("I want to kill myself, I have been thinking about it every night.")
    window.submit_button.click()
    # While the model is still writing, the first slot already holds an authored question.
    qtbot.waitUntil(
        lambda: bool(controller.generating and controller.slots and controller.slots[0].text.endswith("?")),
        timeout=5000,
    )
    assert controller.slots[0].draft >= 6  # the authored drafts follow the six candidates
    qtbot.waitUntil(lambda: not controller.generating and bool(controller.slots), timeout=10000)
    # The model's replies ignore the risk: each is shown only with a reviewed safety
    # question after it, beside the authored responses; every shown draft asks.
    slots = controller.slots
    assert slots and all(s.source in ("authored", "checked") for s in slots)
    assert all(asks_about_risk(s.text, ["suicide_selfharm"]) for s in slots)
    headers = " ".join(c.header.text() for c in window.suggestions.cards)
    for slot in slots:
        assert ("reviewed crisis response" if slot.source == "authored" else "with a safety question") in headers
    stored = {s.text: s.model_id for s in window.store.session_transcript(controller.session.id).suggestions}
    assert all((stored[s.text] == "authored") == (s.source == "authored") for s in slots)


def test_a_leader_that_breaks_a_rule_mid_stream_is_replaced_on_screen(qtbot, ready):
    script = FakeScript(
        replies=(
            "I promise it will all be fine. You will see that soon enough when Friday comes.",
            "What has kept you awake most nights this week?",
            "You have kept going all week, which took real effort.",
            "That deadline sounds like a lot of pressure on top of no sleep.",
            "What would help you rest a little before Friday comes round?",
            "It took effort to keep showing up while so tired.",
        ),
        token_delay_s=0.02,
    )
    h = ready(script=script)
    window = h.window
    controller = window.controller
    seen = []
    controller.suggestions_reset.connect(lambda: seen.append([s.draft for s in controller.slots]))
    say(qtbot, window, "My manager wants the report by Friday and I can't sleep.")
    assert [0, 1, 2] in seen and any(0 not in leaders and len(leaders) == 3 for leaders in seen if leaders)
    assert all("promise" not in s.text for s in controller.slots)
