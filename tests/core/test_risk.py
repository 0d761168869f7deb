"""The crisis-risk detector: table-driven pattern cases, then the learned channel with a
hand-written head (the shipped head on the real MiniLM is tested in test_analysis_heads)."""

from __future__ import annotations

import json

import pytest

from tests.bag_of_words import keyword_head, keyword_layers
from therapist_app.core.assets import asset_path
from therapist_app.core.risk import RISK_LABELS, RiskDetector, learned_units, primary_label
from therapist_app.core.text_head import HeadError

DETECTOR = RiskDetector()  # patterns only: no model needed

FLAGGED = [
    # (text, category, severity)
    ("I want to kill myself.", "suicide_selfharm", "moderate"),
    ("Everyone would be better off without me.", "suicide_selfharm", "moderate"),
    ("I don't want to be here anymore.", "suicide_selfharm", "moderate"),
    ("I have the pills saved up and I know how many to take.", "suicide_selfharm", "high"),
    ("If she leaves me I'll kill myself.", "suicide_selfharm", "moderate"),
    ("I'm not suicidal exactly, but I wish I could just stop existing.", "suicide_selfharm", "moderate"),
    ("I've never tried to hurt myself, but lately I've thought about it a lot.", "suicide_selfharm", "moderate"),
    ("When I was fifteen I used to cut my arms.", "suicide_selfharm", "low"),
    ('I wrote "I want to die" in my diary every night this week.', "suicide_selfharm", "moderate"),
    ("I'm going to kill him when he gets home.", "harm_others", "high"),
    ("I could really hurt someone right now, I'm that angry.", "harm_others", "high"),
    ("My husband hits me when he's been drinking.", "abuse", "moderate"),
    ('He told me "I\'ll kill you if you leave".', "abuse", "moderate"),
    ("My boyfriend won't let me see my friends.", "abuse", "moderate"),
    ("I've taken about thirty paracetamol an hour ago.", "substance_medical", "high"),
    ("I can't breathe properly and my lips are going blue.", "substance_medical", "high"),
    # Warning signs in everyday words, and the client's dropped subject.
    ("I feel like such a burden on my family.", "suicide_selfharm", "moderate"),
    ("I've sorted out my will and said my goodbyes.", "suicide_selfharm", "moderate"),
    ("been cutting again, nobody knows", "suicide_selfharm", "moderate"),
    ("Want to hurt my neighbour so he never walks right again.", "harm_others", "moderate"),
    ("When the baby won't stop crying I get this urge to shake her.", "harm_others", "high"),
    ("I keep picturing my hands round his throat.", "harm_others", "high"),
    ("Last week he locked me in the bathroom all afternoon.", "abuse", "high"),
    ("The pain is going down my left arm and I feel sweaty.", "substance_medical", "high"),
    ("my suicidal thoughts are back and louder than before", "suicide_selfharm", "moderate"),
    ("Wearing long sleeves again so nobody sees.", "suicide_selfharm", "moderate"),
    ("I told my sister I won't need them back, the plants and the dog.", "suicide_selfharm", "moderate"),
    ("He put his hands round my neck during the row.", "abuse", "high"),
    ("The carers at mum's home are mistreating her.", "abuse", "moderate"),
    ("A man online keeps asking my daughter to keep their chats secret.", "abuse", "high"),
    ("I know his routine now, when he leaves and when he's alone.", "harm_others", "high"),
    ("I'm going round there with the bat after work.", "harm_others", "high"),
    ("My mouth feels droopy on one side and my words keep coming out jumbled.", "substance_medical", "high"),
    ("If I'm honest, I've been thinking about ending my life.", "suicide_selfharm", "moderate"),
    ("sorry if i'm slurring, few beers and a couple of my diazepam", "substance_medical", "high"),
    ("If I say no he says he'll send the photos to my boss.", "abuse", "moderate"),
    ("Her stepdad locks the fridge at night so she goes to bed hungry.", "abuse", "moderate"),
    ("I've found out his new address and his shift pattern.", "harm_others", "high"),
    ("If he mouths off again tomorrow I'm taking the bat round to his.", "harm_others", "high"),
    ("My uncle says I can't leave the house without my cousin now.", "abuse", "moderate"),
    ("The kids upstairs came round asking for food again, there's never an adult home.", "abuse", "moderate"),
    ("Told my brother he can keep the car, finished the letters last night.", "suicide_selfharm", "moderate"),
    ("im bringing my dads knife in tomorrow", "harm_others", "high"),
    ("I swallowed a load of my tablets an hour ago but it passed.", "substance_medical", "high"),
    ("I had crushing chest pain this morning but it passed.", "substance_medical", "high"),
    # Frames that suppress a report must not swallow the client's own words after them.
    ("People keep asking if I'm okay and I want to kill myself.", "suicide_selfharm", "moderate"),
    ("I'm reading a book about grief and I keep thinking about killing myself.", "suicide_selfharm", "moderate"),
    ("I said I wanted to kill myself but I didn't mean it.", "suicide_selfharm", "moderate"),
    (
        "My chest pain last year turned out to be reflux. Tonight I took thirty paracetamol.",
        "substance_medical",
        "high",
    ),
    ("I've got a list of the lads from the site, home addresses and all.", "harm_others", "high"),
    ("If he comes near my kids again, I've got something in the boot that'll sort him.", "harm_others", "high"),
    ("Some nights I think a pillow would be kinder for both of us.", "harm_others", "high"),
]

