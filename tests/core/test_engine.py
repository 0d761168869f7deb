"""The suggestion engine on a tiny converted model (fast) and the bundled SmolLM2 (slow)."""

from __future__ import annotations

import threading

import pytest

from therapist_app.core import dialogue_format as fmt
from therapist_app.core.dialogue_format import EmotionReading, SuggestionRequest, Turn
from therapist_app.core.engine import EngineConfig, SuggestionEngine, TokenEvent
from therapist_app.core.llama_runtime import SamplingParams

REQUEST = SuggestionRequest(
    "I haven't slept properly since the move and I feel on edge all day.",
    (Turn("therapist", "How has this week been?"),),
    EmotionReading("anxiety", 0.8),
)
# The client's next words once the therapist has answered REQUEST.
FOLLOW_UP = SuggestionRequest(
    "And my partner says I snap at them.",
    REQUEST.context + (Turn("client", REQUEST.client_words), Turn("therapist", "That sounds exhausting.")),
    EmotionReading("stress", 0.7),
)


@pytest.fixture(scope="module")
def tiny_engine(tiny_gguf):
    with SuggestionEngine(EngineConfig(model_path=tiny_gguf, n_ctx=512, max_tokens=12, n_threads=2)) as engine:
        yield engine


def test_three_suggestions_with_distinct_strategies_stream_tokens(tiny_engine):
    stream = tiny_engine.stream(REQUEST, n=3)
    events = list(stream)
    result = stream.result
    assert [s.strategy for s in result.suggestions] == ["reflection", "question", "affirmation"]
    assert all(isinstance(e, TokenEvent) for e in events)
    assert {e.index for e in events} == {0, 1, 2}
    for s in result.suggestions:
        streamed = "".join(e.text for e in events if e.index == s.index)
        assert s.raw_text.startswith(streamed[: len(s.raw_text)])
        assert s.n_tokens >= 1


def test_prompt_prefix_is_decoded_once_for_all_sequences(tiny_engine):
    tiny_engine.reset_session()
    stats = tiny_engine.complete(REQUEST, n=3).stats
    # The three prompts differ only in their strategy note; decoding them separately
    # would cost three whole prompts.
    assert stats.decoded_prompt_tokens < 1.5 * stats.prompt_tokens


def test_every_sequence_reads_the_shared_prefix_it_did_not_decode_alone(tiny_gguf):
    # The shared part of the prompt that is not cached yet is decoded once, each token
    # for every sequence, in the batch that holds the sequences' own suffixes. Greedy
    # decoding of one strategy three times must then give three identical replies: a
    # sequence that missed those tokens would read a different prompt.
    config = EngineConfig(
        model_path=tiny_gguf, n_ctx=512, max_tokens=10, n_threads=2, sampling=SamplingParams(temperature=0)
    )
    with SuggestionEngine(config) as engine:
        cold = engine.complete(REQUEST.with_strategy("question"), n=3)
        assert cold.stats.reused_tokens == 0
        engine.prime(FOLLOW_UP.context)
        warm = engine.complete(FOLLOW_UP.with_strategy("question"), n=3)
        assert 0 < warm.stats.reused_tokens < warm.stats.prompt_tokens - 1
    for result in (cold, warm):
        texts = [s.raw_text for s in result.suggestions]
        assert texts[0] and texts == [texts[0]] * 3


def test_same_seed_same_suggestions(tiny_gguf):
    config = EngineConfig(model_path=tiny_gguf, n_ctx=512, max_tokens=10, seed=7, n_threads=2)
    outputs = []
    for _ in range(2):
        with SuggestionEngine(config) as engine:
            outputs.append([s.raw_text for s in engine.complete(REQUEST, n=2).suggestions])
    assert outputs[0] == outputs[1]
    with SuggestionEngine(EngineConfig(model_path=tiny_gguf, n_ctx=512, max_tokens=10, seed=8)) as engine:
        assert [s.raw_text for s in engine.complete(REQUEST, n=2).suggestions] != outputs[0]


def test_consecutive_rounds_reuse_the_session_prefix(tiny_engine):
    tiny_engine.reset_session()
    first = tiny_engine.complete(REQUEST, n=2)
    assert first.stats.reused_tokens == 0
    second = tiny_engine.complete(FOLLOW_UP, n=2)
    # Everything up to the previous client words is already in the KV cache.
    earlier = fmt.render_chatml(fmt.build_messages(REQUEST)[:-1], add_generation_prompt=False)
    assert second.stats.reused_tokens >= tiny_engine.count_tokens(earlier)
    assert second.stats.decoded_prompt_tokens < second.stats.prompt_tokens


