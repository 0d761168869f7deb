"""Ranking components: an authored crisis response is not penalised for having no
likelihood of its own."""

from __future__ import annotations

from therapist_app.core.best_of_n import Draft, DraftScorer
from therapist_app.core.dialogue_format import SuggestionRequest, Turn


def test_an_authored_draft_counts_as_sure_as_the_most_confident_generated_one():
    drafts = [
        Draft(0, "question", "What happened tonight?", likelihood=0.4),
        Draft(1, "question", "How long have you felt this way?", likelihood=0.7),
        Draft(2, "question", "Are you thinking about ending your life?", source="authored"),
    ]
    rows = DraftScorer().components(drafts, SuggestionRequest("I can't go on."), ("suicide_selfharm",))
    assert [r["likelihood"] for r in rows] == [0.4, 0.7, 0.7]
    assert rows[2]["asks_about_risk"] == 1.0
    plain = DraftScorer().components(drafts[2:], SuggestionRequest("I can't go on."))
    assert "likelihood" not in plain[0]


def test_a_draft_that_repeats_what_the_therapist_already_said_is_not_shown():
    request = SuggestionRequest(
        "It's the quiet flat, mostly.",
        (Turn("therapist", "What's been the hardest part of this week?"), Turn("client", "Work, I suppose.")),
    )
    drafts = [
        Draft(0, "question", "What's been the hardest part of this week for you?"),
        Draft(1, "question", "What is the quiet like when you come home?"),
    ]
    ranking = DraftScorer().rank(drafts, request, distinct_strategies=False)
    assert [r.draft.index for r in ranking.shown] == [1]
    assert ranking.others[0].dropped == "repeats an earlier reply"
