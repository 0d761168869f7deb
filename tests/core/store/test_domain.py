"""The domain API: dataclasses, atomic(), audit rows, specific exceptions, locking."""

from __future__ import annotations

import dataclasses
import re

import pytest
import sqlcipher3

from tests.core.store.helpers import PASSPHRASE, fill
from therapist_app.core.store import (
    Conflict,
    CrisisNotAcknowledged,
    InvalidInput,
    NotFound,
    StoreLocked,
)
from therapist_app.core.store.autolock import AutoLock
from therapist_app.core.store.records import Client, Transcript, Utterance


def test_records_round_trip_as_dataclasses(store):
    ids = fill(store, "alpha")
    client = store.get_client(ids["client"])
    assert isinstance(client, Client) and client.display_name == "Name alpha"
    transcript = store.session_transcript(ids["session"])
    assert isinstance(transcript, Transcript)
    first, second = transcript.utterances
    assert isinstance(first, Utterance) and first.risk_flags == ("self_harm",)
    assert (first.speaker, second.speaker) == ("client", "therapist")
    assert transcript.decisions[0].decision == "edited"
    assert transcript.suggestions[0].latency_ms == 42.0
    assert store.note(ids["session"]).text == "note about alpha"
    assert store.sessions(ids["client"])[0].id == ids["session"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        client.code = "other"


def test_emotion_correction_overrides_detection(store):
    ids = fill(store, "beta")
    store.correct_emotion(ids["utterance"], "anger")
    utterance = store.session_transcript(ids["session"]).utterances[0]
    assert (utterance.emotion_detected, utterance.emotion) == ("anxiety", "anger")
    with pytest.raises(ValueError, match="unknown emotion"):
        store.correct_emotion(ids["utterance"], "not-an-emotion")


def test_search_matches_code_and_name_without_wildcards(store):
    store.add_client("C-100", "Robin Example")
    store.add_client("C-2%0", None)
    assert [c.code for c in store.search_clients("robin")] == ["C-100"]
    assert [c.code for c in store.search_clients("2%")] == ["C-2%0"]
    assert store.search_clients("_") == []


def test_missing_ids_raise_not_found(store):
    with pytest.raises(NotFound, match="no client with id 99"):
        store.get_client(99)
    with pytest.raises(NotFound):
        store.start_session(99)
    with pytest.raises(NotFound):
        store.append_utterance(99, "client", "x")
    with pytest.raises(NotFound):
        store.decide(99, "accepted")
    with pytest.raises(NotFound):
        store.erase_client(99)


def test_duplicate_code_is_a_conflict_and_rolls_back(store):
    store.add_client("C-1")
    with pytest.raises(Conflict, match="already in use"):
        store.add_client("C-1", "second")
    assert len(store.list_clients()) == 1


def test_decisions_follow_their_rules(store):
    ids = fill(store, "gamma")
    said = store.append_utterance(ids["session"], "client", "again")
    accepted = store.add_suggestion(said.id, "m", None, "Suggested text.", 1.0)
    rejected = store.add_suggestion(said.id, "m", "question", "Another.", 1.0)
    assert store.decide(accepted.id, "accepted").final_text == "Suggested text."
    assert store.decide(rejected.id, "rejected").final_text is None
    with pytest.raises(Conflict):
        store.decide(accepted.id, "rejected")  # one decision per suggestion
    edited = store.add_suggestion(said.id, "m", None, "Third.", 1.0)
    with pytest.raises(ValueError, match="edited text"):
        store.decide(edited.id, "edited")


def test_atomic_nests_savepoints(store):
    with store.atomic():
        store.add_client("outer")
        with pytest.raises(RuntimeError):
            with store.atomic():
                store.add_client("inner")
                raise RuntimeError("undo the inner block only")
    assert [c.code for c in store.list_clients()] == ["outer"]
    with pytest.raises(RuntimeError):
        with store.atomic():
            store.add_client("gone")
            raise RuntimeError("undo everything")
    assert [c.code for c in store.list_clients()] == ["outer"]


def test_views_and_decisions_are_audited_with_ids_only(store):
    ids = fill(store, "MARKERdelta")
    store.get_client(ids["client"])
    store.session_transcript(ids["session"])
    actions = [entry.action for entry in store.audit_log()]
    assert actions[:3] == ["view_session", "view_client", "decision"]
    view = store.audit_log(limit=1)[0]
    assert (view.client_id, view.session_id) == (ids["client"], ids["session"])
    rows = store._require().execute("SELECT * FROM audit").fetchall()
    assert "MARKERdelta" not in repr(rows)
    assert all(isinstance(v, (int, type(None))) for row in rows for v in row[3:7])
    assert all(re.fullmatch("[0-9a-f]{64}", row[7]) for row in rows)  # the hash chain


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit SET action = 'backup'",
        "DELETE FROM audit",
        "UPDATE audit SET client_id = 7 WHERE id = 1",
    ],
)
def test_audit_table_refuses_update_and_delete(store_path, raw_connection, statement):
    conn = raw_connection(store_path)
    count = conn.execute("SELECT count(*) FROM audit").fetchone()[0]
    assert count >= 1
    with pytest.raises(sqlcipher3.IntegrityError, match="append-only"):
        conn.execute(statement)
    assert conn.execute("SELECT count(*) FROM audit").fetchone()[0] == count