def test_priming_the_transcript_leaves_only_the_new_words_to_decode(tiny_engine):
    tiny_engine.reset_session()
    unprimed = tiny_engine.complete(FOLLOW_UP, n=2)
    tiny_engine.reset_session()
    primed_tokens = tiny_engine.prime(FOLLOW_UP.context)
    prefix = tiny_engine.count_tokens(fmt.render_next_turn_prefix(FOLLOW_UP.context))
    assert primed_tokens == prefix
    assert tiny_engine.prime(FOLLOW_UP.context) == 0  # already in the cache
    primed = tiny_engine.complete(FOLLOW_UP, n=2)
    assert primed.stats.reused_tokens >= prefix - 1
    assert primed.stats.decoded_prompt_tokens <= unprimed.stats.decoded_prompt_tokens - prefix + 1
    # The cache holds the same tokens either way, so the same seed gives the same drafts.
    assert [s.raw_text for s in primed.suggestions] == [s.raw_text for s in unprimed.suggestions]


def test_priming_the_words_as_typed_leaves_only_the_notes_to_decode(tiny_engine):
    tiny_engine.reset_session()
    unprimed = tiny_engine.complete(FOLLOW_UP, n=2)
    tiny_engine.reset_session()
    tiny_engine.prime(FOLLOW_UP.context)
    # Typing goes on: each pause primes the words so far, reusing what still matches.
    assert tiny_engine.prime(FOLLOW_UP.context, "And my partner") > 0
    typed = "And my partner says I snap"
    extended = tiny_engine.prime(FOLLOW_UP.context, typed)
    with_draft = tiny_engine.count_tokens(fmt.render_next_turn_prefix(FOLLOW_UP.context, typed))
    assert 0 < extended < with_draft - tiny_engine.count_tokens(fmt.render_next_turn_prefix(FOLLOW_UP.context))
    primed = tiny_engine.complete(FOLLOW_UP, n=2)
    # The last typed word may tokenize differently once the sentence goes on.
    assert primed.stats.reused_tokens >= with_draft - 2
    assert primed.stats.decoded_prompt_tokens <= unprimed.stats.decoded_prompt_tokens - with_draft + 2
    assert [s.raw_text for s in primed.suggestions] == [s.raw_text for s in unprimed.suggestions]
    # A draft the therapist then rewrote costs only its mismatched tail.
    tiny_engine.prime(FOLLOW_UP.context, "Something else entirely")
    again = tiny_engine.complete(FOLLOW_UP, n=2)
    assert [s.raw_text for s in again.suggestions] == [s.raw_text for s in unprimed.suggestions]


def test_priming_a_context_too_long_for_a_round_does_nothing(tiny_engine):
    tiny_engine.reset_session()
    long_context = tuple(Turn("client" if i % 2 else "therapist", "word " * 60) for i in range(20))
    assert tiny_engine.prime(long_context) == 0
    assert tiny_engine.complete(REQUEST, n=1).suggestions


def test_cancel_mid_stream_stops_every_sequence(tiny_gguf):
    config = EngineConfig(
        model_path=tiny_gguf,
        n_ctx=2048,
        max_tokens=200,
        sampling=SamplingParams(temperature=1.5, top_k=0, top_p=1.0, min_p=0.0),
    )
    with SuggestionEngine(config) as engine:
        stream = engine.stream(REQUEST, n=3)
        seen = 0
        for _ in stream:
            seen += 1
            if seen == 5:
                stream.cancel()
        result = stream.result
    assert result.cancelled
    assert all(s.finish_reason in ("cancelled", "stop") for s in result.suggestions)
    assert sum(s.n_tokens for s in result.suggestions) < 20


def test_cancel_from_another_thread(tiny_gguf):
    config = EngineConfig(
        model_path=tiny_gguf,
        n_ctx=1024,
        max_tokens=200,
        sampling=SamplingParams(temperature=1.5, top_k=0, top_p=1.0, min_p=0.0),
    )
    with SuggestionEngine(config) as engine:
        stream = engine.stream(REQUEST, n=1)
        first = threading.Event()

        def consume():
            for _ in stream:
                first.set()

        worker = threading.Thread(target=consume)
        worker.start()
        assert first.wait(30)
        stream.cancel()
        worker.join(30)
    assert not worker.is_alive() and stream.result.cancelled


def test_long_context_is_cut_to_the_window(tiny_gguf):
    turns = tuple(Turn("client" if i % 2 else "therapist", f"Turn number {i}. " * 20) for i in range(40))
    request = SuggestionRequest("What now?", turns)
    with SuggestionEngine(EngineConfig(model_path=tiny_gguf, n_ctx=512, max_tokens=16)) as engine:
        result = engine.complete(request, n=2)
    assert result.stats.prompt_tokens <= 512 - 16
    assert len(result.suggestions) == 2


