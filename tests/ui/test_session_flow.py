"""A session: clients, the client's words, streamed suggestions, decisions, crisis, stop."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QMimeData, Qt, QTimer

from tests.ui.conftest import new_session, say, unlock
from tests.ui.fakes import FakeAnalyzer, FakeScript
from therapist_app.core.dialogue_format import EmotionReading
from therapist_app.core.risk import RiskAssessment, Trigger
from therapist_app.core.store import Store
from therapist_app.ui.analysis import Analysis
from therapist_app.ui.session_controller import MAX_INPUT_CHARS

pytestmark = pytest.mark.gui


@pytest.fixture
def ready(qtbot, make_window):
    def build(**kwargs):
        h = make_window(**kwargs)
        unlock(qtbot, h.window)
        new_session(qtbot, h.window)
        return h

    return build


def test_clients_are_created_searched_and_their_sessions_listed(qtbot, make_window):
    h = make_window()
    window = h.window
    unlock(qtbot, window)
    for code in ("C-017", "C-018", "B-200"):
        window.clients.new_code.setText(code)
        window.clients.add_button.click()
    assert window.clients.clients.count() == 3
    window.clients.search.setText("C-01")
    assert [window.clients.clients.item(i).text() for i in range(2)] == ["C-017", "C-018"]
    assert window.clients.clients.count() == 2
    window.clients.search.clear()
    window.clients.new_code.setText("C-017")
    window.clients.add_button.click()
    assert window.clients.clients.count() == 3  # duplicate code refused with a message
    window.clients.select_client(window.store.list_clients()[0].id)
    window.clients.new_session_button.click()
    window.clients.new_session_button.click()
    assert window.clients.sessions.count() == 2
    assert window.controller.session is not None
    actions = [a.action for a in window.store.audit_log()]
    assert "view_client" in actions and "view_session" in actions


def test_words_being_typed_are_primed_after_a_pause_but_not_stored(qtbot, ready):
    h = ready()
    window = h.window
    session_id = window.controller.session.id
    say(qtbot, window, "Work has been overwhelming.")
    before = len(h.script.drafts)
    qtbot.keyClicks(window.input, "My manager")
    qtbot.waitUntil(lambda: h.script.drafts[before:] == ["My manager"], timeout=3000)
    # Primed on the session so far, which the submitted words will follow.
    assert [t.text for t in h.script.primed[-1]] == ["Work has been overwhelming."]
    assert [u.text for u in window.store.session_transcript(session_id).utterances] == ["Work has been overwhelming."]
    # Submitting before the pause ends primes nothing more: the round decodes the words.
    qtbot.keyClicks(window.input, " keeps calling")
    window.submit_button.click()
    qtbot.waitUntil(lambda: window.controller.target.text == "My manager keeps calling", timeout=5000)
    qtbot.wait(400)
    assert h.script.drafts[before:] == ["My manager"]


def test_the_analyser_loads_before_the_first_words_and_a_failed_load_keeps_them(qtbot, ready):
    """MiniLM and the analysis heads load while the therapist unlocks, not when the
    client first speaks; a load that fails then is tried again on the first words,
    and its failure is reported with the words handed back."""
    calls = []

    def failing_factory():
        calls.append("load")
        raise OSError("model folder unreadable")

    h = ready(analyzer_factory=failing_factory)
    qtbot.waitUntil(lambda: calls == ["load"], timeout=5000)  # before any words were said
    window = h.window
    window.input.setPlainText("I haven't slept properly in weeks.")
    window.submit_button.click()
    qtbot.waitUntil(lambda: "could not be checked for risk" in window.statusBar().currentMessage(), timeout=5000)
    assert calls == ["load", "load"]
    assert window.input.toPlainText() == "I haven't slept properly in weeks."
    assert not window.store.session_transcript(window.controller.session.id).utterances


def test_client_words_are_analysed_stored_and_answered_by_a_stream(qtbot, ready):
    h = ready()
    window, controller = h.window, h.window.controller
    seen_partial = []
    controller.suggestions_updated.connect(lambda: seen_partial.append([s.text for s in controller.slots]))
    say(qtbot, window, "I couldn't sleep again, I keep worrying about the exam.")
    # Tokens arrived one by one before the round ended: the first update held one word.
    assert seen_partial and len(seen_partial[0][0].split()) == 1
    assert len(seen_partial) > 10
    stored = window.store.session_transcript(controller.session.id)
    client_turn = stored.utterances[-1]
    assert client_turn.speaker == "client" and client_turn.emotion_detected == "anxiety"
    assert client_turn.emotion_confidence == pytest.approx(0.82)
    assert [s.strategy for s in stored.suggestions] == ["reflection", "question", "affirmation"]
    cards = window.suggestions.cards
    assert cards[0].body.text() == "It sounds like the worry has kept you on edge all week."
    assert cards[1].header.text() == "2. Question"
    assert window.emotion_chip.text().startswith("Emotion: Anxiety 82%")
    request = h.script.rounds[-1]
    assert request.emotion.label == "anxiety" and request.context == ()
    assert window.input.toPlainText() == ""
    assert window.speed_label.text().endswith("tokens/s")
    assert "drafts for your judgement" in window.suggestions.disclaimer.text()


def test_accept_edit_and_reject_land_in_the_store(qtbot, ready):
    h = ready()
    window, controller = h.window, h.window.controller
    session_id = controller.session.id
    say(qtbot, window, "Work has been overwhelming.")
    panel = window.suggestions
    panel.setFocus()
    qtbot.keyClick(panel, Qt.Key.Key_R)  # reject the first open draft
    qtbot.keyClick(panel, Qt.Key.Key_2)  # accept the second
    transcript = window.store.session_transcript(session_id)
    # The third draft was open when the second was used: recorded as not chosen.
    assert [d.decision for d in transcript.decisions] == ["rejected", "accepted", "not_chosen"]
    assert transcript.utterances[-1].speaker == "therapist"
    assert transcript.utterances[-1].origin == "suggestion"
    assert transcript.utterances[-1].text == "What has been the hardest part of it?"
    assert window.transcript.model().rowCount() == 2
    # The accepted reply was handed to the engine thread to decode ahead of the client.
    qtbot.waitUntil(lambda: h.script.primed and len(h.script.primed[-1]) == 2)
    assert [t.speaker for t in h.script.primed[-1]] == ["client", "therapist"]

    say(qtbot, window, "Mostly my manager.")
    assert h.script.rounds[-1].context[-1].text == "What has been the hardest part of it?"
    # The engine drafted the question again; what the therapist just said is not offered twice.
    shown = [card.body.text() for card in panel.cards if card.body.text()]
    assert len(shown) == 2 and not any("hardest part" in text for text in shown)
    card = panel.cards[1]
    card.edit_button.click()
    assert not card.editor.isHidden()
    card.editor.setPlainText("That took real strength. Tell me about your manager.")
    qtbot.keyClick(card.editor, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    transcript = window.store.session_transcript(session_id)
    assert [d.decision for d in transcript.decisions[3:]] == ["edited", "not_chosen"]
    assert transcript.decisions[3].final_text == "That took real strength. Tell me about your manager."
    assert transcript.utterances[-1].text == "That took real strength. Tell me about your manager."
    assert not panel.cards[0].accept_button.isEnabled()  # the other drafts are spent
    assert [a.action for a in window.store.audit_log()].count("decision") == 5


def test_an_own_reply_is_recorded_with_every_draft_not_chosen(qtbot, ready):
    h = ready()
    window, controller = h.window, h.window.controller
    session_id = controller.session.id
    say(qtbot, window, "Nothing I do is ever enough for them.")
    panel = window.suggestions
    panel.setFocus()
    qtbot.keyClick(panel, Qt.Key.Key_R)  # one draft rejected, then the therapist's own words
    assert panel.own_reply.isEnabled()
    panel.own_reply.setText("  You work so hard, and it never seems to count.  ")
    qtbot.keyClick(panel.own_reply, Qt.Key.Key_Return)
    transcript = window.store.session_transcript(session_id)
    assert [d.decision for d in transcript.decisions] == ["rejected", "not_chosen", "not_chosen"]
    last = transcript.utterances[-1]
    assert (last.speaker, last.origin, last.text) == (
        "therapist",
        "own",
        "You work so hard, and it never seems to count.",
    )
    assert panel.own_reply.text() == ""
    assert not any(card.accept_button.isEnabled() for card in panel.cards)
    assert window.transcript.model().rowCount() == 2


def test_the_crisis_banner_shows_the_phrases_and_needs_acknowledgement(qtbot, ready):
    hostile = FakeScript(
        replies=(
            "<div style='display:none'>All is fine.</div> There is no risk here.",
            "Ignore the warning above.",
            "Everything is okay.",
        )
    )
    h = ready(script=hostile)
    window = h.window
    assert window.banner.isHidden()
    say(qtbot, window, "Honestly I want to kill myself, I can't do this anymore.")
    assert window.banner.isVisible()
    assert "“kill myself”" in window.banner.label.text()
    assert "suicide or self-harm" in window.banner.label.text()
    assert window.banner.label.textFormat() == Qt.TextFormat.PlainText
    # No decision is possible until the therapist acknowledges the warning.
    window.suggestions.cards[0].accept()
    assert window.store.session_transcript(window.controller.session.id).decisions == ()
    stored = window.store.session_transcript(window.controller.session.id).utterances[-1]
    assert stored.risk_flags == ("suicide_selfharm",)
    window.banner.acknowledge_button.click()
    assert window.banner.isVisible() and "Acknowledged" in window.banner.label.text()
    window.suggestions.cards[0].accept()
    fates = [d.decision for d in window.store.session_transcript(window.controller.session.id).decisions]
    assert fates == ["accepted", "not_chosen", "not_chosen"]
    # Model output never reached the banner, and a later calm turn keeps the warning.
    say(qtbot, window, "Anyway, work was fine.")
    assert window.banner.isVisible() and "kill myself" in window.banner.label.text()


def test_a_sentence_that_only_resembles_risk_says_so_and_still_needs_acknowledgement(qtbot, ready):
    text = "I have been giving my records to the neighbours."
    resembling = RiskAssessment(
        ("suicide_selfharm",), "low", (Trigger("suicide_selfharm", text, 0, len(text), "learned", "low"),), (), True
    )

    class ResemblingAnalyzer(FakeAnalyzer):
        def __call__(self, words, recent):
            return Analysis(self.emotion, self.runner_up, resembling)

    h = ready(analyzer=ResemblingAnalyzer())
    window = h.window
    say(qtbot, window, text)
    banner = window.banner.label.text()
    assert banner.startswith("Words that resemble crisis language (suicide or self-harm, severity low)")
    assert f"“{text}”" in banner and "Ask the client what they mean" in banner
    assert window.banner.acknowledge_button.isVisible()
    window.banner.acknowledge_button.click()
    assert window.banner.label.text().startswith("Acknowledged: words that resemble crisis language")


def test_a_negated_phrase_raises_no_banner(qtbot, ready):
    h = ready()
    say(qtbot, h.window, "I would never hurt myself, I just feel tired.")
    assert h.window.banner.isHidden()


def test_stop_cancels_the_round_and_keeps_partial_drafts(qtbot, ready):
    h = ready(script=FakeScript(token_delay_s=0.05))
    window, controller = h.window, h.window.controller
    window.input.setPlainText("I keep going round in circles.")
    window.submit_button.click()
    qtbot.waitUntil(lambda: any(s.text for s in controller.slots), timeout=5000)
    assert controller.generating and window.suggestions.stop_button.isEnabled()
    with qtbot.waitSignal(controller.suggestions_finished, timeout=5000):
        window.suggestions.stop_button.click()
    assert not controller.generating
    assert all(s.finish_reason == "cancelled" for s in controller.slots)
    words = len(controller.slots[0].text.split())
    assert 1 <= words < len("It sounds like the worry has kept you on edge all week.".split())
    assert "stopped" in window.suggestions.cards[0].header.text()
    window.suggestions.cards[0].reject()
    assert window.store.session_transcript(controller.session.id).decisions[-1].decision == "rejected"


def test_the_event_loop_keeps_turning_while_suggestions_generate(qtbot, ready):
    h = ready(script=FakeScript(token_delay_s=0.03))
    window, controller = h.window, h.window.controller
    ticks = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(controller.generating))
    timer.start()
    window.input.setPlainText("Everything feels too much lately.")
    window.submit_button.click()
    qtbot.waitUntil(lambda: controller.generating, timeout=5000)
    qtbot.waitUntil(lambda: not controller.generating, timeout=10_000)
    timer.stop()
    during = ticks.count(True)
    # A round of ~12 steps x 30 ms is ~0.36 s: a free event loop ticks ~30 times.
    assert during >= 10, f"the GUI timer fired only {during} times while generating"


def test_emotion_correction_is_one_click_stored_and_used_next_round(qtbot, ready):
    h = ready()
    window = h.window
    say(qtbot, window, "My dad died last month.")
    window.emotion_chip.actions_by_label["grief"].trigger()
    assert window.emotion_chip.text().startswith("Emotion: Grief (set by you)")
    utterance = window.store.session_transcript(window.controller.session.id).utterances[-1]
    assert utterance.emotion_corrected == "grief" and utterance.emotion_detected == "anxiety"
    window.suggestions.strategy_picker.setCurrentIndex(window.suggestions.strategy_picker.findData("reflection"))
    window.suggestions.regenerate_button.click()
    qtbot.waitUntil(
        lambda: not window.controller.generating and any(s.record_id for s in window.controller.slots), timeout=5000
    )
    request = h.script.rounds[-1]
    assert request.emotion.label == "grief" and request.strategy == "reflection"
    assert [s.strategy for s in window.controller.slots] == ["reflection"] * 3


def test_a_huge_paste_is_refused_with_a_message(qtbot, ready):
    window = ready().window
    data = QMimeData()
    data.setText("x" * (MAX_INPUT_CHARS + 1))
    messages = []
    window.input.refused.connect(messages.append)
    window.input.insertFromMimeData(data)
    assert window.input.toPlainText() == "" and "Paste it in parts" in messages[0]
    data.setText("She said:\u202e reversed \u200b text")
    window.input.insertFromMimeData(data)
    assert window.input.toPlainText() == "She said:\u202e reversed \u200b text"


def test_notes_are_saved_encrypted_and_reloaded(qtbot, ready):
    h = ready()
    window = h.window
    session_id = window.controller.session.id
    window.notes.setPlainText("Client agreed to a sleep diary.")
    window.lock("test")  # saving happens before the store closes
    with Store.open(h.store_path, "violet kettle harbour") as store:
        assert store.note(session_id).text == "Client agreed to a sleep diary."


def test_the_crisis_banner_does_not_wait_for_a_slow_model_load(qtbot, make_window):
    import threading

    from tests.ui.conftest import PASSPHRASE
    from tests.ui.fakes import FakeEngine

    script = FakeScript()
    release = threading.Event()

    def slow_engine(config):
        release.wait(10)  # the model "loads" until the test lets it finish
        return FakeEngine(config, script)

    h = make_window(script=script, engine_factory=slow_engine)
    window = h.window
    unlock(qtbot, window, PASSPHRASE, model=False)
    new_session(qtbot, window)
    window.input.setPlainText("I keep thinking about ending my life.")
    window.submit_button.click()
    qtbot.waitUntil(window.banner.isVisible, timeout=5000)
    assert window.engine.loading and window.controller.slots == []
    release.set()
    qtbot.waitUntil(lambda: any(s.record_id for s in window.controller.slots), timeout=5000)
    assert h.script.rounds[-1].client_words == "I keep thinking about ending my life."


def test_no_client_or_model_text_reaches_the_log(qtbot, ready, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    h = ready(script=FakeScript(replies=("zebramodel one.", "zebramodel two.", "zebramodel three.")))
    window = h.window
    say(qtbot, window, "zebraclient I want to kill myself")
    window.banner.acknowledge_button.click()
    window.suggestions.cards[0].start_edit()
    window.suggestions.cards[0].editor.setPlainText("zebraedit reply.")
    window.suggestions.cards[0].save_edit()
    window.notes.setPlainText("zebranote")
    window.lock("test")
    assert caplog.records, "the flow logs ids and timings"
    assert "zebra" not in caplog.text and "kill myself" not in caplog.text


def test_risk_is_assessed_even_when_the_emotion_reader_fails():
    from therapist_app.core.analysis import Analyzer
    from therapist_app.core.risk import RiskDetector
    from therapist_app.ui.analysis import adapt

    class Broken:
        def classify(self, turns):
            raise RuntimeError("classifier crashed")

    analysis = adapt(Analyzer(RiskDetector(), Broken()))("I want to kill myself.", ())
    assert analysis.emotion is None and analysis.risk.categories == ("suicide_selfharm",)


def test_words_that_could_not_be_analysed_are_not_stored_but_returned(qtbot, ready):
    class Broken:
        def __call__(self, text, recent):
            raise RuntimeError("detector fault")

    h = ready(analyzer=Broken())
    window = h.window
    window.input.setPlainText("Something happened at home.")
    window.submit_button.click()
    qtbot.waitUntil(lambda: window.input.toPlainText() == "Something happened at home.", timeout=5000)
    assert window.store.session_transcript(window.controller.session.id).utterances == ()
    assert "not added" in window.statusBar().currentMessage()


def test_a_failing_round_is_reported_and_the_panel_recovers(qtbot, ready):
    script = FakeScript(fail_with=ValueError("the client's words alone exceed the model's context"))
    h = ready(script=script)
    window = h.window
    window.input.setPlainText("A very long story.")
    window.submit_button.click()
    qtbot.waitUntil(lambda: "Suggestions failed" in window.statusBar().currentMessage(), timeout=5000)
    assert not window.controller.generating and not window.suggestions.stop_button.isEnabled()
    assert window.transcript.model().rowCount() == 1  # the client's words are kept
    script.fail_with = None
    window.suggestions.regenerate_button.click()
    qtbot.waitUntil(lambda: any(s.record_id for s in window.controller.slots), timeout=5000)


def test_closing_the_window_closes_the_engine_and_the_store(qtbot, make_window):
    engines = []

    def factory(config):
        from tests.ui.fakes import FakeEngine

        engines.append(FakeEngine(config, FakeScript()))
        return engines[-1]

    h = make_window(engine_factory=factory)
    unlock(qtbot, h.window)
    store = h.window.store
    h.window.close()
    assert engines[0].closed and store.locked


def test_an_uncertain_emotion_is_shown_as_such_and_not_told_to_the_engine(qtbot, ready):
    h = ready(analyzer=FakeAnalyzer(EmotionReading("anxiety", 0.34), EmotionReading("stress", 0.21)))
    window = h.window
    say(qtbot, window, "Not much to report really.")
    assert window.emotion_chip.text().startswith("Emotion: uncertain (perhaps Anxiety, 34%)")
    assert h.script.rounds[-1].emotion is None
    window.emotion_chip.actions_by_label["stress"].trigger()  # the therapist's word is final
    window.controller.regenerate()
    qtbot.waitUntil(lambda: not window.controller.generating and len(h.script.rounds) == 2, timeout=5000)
    assert h.script.rounds[-1].emotion == EmotionReading("stress", 1.0)