def test_audit_rejects_unknown_actions_and_text(store_path, raw_connection):
    conn = raw_connection(store_path)
    with pytest.raises(sqlcipher3.IntegrityError):
        conn.execute("INSERT INTO audit(at, action) VALUES ('now', 'client said hello')")


def test_model_registry(store):
    digest = "ab" * 32
    record = store.register_model("/models/a.gguf", digest.upper())
    assert (record.sha256, record.approved) == (digest, False)
    assert store.set_model_approval(digest, True).approved
    assert [m.sha256 for m in store.models()] == [digest]
    with pytest.raises(ValueError, match="64 hex"):
        store.register_model("/x", "nothex")
    with pytest.raises(NotFound):
        store.set_model_approval("cd" * 32, True)
    assert [e.action for e in store.audit_log(limit=2)] == ["model_approval", "model_added"]


def test_lock_closes_drops_the_key_and_calls_hooks(store):
    cleared = []
    store.on_lock(lambda: cleared.append(True))
    store.lock()
    assert store.locked and cleared == [True]
    assert bytes(store._data_key) == bytes(32)
    with pytest.raises(StoreLocked):
        store.list_clients()
    store.lock()  # a second lock is harmless
    assert cleared == [True]


def test_auto_lock_uses_idle_time_on_a_monotonic_clock(store):
    now = [1000.0]
    auto = AutoLock(store, timeout_s=300, clock=lambda: now[0])
    now[0] += 299
    assert not auto.check()
    auto.touch()
    now[0] += 299
    assert not auto.check()
    now[0] += 1
    assert auto.check() and store.locked


def test_auto_lock_on_suspend(store):
    AutoLock(store, timeout_s=60).suspend()
    assert store.locked


def test_a_suggestion_past_an_unacknowledged_crisis_warning_cannot_be_used(store):
    client = store.add_client("C-RISK")
    session = store.start_session(client.id)
    flagged = store.append_utterance(session.id, "client", "words", risk_flags=("suicide_selfharm",))
    later = store.append_utterance(session.id, "client", "more words")
    first = store.add_suggestion(flagged.id, "m", "question", "Are you safe?", 1.0)
    second = store.add_suggestion(later.id, "m", "question", "What happened next?", 1.0)
    for suggestion in (first, second):  # the flagged turn, and any turn after it
        for decision in ("accepted", "edited"):
            with pytest.raises(CrisisNotAcknowledged):
                store.decide(suggestion.id, decision, "text" if decision == "edited" else None)
    store.decide(second.id, "rejected")  # rejecting is always allowed
    record = store.acknowledge_risk(flagged.id, "Dr Test")
    assert (record.categories, record.acknowledged_by) == (("suicide_selfharm",), "Dr Test")
    assert store.acknowledge_risk(flagged.id, "Someone else") == record  # once per utterance
    store.decide(first.id, "accepted")
    transcript = store.session_transcript(session.id)
    assert transcript.acknowledgements == (record,) and transcript.unacknowledged_risk() is None
    audit = [e for e in store.audit_log() if e.action == "crisis_acknowledged"]
    assert [(e.session_id, e.object_id, e.count) for e in audit] == [(session.id, flagged.id, 1)]
    with pytest.raises(ValueError, match="no risk flag"):
        store.acknowledge_risk(later.id, "Dr Test")


def test_the_audit_log_refuses_rows_that_replace_existing_ones(store, raw_connection, store_path):
    fill(store, "gamma")
    store.close()
    conn = raw_connection(store_path)
    first = conn.execute("SELECT id, at, action FROM audit ORDER BY id LIMIT 1").fetchone()
    for verb in ("INSERT OR REPLACE", "REPLACE"):
        with pytest.raises(sqlcipher3.IntegrityError, match="append-only"):
            conn.execute(f"{verb} INTO audit(id, at, action) VALUES (?, ?, 'backup')", (first[0], first[1]))
    with pytest.raises(sqlcipher3.IntegrityError):
        conn.execute("INSERT INTO audit(at, action) VALUES ('now', 'not-an-action')")
    assert conn.execute("SELECT id, at, action FROM audit ORDER BY id LIMIT 1").fetchone() == first