def test_cpu_build_offloads_nothing_and_accepts_an_override(tiny_gguf):
    with SuggestionEngine(EngineConfig(model_path=tiny_gguf, n_ctx=256, max_tokens=8)) as engine:
        auto = engine.info
    with SuggestionEngine(EngineConfig(model_path=tiny_gguf, n_ctx=256, max_tokens=8, n_gpu_layers=0)) as engine:
        assert engine.info.n_gpu_layers == 0
    from therapist_app.core.llama_runtime import gpu_backend

    if gpu_backend() == "cpu":
        assert (auto.device, auto.n_gpu_layers) == ("cpu", 0)
    else:
        assert auto.n_gpu_layers > 0


def test_explicit_strategies_and_bad_n(tiny_engine):
    result = tiny_engine.complete(REQUEST, n=2, strategies=["information", "question"])
    assert [s.strategy for s in result.suggestions] == ["information", "question"]
    with pytest.raises(ValueError):
        tiny_engine.stream(REQUEST, n=9)
    with pytest.raises(ValueError):
        tiny_engine.stream(REQUEST, n=2, strategies=["question"])


def test_too_many_tokens_for_the_context_is_a_clear_error(tiny_gguf):
    with SuggestionEngine(EngineConfig(model_path=tiny_gguf, n_ctx=512, max_tokens=200)) as engine:
        with pytest.raises(ValueError, match="need a context"):
            engine.stream(REQUEST, n=3)


def test_a_chosen_strategy_gives_variants_of_it(tiny_engine):
    result = tiny_engine.complete(REQUEST.with_strategy("question"), n=3)
    assert {s.strategy for s in result.suggestions} == {"question"}


@pytest.mark.slow
def test_bundled_model_gives_distinct_clean_suggestions(bundled_model):
    with SuggestionEngine(EngineConfig(max_tokens=48, seed=3)) as engine:
        assert engine.info.template_matches is True
        result = engine.complete(REQUEST, n=3)
        again = None
        engine.reset_session()
        again = engine.complete(REQUEST, n=3)
    texts = [s.text for s in result.suggestions]
    assert all(texts), texts
    assert len(set(texts)) == 3
    assert len({s.strategy for s in result.suggestions}) == 3
    for text in texts:
        assert "<|" not in text and not text.lower().startswith(("therapist:", "client:"))
    assert texts == [s.text for s in again.suggestions]


@pytest.mark.slow
def test_bundled_tokenizer_splits_cleanly_at_the_strategy(bundled_model):
    # The engine decodes the common token prefix once; that only saves work when the
    # prompts' tokens agree up to the strategy note.
    with SuggestionEngine(EngineConfig(max_tokens=8)) as engine:
        a = engine._tokenize_prompt(fmt.render_prompt(REQUEST.with_strategy("question")))
        b = engine._tokenize_prompt(fmt.render_prompt(REQUEST.with_strategy("reflection")))
        shared = next(i for i, (x, y) in enumerate(zip(a, b)) if x != y)
        assert len(a) - shared < 25 and len(b) - shared < 25


def test_decode_steps_count_the_one_token_decodes(tiny_engine):
    tiny_engine.reset_session()
    result = tiny_engine.complete(REQUEST, n=1)
    [suggestion] = result.suggestions
    # The first token comes from the prompt batch; a reply cut at max_tokens has its
    # last token sampled but never decoded, one ended by the end-of-turn token has all.
    expected = suggestion.n_tokens - 1 if suggestion.finish_reason == "length" else suggestion.n_tokens
    assert result.stats.decode_steps == expected
    assert result.stats.decode_s > 0


def test_rows_over_one_batch_keep_their_logits_in_the_last_call(tiny_gguf):
    # A round's rows go to llama.cpp in calls of n_batch; only the last call's logits
    # survive, so rows that want logits must be among the last n_batch rows.
    with SuggestionEngine(EngineConfig(model_path=tiny_gguf, n_ctx=1024, n_threads=2)) as engine:
        token = engine._model.tokenize("calm", special=False)[0]
        n_batch = engine._ctx.n_batch
        rows = [(token, pos, (0,), pos >= n_batch + 98) for pos in range(n_batch + 100)]
        assert engine._decode_rows(rows) == [n_batch - 2, n_batch - 1]
        engine.reset_session()
        rows[0] = (token, 0, (0,), True)
        with pytest.raises(ValueError, match=f"last {n_batch} rows"):
            engine._decode_rows(rows)


def test_loading_reports_llama_cpp_progress_to_a_listener(tiny_gguf):
    from therapist_app.core import load_progress

    heard = []
    with load_progress.reporting(lambda stage, done: heard.append((stage, done))):
        SuggestionEngine(EngineConfig(model_path=tiny_gguf, n_ctx=512)).close()
    loading = [done for stage, done in heard if stage == "loading the model"]
    assert len(loading) >= 2 and loading == sorted(loading) and loading[-1] == 1.0
    assert heard[-1] == ("model ready", 1.0)
