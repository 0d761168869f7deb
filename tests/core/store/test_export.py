"""The de-identified training export of decisions."""

from __future__ import annotations

import json

import pytest

from therapist_app.core.dialogue_format import Example
from therapist_app.core.policy import Policy
from therapist_app.core.store import ExportRefused, StoreExists


def _session(store):
    client = store.add_client("C-7", "Sarah Jones")
    session = store.start_session(client.id)
    store.append_utterance(session.id, "client", "Hi, I'm back from Leeds.")
    store.append_utterance(session.id, "therapist", "Welcome back.")
    said = store.append_utterance(
        session.id, "client", "My sister Sarah called on 3 March from 07700 900123.", emotion="anxiety"
    )
    store.correct_emotion(said.id, "sadness")
    accepted = store.add_suggestion(said.id, "smollm2", "reflection", "That call upset you.", 9.0)
    edited = store.add_suggestion(said.id, "smollm2", "question", "What did she say?", 9.0)
    rejected = store.add_suggestion(said.id, "smollm2", None, "Email sam@example.org.", 9.0)
    store.decide(accepted.id, "accepted")
    store.decide(edited.id, "edited", "What did Sarah say on the phone?")
    store.decide(rejected.id, "rejected")
    return session


def test_export_writes_deidentified_dialogue_format_lines(store, tmp_path):
    session = _session(store)
    out = tmp_path / "train.jsonl"
    assert store.export_training(out, Policy()) == 3
    lines = out.read_text(encoding="utf-8").splitlines()
    examples = [Example.from_dict(json.loads(line)) for line in lines]
    assert [e.decision for e in examples] == ["accepted", "edited", "rejected"]
    first = examples[0]
    assert first.client_words == "My sister [NAME] called on [DATE] from [PHONE]."
    assert [(t.speaker, t.text) for t in first.context] == [
        ("client", "Hi, I'm back from [PLACE]."),
        ("therapist", "Welcome back."),
    ]
    assert (first.emotion, first.strategy, first.source) == ("sadness", "reflection", "app")
    assert first.reply == "That call upset you." == first.suggestion
    assert examples[1].reply == "What did [NAME] say on the phone?"
    assert examples[2].reply is None and examples[2].suggestion == "Email [EMAIL]."
    assert first.conversation_id == session.conversation_id != str(session.id)
    assert len({e.id for e in examples}) == 3
    text = out.read_text(encoding="utf-8")
    for identifier in ("Sarah", "Leeds", "07700", "sam@example.org", "3 March"):
        assert identifier not in text
    audit = store.audit_log(limit=1)[0]
    assert (audit.action, audit.count) == ("export_training", 3)


def test_export_refused_by_policy_writes_nothing(store, tmp_path):
    _session(store)
    before = len(store.audit_log())
    with pytest.raises(ExportRefused, match="policy"):
        store.export_training(tmp_path / "train.jsonl", Policy(export_allowed=False))
    assert not (tmp_path / "train.jsonl").exists()
    assert len(store.audit_log()) == before


def test_export_never_overwrites(store, tmp_path):
    out = tmp_path / "train.jsonl"
    out.write_text("keep me")
    with pytest.raises(StoreExists):
        store.export_training(out, Policy())
    assert out.read_text() == "keep me"


def test_export_removes_the_clients_stored_name_and_code_in_any_form(store, tmp_path):
    """The display name is on no word list; it goes anyway, in any case and as its
    parts, with its code, and a name found in one turn goes from every text."""
    client = store.add_client("ZQ-1138", "Zebedee Quartermain")
    session = store.start_session(client.id)
    store.append_utterance(session.id, "client", "ZEBEDEE here, file ZQ-1138.")
    store.append_utterance(session.id, "therapist", "Welcome, zebedee.")
    store.append_utterance(session.id, "client", "My sponsor Bartholomeus rang.")
    said = store.append_utterance(session.id, "client", "the quartermain family and bartholomeus again")
    suggestion = store.add_suggestion(said.id, "smollm2", "question", "How was it with Bartholomeus?", 9.0)
    store.decide(suggestion.id, "edited", "How are the Quartermains, Zeb?")
    out = tmp_path / "train.jsonl"
    assert store.export_training(out, Policy()) == 1
    example = Example.from_dict(json.loads(out.read_text(encoding="utf-8")))
    assert [t.text for t in example.context] == [
        "[NAME] here, file [ID].",
        "Welcome, [NAME].",
        "My sponsor [NAME] rang.",
    ]
    assert example.client_words == "the [NAME] family and [NAME] again"
    assert example.suggestion == "How was it with [NAME]?"
    text = out.read_text(encoding="utf-8").lower()
    for identifier in ("zebedee", "zeb", "quartermain", "zq-1138", "bartholomeus"):
        assert identifier not in text


def test_own_replies_and_drafts_not_chosen_are_exported_for_preference_training(store, tmp_path):
    session = store.start_session(store.add_client("C-OWN").id)
    said = store.append_utterance(session.id, "client", "I feel invisible at home.", emotion="sadness")
    drafts = [store.add_suggestion(said.id, "m", None, f"draft {n}", 1.0) for n in range(2)]
    store.decide(drafts[0].id, "rejected")
    store.own_reply(session.id, "That sounds lonely. Who notices you there?")
    out = tmp_path / "train.jsonl"
    assert store.export_training(out, Policy()) == 3
    examples = [Example.from_dict(json.loads(line)) for line in out.read_text().splitlines()]
    assert [(e.decision, e.suggestion, e.reply) for e in examples] == [
        ("rejected", "draft 0", None),
        ("not_chosen", "draft 1", None),
        ("own", None, "That sounds lonely. Who notices you there?"),
    ]
    assert {e.client_words for e in examples} == {"I feel invisible at home."}
    assert examples[2].emotion == "sadness" and examples[2].context == ()


def test_a_row_stored_as_bytes_outside_the_api_does_not_stop_the_export(store, tmp_path):
    _session(store)
    store._require().execute("UPDATE utterances SET text = CAST(text AS BLOB) WHERE id = 1")
    out = tmp_path / "train.jsonl"
    assert store.export_training(out, Policy()) == 3
    first = Example.from_dict(json.loads(out.read_text().splitlines()[0]))
    assert first.context[0].text == "Hi, I'm back from [PLACE]."