def test_a_store_from_before_acknowledgements_migrates_with_its_audit_log(tmp_path, monkeypatch):
    from therapist_app.core.store import KdfParams, Store, schema
    from therapist_app.core.store.domain import StoreRecords

    def first_schema_audit(self, action, *, client_id=None, session_id=None, object_id=None, count=None):
        """The audit write of the first schema: no hash chain yet."""
        self._require().execute(
            "INSERT INTO audit(at, action, client_id, session_id, object_id, count) VALUES (?, ?, ?, ?, ?, ?)",
            (schema.now(), action, client_id, session_id, object_id, count),
        )

    path = tmp_path / "old.db"
    monkeypatch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:1])
    monkeypatch.setattr(StoreRecords, "_audit", first_schema_audit)
    with Store.create(path, PASSPHRASE, KdfParams.fast()) as old:
        ids = fill_without_risk(old)
        before = old.audit_log()
    monkeypatch.undo()
    with Store.open(path, PASSPHRASE) as store:
        assert store.audit_log() == before  # newest first, every row kept
        flagged = store.append_utterance(ids, "client", "words", risk_flags=("abuse",))
        store.acknowledge_risk(flagged.id, "Dr Test")
        assert [e.action for e in store.audit_log()[:1]] == ["crisis_acknowledged"]
        assert store.audit_log()[1:] == before
        assert store.integrity_check().ok  # the old rows were chained by the migration


def fill_without_risk(store) -> int:
    """What the first schema can hold, written with methods it supports (audited)."""
    client = store.add_client("C-OLD")
    store.get_client(client.id)
    return store.start_session(client.id).id


def test_the_fate_of_every_draft_is_kept(store):
    session = store.start_session(store.add_client("C-FATE").id)
    said = store.append_utterance(session.id, "client", "I can't sleep")
    drafts = [store.add_suggestion(said.id, "m", None, f"draft {n}", 1.0) for n in range(3)]
    store.decide(drafts[0].id, "rejected")
    turn = store.use_suggestion(drafts[1].id, "edited", "It sounds exhausting.")
    assert (turn.speaker, turn.text, turn.origin) == ("therapist", "It sounds exhausting.", "suggestion")
    fates = dict(store._require().execute("SELECT suggestion_id, decision FROM decisions"))
    # Draft 2 was open: another draft was used, so it was not chosen.
    assert [fates[d.id] for d in drafts] == ["rejected", "edited", "not_chosen"]
    assert store.close_round(said.id) == 0
    with pytest.raises(ValueError, match="accepted or edited"):
        store.use_suggestion(drafts[2].id, "rejected")


def test_an_own_reply_is_the_therapist_turn_and_leaves_the_drafts_not_chosen(store):
    session = store.start_session(store.add_client("C-OWN").id)
    said = store.append_utterance(session.id, "client", "Everything is falling apart", risk_flags=("self_harm",))
    drafts = [store.add_suggestion(said.id, "m", None, f"draft {n}", 1.0) for n in range(2)]
    store.decide(drafts[0].id, "rejected")
    # No acknowledgement is needed: none of the model's text is used.
    turn = store.own_reply(session.id, "I'm here with you. Are you safe right now?")
    assert (turn.speaker, turn.origin) == ("therapist", "own")
    fates = [d for (d,) in store._require().execute("SELECT decision FROM decisions ORDER BY id")]
    assert fates == ["rejected", "not_chosen"]
    transcript = store.session_transcript(session.id).utterances
    assert [u.origin for u in transcript] == [None, "own"]
    with pytest.raises(InvalidInput, match="empty"):
        store.own_reply(session.id, "   ")


def test_a_store_from_before_draft_fates_migrates_its_decisions(tmp_path, monkeypatch):
    from therapist_app.core.store import KdfParams, Store, schema

    path = tmp_path / "v3.db"
    monkeypatch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:3])
    with Store.create(path, PASSPHRASE, KdfParams.fast()) as old:
        conn = old._require()  # the schema of version 3, written as its app wrote it
        for statement in (
            "INSERT INTO clients(id, code, created_at) VALUES (1, 'C-V3', 't')",
            "INSERT INTO sessions(id, client_id, conversation_id, started_at) VALUES (1, 1, 'c', 't')",
            "INSERT INTO utterances(id, session_id, speaker, text, created_at) VALUES (1, 1, 'client', 'words', 't')",
            "INSERT INTO suggestions(id, utterance_id, model_id, text, latency_ms, created_at) "
            "VALUES (1, 1, 'm', 'draft', 1.0, 't'), (2, 1, 'm', 'other', 1.0, 't')",
            "INSERT INTO decisions(suggestion_id, decision, final_text, created_at) VALUES (1, 'edited', 'final', 't')",
        ):
            conn.execute(statement)
        before = conn.execute("SELECT * FROM decisions").fetchall()
    monkeypatch.undo()
    with Store.open(path, PASSPHRASE) as store:
        assert store._require().execute("SELECT * FROM decisions").fetchall() == before
        assert store.close_round(1) == 1  # the draft left open is now not chosen
        assert store.session_transcript(1).utterances[0].origin is None
        assert store.integrity_check().ok
