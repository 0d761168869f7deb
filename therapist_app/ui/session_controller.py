"""The state of the open client session, and the one place that changes it.

Widgets adapt this object: they call its methods and repaint on its signals. It owns
the flow of a turn: the client's words are analysed (emotion, risk) on the engine
thread, stored with what the analysis found, then a round of suggestions streams in;
the therapist's decision on a suggestion is stored and, unless it was a rejection,
becomes the therapist's turn in the transcript.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace

from PySide6.QtCore import QObject, Signal

from therapist_app.core.dialogue_format import (
    EmotionReading,
    SuggestionRequest,
    Turn,
    clean_text,
)
from therapist_app.core.draft_round import RoundResult
from therapist_app.core.emotion import UNCERTAIN_BELOW
from therapist_app.core.risk import RiskAssessment
from therapist_app.core.store import CrisisNotAcknowledged, Store, StoreError
from therapist_app.core.store.records import Client, RiskAcknowledgement, Session, Utterance
from therapist_app.ui.analysis import Analysis
from therapist_app.ui.workers import EngineClient

log = logging.getLogger(__name__)

# Longest text accepted as one client turn: far beyond a spoken turn, small enough that
# an accidental paste of a whole document is refused instead of stored.
MAX_INPUT_CHARS = 20_000


class SessionError(Exception):
    """An action the current state does not allow; the message is shown as is."""


@dataclass
class SuggestionSlot:
    """One suggestion card's content."""

    index: int
    strategy: str
    text: str = ""
    """Streamed raw text while generating; the cleaned reply once the round ends."""
    record_id: int | None = None
    """The store's suggestion id, set when the round ends and the text was stored."""
    finish_reason: str | None = None
    decision: str | None = None
    draft: int | None = None
    """Which of the round's drafts this slot shows (leaders change while it runs)."""
    source: str = "model"
    """'model', 'authored' for a reviewed crisis response, or 'checked' for a model draft
    with a reviewed safety question after it."""
    explanation: str = ""
    """Why the draft ranked where it did (its score components), once the round ends."""

    @property
    def decidable(self) -> bool:
        return self.record_id is not None and self.decision is None


@dataclass(frozen=True)
class CrisisState:
    """A crisis warning on one client utterance. `risk` is the live assessment (with
    the phrases that raised it); a warning restored from the store, when a session is
    reopened, carries the stored categories only."""

    utterance_id: int
    categories: tuple[str, ...]
    risk: RiskAssessment | None = None
    acknowledged: bool = False