NOT_FLAGGED = [
    # (text, why) — `why` is the suppression reason when a pattern matched, else None
    ("I would never hurt myself.", "negated"),
    ("I'm not suicidal, I just feel really flat.", "negated"),
    ("I've never thought about hurting anyone.", "negated"),
    ("Hurting myself isn't something I'd ever do.", "negated"),
    ("This commute is killing me.", None),
    ("My mum will kill me if I'm late again.", None),
    ("I could murder a cup of tea.", None),
    ("I'm going to kill my brother for spoiling the ending.", None),
    ('We watched "Kill Bill" on Saturday.', None),
    ('The song goes "I want to die in your arms tonight".', "quoted"),
    ("If I ever felt like hurting myself I would tell you straight away.", "hypothetical"),
    ("Hypothetically, if someone overdosed, would you have to call an ambulance?", "hypothetical"),
    ("My therapist asked me whether I was suicidal and I said no.", "reported"),
    ("A friend of mine overdosed when we were at college.", "reported"),
    ("My friend said she wanted to kill herself years ago.", None),
    ("My neighbour said her teenager has been self-harming.", None),
    ("I cut my finger chopping onions.", None),
    ("I hurt my back lifting boxes at the weekend.", None),
    ("I took two paracetamol for my headache this morning.", None),
    ("There's no way I would hurt my baby.", "negated"),
    ("I don't think I would ever hurt myself.", "negated"),
    ("I nearly killed myself laughing at that show.", None),
    ("I've been cutting out sugar.", None),
    ("I was really hurt that nobody called on my birthday.", None),
    ("The way they looked at me made me feel small.", None),
    ("Self-harm is more common in teenagers than people think.", None),
    ("i dont want to die or anything, just want a long nap", "negated"),
    ("Everyone keeps asking if I'd hurt myself. I wouldn't.", "reported"),
    ("I watched a film where the husband poisons his wife.", "reported"),
    ("My uncle overdosed years ago, but he got treatment and is doing great.", "reported"),
    ("My dad used to hit us, but he died years ago and I'm completely safe.", "reported"),
    ("Had a scare at work, heart racing for ages, but it passed once I sat down.", "reported"),
    ("My brother's going to throttle me when he finds out I crashed his bike.", None),
    ("My best friend pushed me to apply for the job.", None),
    ("I could have strangled my flatmate when he ate my leftovers.", None),
    ("I used to think about ending it all at school, but it's not like that now.", "reported"),
    ("I feel as if I could sleep for a week.", None),
    ("I said I wanted to strangle my flatmate, but I was only joking.", "negated"),
    ("I'm watching a series where the nurse poisons her patients, it's gripping.", "reported"),
    ("I teach trainee teachers how to spot neglect and grooming.", "reported"),
    ("My aunt told me about her divorce and it made me understand her better.", None),
    ("Dad nearly took a hammer to the printer this morning.", None),
    ("The chest pain last week turned out to be reflux.", "reported"),
    ("I'm reading a story about a woman who stabs her boss, it's so dark.", "reported"),
]


@pytest.mark.parametrize("text,category,severity", FLAGGED)
def test_flags_crisis_language(text, category, severity):
    assessment = DETECTOR.assess(text)
    assert assessment.flagged
    assert primary_label(assessment) == category
    assert assessment.severity == severity
    for trigger in assessment.triggers:
        assert text[trigger.start : trigger.end] == trigger.phrase


@pytest.mark.parametrize("text,why", NOT_FLAGGED)
def test_does_not_flag_safe_look_alikes(text, why):
    assessment = DETECTOR.assess(text)
    assert not assessment.flagged, assessment.triggers
    assert assessment.severity == "none"
    if why is not None:
        assert why in {t.suppressed_by for t in assessment.suppressed}


def test_negation_scope_ends_at_the_clause():
    assessment = DETECTOR.assess("I'm not going to do anything tonight, but I can't promise I'll be safe tomorrow.")
    assert assessment.categories == ("suicide_selfharm",)
    assert assessment.severity == "high"  # "tomorrow" is a time frame


def test_several_categories_most_severe_first():
    assessment = DETECTOR.assess("My husband hits me. I've taken a load of pills tonight.")
    assert assessment.categories == ("substance_medical", "abuse")


def test_joke_markers_do_not_make_suicidal_words_safe():
    assert DETECTOR.assess("i want to die lol").flagged


