"""The reward pack on table-driven cases, including the ones where a reward must be low."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from trainer.config import ConfigError, load_config
from trainer.rewards import REGISTRY, build_reward_pack, make_reward
from trainer.rewards.emotion import EmotionAlignment, reflection_of_feeling
from trainer.rewards.length import BilateralLength, LengthCache
from trainer.rewards.lexical import format_compliance, reference_agreement, repetition_penalty
from trainer.rewards.relevance import ContextualRelevance
from trainer.rewards.safety import Safety, check_reply
from trainer.rewards.settings import RewardSettings, reward_pack
from trainer.rewards.strategy import adherence, strategy_adherence


@pytest.mark.parametrize(
    "reply, emotion, low, high",
    [
        ("It sounds like you're feeling really anxious about Friday.", "anxiety", 1.0, 1.0),
        ("You seem worried.", "anxiety", 1.0, 1.0),
        ("Anxiety is common.", "anxiety", 0.6, 0.6),
        ("It sounds like a lot.", "grief", 0.3, 0.3),
        ("Cheer up, it could be worse.", "sadness", 0.0, 0.0),
        ("Don't worry about feeling anxious.", "anxiety", 0.0, 0.0),
        ("What time is it?", "anger", 0.0, 0.0),
        ("I hear how lonely the evenings are.", "loneliness", 1.0, 1.0),
        ("It makes sense that you feel relieved.", "hope", 1.0, 1.0),
        ("Thanks for telling me; it sounds like an ordinary week.", "neutral", 1.0, 1.0),
        ("Thanks.", "neutral", 0.3, 0.3),
    ],
)
def test_reflection_of_feeling(reply, emotion, low, high):
    assert low <= reflection_of_feeling(reply, emotion) <= high


def test_emotion_alignment_combines_classifier_and_check():
    def classifier(texts):
        return [{"sadness": 0.9, "neutral": 0.1} if "sad" in t.lower() else {"neutral": 1.0} for t in texts]

    reward = EmotionAlignment(classifier=classifier, classifier_weight=0.5)
    scores = reward(
        ["It sounds like you feel sad.", "Okay."],
        emotion=["sadness", None],
        client_words=["I lost my dog.", "I feel so sad today."],
    )
    assert scores[0] == pytest.approx(0.5 * 1.0 + 0.5 * 0.9)
    # Unannotated row: the classifier reads sadness in the client's words; "Okay." neither names it nor reads sad.
    assert scores[1] == pytest.approx(0.0)
    assert EmotionAlignment(classifier=None)(["Fine."], emotion=[None]) == [None]
    with pytest.raises(ValueError, match="classifier_weight"):
        EmotionAlignment(classifier=None, classifier_weight=2)


@pytest.mark.parametrize(
    "reply, strategy, client, low, high",
    [
        ("What part of it weighs on you most?", "question", None, 1.0, 1.0),
        ("Do you sleep well?", "question", None, 0.6, 0.6),
        ("That sounds hard.", "question", None, 0.0, 0.0),
        (
            "So the review on Friday keeps pulling you back to your phone.",
            "restatement",
            "I keep checking my phone about the review on Friday.",
            0.9,
            1.0,
        ),
        ("Have you eaten today?", "restatement", "I keep checking my phone about the review on Friday.", 0.0, 0.1),
        ("It sounds like you're carrying a lot of guilt.", "reflection", None, 1.0, 1.0),
        ("When I moved cities I felt lost too; how is it for you?", "self_disclosure", None, 1.0, 1.0),
        ("The weather is nice.", "self_disclosure", None, 0.0, 0.0),
        ("It took real courage to tell her.", "affirmation", None, 1.0, 1.0),
        ("Tell me more.", "affirmation", None, 0.2, 0.2),
        ("Maybe you could try a short walk after lunch.", "suggestion", None, 1.0, 1.0),
        ("You must stop drinking coffee.", "suggestion", None, 0.3, 0.3),
        ("Many people find their sleep changes after a loss.", "information", None, 1.0, 1.0),
        ("Why?", "information", None, 0.0, 0.0),
        ("", "other", None, 0.0, 0.0),
    ],
)
def test_strategy_adherence(reply, strategy, client, low, high):
    emotion = "guilt" if strategy == "reflection" else None
    assert low <= adherence(reply, strategy, client, emotion) <= high
    assert strategy_adherence([reply], strategy=[strategy], client_words=[client], emotion=[emotion]) == [
        adherence(reply, strategy, client, emotion)
    ]


@pytest.mark.parametrize(
    "reply, reference, low, high",
    [
        ("It sounds like the waiting is wearing you out.", "It sounds like the waiting is wearing you out.", 1.0, 1.0),
        ("The waiting is wearing you out.", "It sounds like the waiting is wearing you out.", 0.7, 0.9),
        ("Let's talk about football.", "It sounds like the waiting is wearing you out.", 0.0, 0.0),
    ],
)
def test_reference_agreement(reply, reference, low, high):
    assert low <= reference_agreement([reply], reference=[reference])[0] <= high


def test_reference_agreement_hand_computed():
    # F1: 3 common of 4 and 6 words -> 2*(3/4)*(3/6)/(3/4+3/6) = 0.6; LCS 3 -> same 0.6.
    assert reference_agreement(["that sounds very hard"], reference=["it all sounds so very hard"]) == [
        pytest.approx(0.6)
    ]
    assert reference_agreement(["x."], reference=[None]) == [None]


@pytest.mark.parametrize(
    "completion, expected",
    [
        ("It sounds like a lot to carry.", 1.0),
        ("It sounds like a lot. What helps? Who knows. And then", 0.5),  # cut off and over three sentences
        ("Therapist: It sounds hard.", 0.75),
        ("It sounds like", 0.75),
        ("Client: I'm fine", 0.0),
        ("", 0.0),
    ],
)
def test_format_compliance(completion, expected):
    assert format_compliance([completion]) == [expected]


@pytest.mark.parametrize(
    "completion, expected",
    [
        ("That sounds really hard to carry alone.", 0.0),
        ("you are not alone you are not alone", -0.2),  # 5 four-grams; the last repeats the first
        ("ok ok ok ok ok ok", -0.6666666666666666),
        ("too short", 0.0),
        ("That sounds hard.<|im_end|><|im_end|><|im_end|><|im_end|>", 0.0),  # padding is not the turn
    ],
)
def test_repetition_penalty(completion, expected):
    assert repetition_penalty([completion]) == [pytest.approx(expected)]


def test_the_reward_uses_the_apps_one_safety_implementation():
    from therapist_app.core.scoring import safety as core

    assert check_reply is core.check_reply


def test_safety_reads_the_risk_flag_from_the_detector_or_the_column():
    reward = Safety()
    secret = "Keep it to yourself for now."
    assert reward([secret], client_words=["I want to kill myself."]) == [-1.0]
    assert reward([secret], client_words=["The bus was late again."]) == [1.0]
    assert reward([secret], client_words=["The bus was late."], risk=["suicide_selfharm"]) == [-1.0]
    assert reward([secret], client_words=["I want to kill myself."], risk=[""]) == [1.0]


def test_length_cache_keeps_recent_batches():
    cache = LengthCache(batches=2)
    assert cache.means() is None
    for lengths in ([10], [20], [60]):
        cache.add(lengths, [0.0])
    assert cache.means() == (40.0, 0.0)
    with pytest.raises(ValueError):
        LengthCache(batches=0)


def test_bilateral_length_rewards_departure_only_with_better_quality():
    def quality(completions, **kwargs):  # quality: replies that mention "you"
        return [1.0 if "you" in c else 0.0 for c in completions]

    reward = BilateralLength(quality, cache_batches=3)
    reward(
        ["a b c d.", "a b c d."],
    )  # running means: 4 words, quality 0
    longer_better, longer_worse, same_better = reward(["a b c d e f g h you.", "a b c d e f g h.", "a b c you."])
    assert longer_better == pytest.approx(1.0)  # 9 words vs 4: departure 1.25, capped at 1
    assert longer_worse == 0.0 and same_better == 0.0
    shorter_better = reward(["you."])[0]
    assert 0 < shorter_better < 1


def test_contextual_relevance_with_a_toy_embedding():
    reward = ContextualRelevance(embed=_toy_embed, client_weight=0.5)
    on_topic, off_topic = reward(
        ["Sleep has been hard.", "Your dog sounds sweet."],
        client_words=["I can't sleep."] * 2,
        reference=["How is your sleep?"] * 2,
    )
    assert on_topic == pytest.approx(1.0) and off_topic == pytest.approx(0.0, abs=1e-6)
    assert reward(["Sleep."], client_words=[None]) == [None]
    with pytest.raises(ValueError, match="client_weight"):
        ContextualRelevance(embed=_toy_embed, client_weight=-0.1)


def _toy_embed(texts):
    rows = np.asarray([[t.lower().count(w) + 1e-9 for w in ("sleep", "work", "dog")] for t in texts])
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


@pytest.mark.slow
def test_contextual_relevance_with_minilm():
    reward = ContextualRelevance()
    related, unrelated = reward(
        ["It sounds like sleep has been really hard lately."] + ["The train timetable changed."],
        client_words=["I haven't slept properly in weeks."] * 2,
    )
    assert related > unrelated + 0.2


def test_every_reward_is_picklable_and_named():
    pack = reward_pack(RewardSettings(emotion_classifier="none"))
    assert pack.names == tuple(REGISTRY)
    for name, fn in zip(pack.names, pack.funcs):
        assert fn.__name__ == name
        copy = pickle.loads(pickle.dumps(fn))
        assert copy.__name__ == name


def test_registry_and_weights_are_checked(tmp_path):
    with pytest.raises(ValueError, match="unknown reward"):
        make_reward("kindness")
    with pytest.raises(ValueError, match="bad options"):
        make_reward("format_compliance", strict=True)
    with pytest.raises(ValueError, match="2 rewards but 1 weights"):
        build_reward_pack(["safety", "format_compliance"], [1.0])
    with pytest.raises(ValueError, match="not in the pack"):
        build_reward_pack(["safety"], [1.0], {"format_compliance": {}})
    with pytest.raises(ValueError, match="quality must be another reward"):
        make_reward("bilateral_length", quality="bilateral_length")
    config = tmp_path / "r.toml"
    config.write_text('rewards = "safety,format_compliance"\nreward_weights = "2"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="2 names but reward_weights 1"):
        load_config(RewardSettings, config)
    config.write_text('rewards = "safety,format_compliance"\nreward_weights = "2,0.5"\n', encoding="utf-8")
    pack = reward_pack(load_config(RewardSettings, config))
    assert pack.weights == (2.0, 0.5)


def test_pack_total_and_confidence():
    pack = build_reward_pack(["safety", "format_compliance", "repetition_penalty"], [2.0, 1.0, 1.0])
    scores = pack.score(["That sounds hard.", "You have PTSD. You have PTSD. You have PTSD."], client_words=["x", "y"])
    # 9 words give 6 four-grams, the last 3 repeat the first 3: penalty -0.5
    assert pack.total(scores) == pytest.approx([3.0, -2.0 + 1.0 - 0.5])
    safe, unsafe = pack.confidence(scores)
    assert safe == pytest.approx(1.0) and unsafe < 0.4


def test_example_rl_configs_load():
    from pathlib import Path

    from trainer.dpo import DPOSettings
    from trainer.grpo import GRPOSettings

    root = Path(__file__).resolve().parents[2] / "configs"
    for kind, cls in (("grpo", GRPOSettings), ("dpo", DPOSettings)):
        paths = sorted((root / kind).glob("*.toml"))
        assert paths, kind
        for path in paths:
            assert load_config(cls, path).model


@pytest.mark.slow
def test_emotion_alignment_with_the_apps_classifier():
    from trainer.rewards.resources import load_emotion_classifier

    classify = load_emotion_classifier()
    assert set(classify(["I miss my mum so much since she died."])[0]) >= {"grief", "sadness"}
    reward = EmotionAlignment()  # "auto": the app's classifier
    reflective, offhand = reward(
        ["It sounds like you're grieving and missing her terribly.", "What time is it?"],
        client_words=["I miss my mum so much since she died."] * 2,
    )
    assert reflective > offhand + 0.3