class SessionController(QObject):
    transcript_changed = Signal()
    emotion_changed = Signal()  # read `emotion`, `emotion_corrected`
    crisis_changed = Signal()  # read `crisis`
    suggestions_reset = Signal()  # read `slots`
    suggestions_updated = Signal()  # tokens arrived (painted on a timer by the panel)
    suggestions_finished = Signal()
    generating_changed = Signal(bool)
    analysing_changed = Signal(bool)
    session_changed = Signal()
    message = Signal(str)
    words_returned = Signal(str)  # analysis failed: the words go back to the input box
    tokens_per_second = Signal(float)

    def __init__(self, engine: EngineClient, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.engine = engine
        self.store: Store | None = None
        self.client: Client | None = None
        self.session: Session | None = None
        self.utterances: list[Utterance] = []
        self.target: Utterance | None = None
        """The client utterance the current suggestions answer."""
        self.emotion: EmotionReading | None = None
        self.emotion_corrected = False
        self.runner_up: EmotionReading | None = None
        self.crisis: CrisisState | None = None
        self.acknowledgements: dict[int, RiskAcknowledgement] = {}
        """Acknowledged crisis warnings of the open session, by utterance id."""
        self.slots: list[SuggestionSlot] = []
        self.none_passed = False
        """The last round ended with no draft that passed the safety checks."""
        self._draft_texts: list[str] = []
        self._draft_strategies: list[str] = []
        self._attempt = 0
        self.model_id = "unknown"
        self.analysing = False
        self._pending_text: str | None = None
        self._round_started_at = 0.0
        self._first_token_at: float | None = None
        self._token_count = 0
        engine.analysed.connect(self._on_analysed)
        engine.analysis_failed.connect(self._on_analysis_failed)
        engine.round_started.connect(self._on_round_started)
        engine.leaders_changed.connect(self._on_leaders_changed)
        engine.token.connect(self._on_token)
        engine.round_finished.connect(self._on_round_finished)
        engine.round_failed.connect(self._on_round_failed)
        engine.loaded.connect(self._on_engine_loaded)
        self._waiting_round: tuple[str | None] | None = None

    # ---- store and session lifecycle ----------------------------------------------

    def attach_store(self, store: Store) -> None:
        self.store = store
        store.on_lock(self._on_store_locked)

    def _require_store(self) -> Store:
        if self.store is None or self.store.locked:
            raise SessionError("the store is locked")
        return self.store

    def open_session(self, client: Client, session: Session) -> None:
        store = self._require_store()
        self._clear_session_state()
        transcript = store.session_transcript(session.id)  # audited view
        self.client, self.session = client, session
        self.utterances = list(transcript.utterances)
        self.acknowledgements = {a.utterance_id: a for a in transcript.acknowledgements}
        # A warning nobody acknowledged outlives leaving the session and locking the
        # store: it comes back from the stored flags until it is acknowledged.
        pending = transcript.unacknowledged_risk()
        if pending is not None:
            self.crisis = CrisisState(pending.id, pending.risk_flags)
        last_client = next((u for u in reversed(self.utterances) if u.speaker == "client"), None)
        if last_client is not None and last_client.emotion is not None:
            self.emotion = EmotionReading(last_client.emotion, last_client.emotion_confidence or 1.0)
            self.emotion_corrected = last_client.emotion_corrected is not None
            self.target = last_client
        self.engine.reset_session()
        self.engine.prime(self.context_turns())
        self.session_changed.emit()
        self.transcript_changed.emit()
        self.emotion_changed.emit()
        self.crisis_changed.emit()
        self.suggestions_reset.emit()

    def close_session(self) -> None:
        self._clear_session_state()
        self.client = self.session = None
        self.session_changed.emit()
        self.transcript_changed.emit()
        self.emotion_changed.emit()
        self.crisis_changed.emit()
        self.suggestions_reset.emit()

    def _clear_session_state(self) -> None:
        self._waiting_round = None
        self.engine.cancel()
        self.engine.forget_analysis()
        self.utterances = []
        self.target = None
        self.emotion = self.runner_up = None
        self.emotion_corrected = False
        self.crisis = None
        self.acknowledgements = {}
        self.slots = []
        self.none_passed = False
        self._pending_text = None
        self._set_analysing(False)

    def _on_store_locked(self) -> None:
        # The KV cache holds this session's prompt: drop it together with the screen.
        self.close_session()
        self.engine.reset_session()
        self.store = None

    # ---- the client's words ----------------------------------------------------------

    def submit_client_words(self, text: str) -> None:
        """Analyse, store and answer what the client said (raises SessionError)."""
        self._require_store()
        if self.session is None:
            raise SessionError("open or start a session first")
        if len(text) > MAX_INPUT_CHARS:
            raise SessionError(
                f"that text is {len(text):,} characters; one turn may hold at "
                f"most {MAX_INPUT_CHARS:,}. Split it into turns."
            )
        words = clean_text(text)
        if not words:
            raise SessionError("there are no words to add")
        self.engine.cancel()
        self._pending_text = words
        self._set_analysing(True)
        self.engine.analyze(words, self.context_turns())

    def prime_draft(self, text: str) -> None:
        """Decode the client's words typed so far into the engine's cache, so the
        round that follows their submission waits only for the rest. Nothing is
        stored: until the words are added, they exist only in the box and the cache.
        An empty box (just cleared by a submission) or an over-long one primes nothing."""
        if (
            self.session is None
            or self.store is None
            or self.store.locked
            or self._pending_text is not None
            or not text.strip()
            or len(text) > MAX_INPUT_CHARS
        ):
            return
        self.engine.prime(self.context_turns(), text)

    def context_turns(self) -> tuple[Turn, ...]:
        return tuple(Turn(u.speaker, u.text) for u in self.utterances)

    def _on_analysed(self, analysis: Analysis) -> None:
        words, self._pending_text = self._pending_text, None
        self._set_analysing(False)
        if words is None or self.session is None or self.store is None or self.store.locked:
            return
        emotion = analysis.emotion
        utterance = self.store.append_utterance(
            self.session.id,
            "client",
            words,
            emotion=emotion.label if emotion else None,
            confidence=emotion.confidence if emotion else None,
            risk_flags=analysis.risk.categories,
        )
        log.info(
            "client turn %d stored (%d chars, %d risk flags)", utterance.id, len(words), len(analysis.risk.categories)
        )
        self.utterances.append(utterance)
        self.target = utterance
        self.emotion, self.runner_up, self.emotion_corrected = emotion, analysis.runner_up, False
        if analysis.risk.flagged:
            self.crisis = CrisisState(utterance.id, analysis.risk.categories, analysis.risk)
            self.crisis_changed.emit()
        self.transcript_changed.emit()
        self.emotion_changed.emit()
        self._attempt = 0
        self._start_round(None)

    def _on_analysis_failed(self, message: str) -> None:
        # Nothing is stored unchecked for risk: the words go back for another try.
        words, self._pending_text = self._pending_text, None
        self._set_analysing(False)
        self.message.emit(
            f"The client's words could not be checked for risk ({message}); they were not added. Try again."
        )
        if words is not None:
            self.words_returned.emit(words)

    def _set_analysing(self, value: bool) -> None:
        if value != self.analysing:
            self.analysing = value
            self.analysing_changed.emit(value)

    # ---- emotion and crisis ----------------------------------------------------------

    def correct_emotion(self, label: str) -> None:
        """The therapist's one-click correction; used by the next round."""
        store = self._require_store()
        if self.target is None:
            raise SessionError("there are no client words to label yet")
        store.correct_emotion(self.target.id, label)
        self.target = replace(self.target, emotion_corrected=label)
        self.utterances = [self.target if u.id == self.target.id else u for u in self.utterances]
        self.emotion = EmotionReading(label, 1.0)
        self.emotion_corrected = True
        self.emotion_changed.emit()
        self.message.emit("Emotion corrected; regenerate (Ctrl+R) for suggestions that use it.")

    def acknowledge_crisis(self) -> None:
        """Record (audited) that the therapist saw the warning; suggestions can then be
        used. A later unacknowledged flag in the session comes up next."""
        if self.crisis is None or self.crisis.acknowledged:
            return
        store = self._require_store()
        by = store.profile().display_name or "the therapist"
        try:
            record = store.acknowledge_risk(self.crisis.utterance_id, by)
        except StoreError as error:
            self.message.emit(f"The acknowledgement could not be saved: {error}. The warning stays.")
            return
        self.acknowledgements[record.utterance_id] = record
        self.crisis = replace(self.crisis, acknowledged=True)
        log.info("crisis warning for utterance %d acknowledged", self.crisis.utterance_id)
        waiting = next(
            (u for u in reversed(self.utterances) if u.risk_flags and u.id not in self.acknowledgements), None
        )
        if waiting is not None:
            self.crisis = CrisisState(waiting.id, waiting.risk_flags)
        self.crisis_changed.emit()
        self.transcript_changed.emit()

    @property
    def crisis_pending(self) -> bool:
        return self.crisis is not None and not self.crisis.acknowledged

    # ---- suggestion rounds ------------------------------------------------------------

    def regenerate(self, strategy: str | None = None) -> None:
        """A new round for the latest client words, optionally all in one strategy."""
        self._require_store()
        if self.target is None:
            raise SessionError("add the client's words first")
        if self.engine.info is None:
            raise SessionError("no model is loaded yet")
        self._attempt += 1
        self._start_round(strategy)

    def stop(self) -> None:
        if self.engine.generating:
            self.engine.cancel()
            self.message.emit("Stopping…")

    @property
    def generating(self) -> bool:
        return self.engine.generating

    @property
    def emotion_uncertain(self) -> bool:
        """The reading is too unsure to show as a label or to tell the engine."""
        return self.emotion is not None and not self.emotion_corrected and self.emotion.confidence < UNCERTAIN_BELOW

    def _request(self, strategy: str | None) -> SuggestionRequest:
        assert self.target is not None
        index = next(i for i, u in enumerate(self.utterances) if u.id == self.target.id)
        context = tuple(Turn(u.speaker, u.text) for u in self.utterances[:index])
        emotion = None if self.emotion_uncertain else self.emotion
        return SuggestionRequest(self.target.text, context, emotion, strategy)

    def _start_round(self, strategy: str | None) -> None:
        self._waiting_round = None
        if self.engine.info is None:
            self.slots = []
            self.suggestions_reset.emit()
            if self.engine.loading:
                self._waiting_round = (strategy,)
                self.message.emit("The model is still loading: suggestions follow when it is ready.")
            else:
                self.message.emit("No model is loaded: suggestions are unavailable.")
            return
        self.slots = []
        self.none_passed = False
        self.suggestions_reset.emit()
        self._round_started_at = time.perf_counter()
        self._first_token_at = None
        self._token_count = 0
        assert self.target is not None
        self.engine.start_round(self._request(strategy), self.target.risk_flags, self._attempt)
        self.generating_changed.emit(True)

    def _on_engine_loaded(self, _info) -> None:
        waiting, self._waiting_round = self._waiting_round, None
        if waiting is not None and self.target is not None and self.store is not None and not self.store.locked:
            self._start_round(waiting[0])

    def _on_round_started(self, drafts: list, leaders: list) -> None:
        self._draft_strategies = [strategy for strategy, _ in drafts]
        self._draft_texts = [text for _, text in drafts]
        self._show_leaders(leaders)

    def _on_leaders_changed(self, leaders: list) -> None:
        self._show_leaders(leaders)

    def _show_leaders(self, leaders: list) -> None:
        """While a round runs, the slots show its current leaders as they stream."""
        self.slots = [
            SuggestionSlot(i, self._draft_strategies[d], self._draft_texts[d], draft=d) for i, d in enumerate(leaders)
        ]
        self.suggestions_reset.emit()

    def _on_token(self, index: int, text: str) -> None:
        if index >= len(self._draft_texts):
            return
        now = time.perf_counter()
        if self._first_token_at is None:
            self._first_token_at = now
        self._token_count += 1
        self._draft_texts[index] += text
        for slot in self.slots:
            if slot.draft == index:
                slot.text += text
        elapsed = now - self._first_token_at
        if elapsed > 0.25:
            self.tokens_per_second.emit(self._token_count / elapsed)
        self.suggestions_updated.emit()

    def _on_round_finished(self, result: RoundResult) -> None:
        store = self.store
        target = self.target
        if store is None or store.locked or target is None:
            return
        latency_ms = (time.perf_counter() - self._round_started_at) * 1000
        slots = []
        # The ranking settles the order: the best shown draft first.
        for i, ranked in enumerate(result.ranking.shown):
            draft = ranked.draft
            slot = SuggestionSlot(
                i,
                draft.strategy,
                draft.text,
                finish_reason=draft.finish_reason,
                draft=draft.index,
                source=draft.source,
                explanation=ranked.explanation(),
            )
            slot.record_id = store.add_suggestion(
                target.id,
                "authored" if draft.source == "authored" else self.model_id,
                draft.strategy,
                draft.text,
                latency_ms,
            ).id
            slots.append(slot)
        self.slots = slots
        self.none_passed = result.ranking.none_passed
        if result.stats.decode_s > 0 and result.stats.generated_tokens > 1:
            self.tokens_per_second.emit(result.stats.generated_tokens / result.stats.decode_s)
        log.info(
            "round stored: %d of %d drafts shown, %d tokens, %.0f ms%s",
            len(slots),
            len(result.drafts),
            result.stats.generated_tokens,
            latency_ms,
            " (stopped)" if result.cancelled else "",
        )
        self.generating_changed.emit(False)
        self.suggestions_finished.emit()
        if result.cancelled:
            self.message.emit("Stopped. Partial drafts can still be edited or rejected.")
        elif self.none_passed:
            self.message.emit(
                "No draft of this round passed the safety checks, so none is shown. "
                "Regenerate (Ctrl+R) for new drafts, or write your own reply."
            )

    def _on_round_failed(self, message: str) -> None:
        self.generating_changed.emit(False)
        self.suggestions_finished.emit()
        self.message.emit(f"Suggestions failed: {message}")

    # ---- decisions -------------------------------------------------------------------

    def _decidable_slot(self, index: int) -> SuggestionSlot:
        self._require_store()
        if self.crisis_pending:
            raise SessionError("acknowledge the crisis warning before using a suggestion")
        if self.generating:
            raise SessionError("wait for the suggestions to finish, or stop them (Esc)")
        if not 0 <= index < len(self.slots) or not self.slots[index].decidable:
            raise SessionError(f"there is no open suggestion {index + 1}")
        return self.slots[index]

    def accept(self, index: int) -> None:
        slot = self._decidable_slot(index)
        self._decide(slot, "accepted", slot.text)

    def edit(self, index: int, text: str) -> None:
        slot = self._decidable_slot(index)
        final = clean_text(text)
        if not final:
            raise SessionError("the edited reply is empty; reject the suggestion instead")
        self._decide(slot, "accepted" if final == slot.text else "edited", final)

    def reject(self, index: int) -> None:
        slot = self._decidable_slot(index)
        self._decide(slot, "rejected", None)

    def _decide(self, slot: SuggestionSlot, decision: str, final_text: str | None) -> None:
        store = self._require_store()
        assert self.session is not None and slot.record_id is not None
        try:
            if final_text is None:
                store.decide(slot.record_id, decision)
            else:  # the reply is given: the drafts still open were not chosen
                turn = store.use_suggestion(slot.record_id, decision, final_text if decision == "edited" else None)
        except CrisisNotAcknowledged as refused:
            raise SessionError(str(refused)) from None
        slot.decision = decision
        if final_text is not None:
            self._reply_given(turn)
        log.info("suggestion %d %s", slot.record_id, decision)
        self.suggestions_finished.emit()

    def own_reply(self, text: str) -> None:
        """The therapist's own words as their turn, instead of a draft; every draft of
        the round still open is recorded as not chosen. Allowed past a crisis warning:
        none of the model's text is used."""
        store = self._require_store()
        if self.session is None or self.target is None:
            raise SessionError("add what the client said first")
        if self.generating:
            raise SessionError("wait for the suggestions to finish, or stop them (Esc)")
        final = clean_text(text)
        if not final:
            raise SessionError("the reply is empty")
        turn = store.own_reply(self.session.id, final)
        log.info("own reply recorded (%d chars)", len(final))
        self._reply_given(turn)
        self.suggestions_finished.emit()

    def _reply_given(self, turn: Utterance) -> None:
        self.utterances.append(turn)
        # While the client answers, decode the transcript so far: the next round then
        # waits only for the client's new words.
        self.engine.prime(self.context_turns())
        for other in self.slots:
            if other.decision is None:
                other.decision = "not_chosen"
        self.transcript_changed.emit()