def test_invisible_characters_cannot_split_a_phrase():
    assert DETECTOR.assess("I want to kill my\u200bself").flagged


def test_authored_dev_split_patterns_only():
    """The patterns were developed on the dev split: they must keep the safe look-alikes
    quiet there and keep catching the risks said outright (a regression guard, not the
    reported number; indirect phrasings are shared with the embedding channel). The
    only safe rows allowed to flag are hyperbole the lists cannot tell from a threat
    ("I swear I'll kill her"), flagged by design: the safer error."""
    rows = [json.loads(line) for line in asset_path("risk_cases.jsonl").read_text().splitlines()]
    dev = [r for r in rows if r["split"] == "dev"]
    tricky = [r for r in dev if r["risk"] == "none"]
    flagged = [r for r in tricky if DETECTOR.assess(r["text"]).flagged]
    assert all(r["kind"] == "hyperbolic" for r in flagged) and len(flagged) <= 0.03 * len(tricky)
    outright = [r for r in dev if r["risk"] != "none" and r["kind"] != "indirect"]
    caught = sum(DETECTOR.assess(r["text"]).flagged for r in outright)
    assert caught / len(outright) >= 0.95


# ---- the learned channel, with a hand-written head over keyword counts ----------------

KEYWORDS = ["soon", "blood", "locked", "shutting", "bright", "pills", "tonight"]
RISK_HEAD = keyword_head(
    list(RISK_LABELS),
    KEYWORDS,
    {
        "soon": {"suicide_selfharm": 6.0},
        "blood": {"harm_others": 6.0},
        "locked": {"abuse": 6.0},
        "shutting": {"substance_medical": 6.0},
        "bright": {"none": 6.0},
        # Each alone stays below the threshold; together they reach it.
        "pills": {"suicide_selfharm": 2.5},
        "tonight": {"suicide_selfharm": 2.5},
    },
    {"none": 3.0},
)


def learned(threshold: float = 0.5) -> RiskDetector:
    return RiskDetector(keyword_layers(KEYWORDS), RISK_HEAD, threshold)


def test_the_learned_channel_flags_what_the_patterns_miss():
    assessment = learned().assess("The lights are going out for me soon.")
    assert assessment.categories == ("suicide_selfharm",)
    assert assessment.triggers[0].source == "learned" and assessment.embedding_used
    assert assessment.severity == "moderate"  # probability above CONFIDENT
    assert not learned().assess("The lights in the office are too bright.").flagged
    assert not DETECTOR.assess("The lights are going out for me soon.").flagged


def test_a_risk_buried_in_a_long_update_is_read_in_its_own_sentence():
    text = (
        "Work was fine and the kids liked the new school. The lights are going out for me soon. "
        "Anyway, the weather has been bright and warm and we went to the park twice."
    )
    assessment = learned().assess(text)
    assert assessment.categories == ("suicide_selfharm",)
    assert assessment.triggers[0].phrase == "The lights are going out for me soon."
    assert learned_units(text)[0] == (0, len(text))


def test_risk_spread_over_turns_is_read_in_a_window_that_never_repeats_an_old_flag():
    detector = learned()
    assert not detector.assess("I counted the pills.").flagged
    assert not detector.assess("Sometime tonight, after the news.").flagged
    windowed = detector.assess("Sometime tonight, after the news.", ["I counted the pills."])
    assert windowed.categories == ("suicide_selfharm",)
    assert windowed.triggers[0].phrase == "Sometime tonight, after the news."
    # An earlier turn that was risky on its own was flagged when it was said.
    assert not detector.assess("It rained.", ["The lights are going out for me soon."]).flagged


def test_the_window_costs_a_pass_only_when_a_turn_in_it_shows_a_trace_of_risk():
    seen = []
    embed = keyword_layers(KEYWORDS)
    detector = RiskDetector(lambda texts: seen.extend(texts) or embed(texts), RISK_HEAD, 0.5)
    detector.assess("We went out.", ["It rained."])
    assert "It rained. We went out." not in seen  # every turn reads as everyday talk
    assert detector.assess("Sometime tonight, after the news.", ["I counted the pills."]).flagged
    assert "I counted the pills. Sometime tonight, after the news." in seen


def test_the_threshold_comes_from_the_head_and_bounds_are_checked():
    head = RISK_HEAD.__class__(**{**RISK_HEAD.__dict__, "metadata": {"threshold": 0.9}})
    assert RiskDetector(keyword_layers(KEYWORDS), head).threshold == 0.9
    with pytest.raises(ValueError):
        RiskDetector(keyword_layers(KEYWORDS), RISK_HEAD, threshold=1.5)
    with pytest.raises(ValueError, match="both"):
        RiskDetector(keyword_layers(KEYWORDS), None)
    wrong = keyword_head(["a", "b", "c", "d", "none"], KEYWORDS, {}, {})
    with pytest.raises(HeadError):
        RiskDetector(keyword_layers(KEYWORDS), wrong)
