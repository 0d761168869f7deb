"""The suggestion engine: N strategy-tagged replies decoded together on one llama.cpp context.

One round renders one prompt per strategy through the dialogue format. The prompts
differ only in their last few tokens, so the shared token prefix is decoded once into
sequence 0 and copied to the other sequences' KV cache; each step then decodes one
token for every live sequence in a single batch. The KV cache of sequence 0 is kept
between rounds of a session, so a new round decodes only what changed since the last.
"""

from __future__ import annotations

import codecs
import logging
import math
import re
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterator, Sequence

from therapist_app.core import dialogue_format as fmt
from therapist_app.core import load_progress
from therapist_app.core.adapter_merge import MergeError, merged_model
from therapist_app.core.dialogue_format import SuggestionRequest
from therapist_app.core.llama_runtime import (
    Batch,
    Context,
    LlamaBackend,
    LoraAdapter,
    Model,
    Sampler,
    SamplingParams,
    default_threads,
    native_log_capture,
)
from therapist_app.core.model_file import (
    MIN_ADAPTER_BYTES,
    ModelFileError,
    bundled_model_path,
    read_gguf_header,
    read_gguf_layout,
)
from therapist_app.core.offload import (
    OffloadBackend,
    Placement,
    Plan,
    classify_gpu_failure,
    load_placed,
    plan_offload,
)
from therapist_app.core.taxonomy import pick_strategies, strategies

log = logging.getLogger(__name__)

# Tokens per llama_decode call (and per micro-batch): the compute graph is sized for it.
N_BATCH = 512
_SPECIAL_MARKERS = re.compile(f"({re.escape(fmt.IM_START)}|{re.escape(fmt.IM_END)})")


@dataclass(frozen=True)
class EngineConfig:
    model_path: Path | None = None
    """GGUF to load; None means the bundled SmolLM2-135M-Instruct."""
    adapter_path: Path | None = None
    """A LoRA adapter (GGUF) for the model, e.g. the app's tuned default."""
    merge_adapter: bool = True
    """Merge the adapter into the model's weights (once, in the user's cache) and load
    that, which decodes as fast as the model alone; when the merge cannot be made, or
    with False, llama.cpp applies the adapter at load (about 10% slower decode)."""
    n_ctx: int = 2048
    """Context window in tokens shared by all sequences of a round."""
    n_threads: int | None = None
    """CPU threads; None picks the available cores (at most 8)."""
    n_gpu_layers: int | None = None
    """Layers to offload (the output layer counts as one; more than the model has means
    all); None fits them to the GPU's free memory (core/offload.py). A GPU load that
    fails is retried with fewer layers, then on the CPU, either way."""
    max_tokens: int = 64
    """Most tokens generated per suggestion (replies are one to three sentences)."""
    seed: int = 1234
    """Base seed; sequence i samples with seed + i, so a round is reproducible."""
    sampling: SamplingParams = field(default_factory=SamplingParams)
    n_seq_max: int = 8
    """Most drafts one round can decode in parallel (best-of-N candidates included)."""
    candidates: int = 6
    """Drafts decoded per round of suggestions, of which the best are shown: 6 keeps a
    round within twice the time of decoding just the 3 shown (bench/inference.py)."""

    def __post_init__(self) -> None:
        if self.n_ctx < 256:
            raise ValueError("n_ctx must be at least 256 tokens")
        if not 1 <= self.max_tokens <= self.n_ctx // 2:
            raise ValueError("max_tokens must be between 1 and half the context")
        if self.n_gpu_layers is not None and self.n_gpu_layers < 0:
            raise ValueError("n_gpu_layers must be >= 0, or None for automatic")
        if not 1 <= self.n_seq_max <= 8:
            raise ValueError("n_seq_max must be between 1 and 8")
        if not 1 <= self.candidates <= self.n_seq_max:
            raise ValueError(f"candidates must be between 1 and n_seq_max ({self.n_seq_max})")


@dataclass(frozen=True)
class TokenEvent:
    """New text for suggestion `index` (streamed as generated, before cleaning)."""

    index: int
    strategy: str
    text: str


@dataclass(frozen=True)
class Suggestion:
    index: int
    strategy: str
    text: str
    """The cleaned reply (dialogue_format.parse_reply)."""
    raw_text: str
    n_tokens: int
    finish_reason: str
    """'stop' (end of turn), 'length' (max_tokens), 'cancelled' or 'dropped' (stopped early)."""
    likelihood: float = 0.0
    """The geometric mean of the model's probability of each token it wrote (0..1): how
    typical of the model the draft is, whether it was sampled or greedy."""


@dataclass(frozen=True)
class RoundStats:
    prompt_tokens: int
    reused_tokens: int
    """Prompt tokens whose KV cache was kept from the previous round."""
    decoded_prompt_tokens: int
    generated_tokens: int
    ttft_s: float
    total_s: float
    decode_s: float
    """Wall time of the generation loop after the first token."""
    decode_steps: int
    """One-token-per-sequence decode calls in that time (tokens/s = steps / decode_s per sequence)."""


@dataclass(frozen=True)
class SuggestionSet:
    suggestions: tuple[Suggestion, ...]
    stats: RoundStats
    cancelled: bool


@dataclass(frozen=True)
class EngineInfo:
    model_path: Path
    model_name: str
    device: str
    n_gpu_layers: int
    n_ctx: int
    n_threads: int
    template_matches: bool | None
    """True when the GGUF's chat template renders our format identically; None if it has none."""
    placement: Placement | None = None
    """Where the layers went and the sentence that tells the user (None from fakes)."""


class SuggestionStream:
    """Iterate for TokenEvents; `result` holds the SuggestionSet once iteration ends.

    `cancel()` may be called from any thread; the loop checks it between tokens.
    `stop(index)` ends one sequence early (its draft is already out of the running).
    """

    def __init__(
        self,
        engine: "SuggestionEngine",
        request: SuggestionRequest,
        chosen: list[str],
        seed: int,
        greedy: frozenset[int] = frozenset(),
    ) -> None:
        self._engine = engine
        self._request = request
        self._strategies = chosen
        self._seed = seed
        self._greedy = greedy
        self._cancel = threading.Event()
        self._stopped: set[int] = set()
        self.result: SuggestionSet | None = None

    @property
    def strategies(self) -> list[str]:
        return list(self._strategies)

    def cancel(self) -> None:
        self._cancel.set()

    def stop(self, index: int) -> None:
        self._stopped.add(index)

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def __iter__(self) -> Iterator[TokenEvent]:
        if self.result is not None:
            raise RuntimeError("a suggestion stream can be iterated only once")
        self.result = yield from self._engine._run_round(
            self._request, self._strategies, self._cancel, self._stopped, self._seed, self._greedy
        )


class SuggestionEngine:
    """Loads a GGUF and turns suggestion requests into N streamed replies.

    Not thread-safe: one round at a time (the GUI runs rounds on one worker thread).
    """

    def __init__(self, config: EngineConfig | None = None, backend: OffloadBackend | None = None) -> None:
        self.config = config or EngineConfig()
        self._backend = backend or LlamaBackend()
        path = Path(self.config.model_path) if self.config.model_path else bundled_model_path()
        read_gguf_header(path)
        adapter_path = Path(self.config.adapter_path) if self.config.adapter_path is not None else None
        merged = False
        if adapter_path is not None:
            read_gguf_header(adapter_path, MIN_ADAPTER_BYTES)
            if self.config.merge_adapter:
                try:
                    path, merged = merged_model(path, adapter_path), True
                except (MergeError, OSError, ValueError, ImportError) as problem:
                    log.warning("the adapter is applied at load instead of merged: %s", problem)
        threads = self.config.n_threads or default_threads()
        started = time.perf_counter()
        at_load = None if merged else adapter_path
        loaded, placement = load_placed(self._plan(path), lambda layers: self._attempt(path, at_load, layers, threads))
        self._model, self._ctx, self._adapter = loaded
        load_progress.report("model ready", 1.0)
        self._batch = Batch(max(N_BATCH, self.config.n_seq_max), self.config.n_seq_max)
        self._cached: list[int] = []  # tokens whose KV sits in sequence 0, in order
        name = self._model.meta("general.name") or path.stem
        if adapter_path is not None:
            name += f" + {adapter_path.stem}"
        self.info = EngineInfo(
            model_path=path,
            model_name=name,
            device=placement.device,
            n_gpu_layers=placement.n_gpu_layers,
            n_ctx=self._ctx.n_ctx,
            n_threads=threads,
            template_matches=self._check_template(),
            placement=placement,
        )
        log.info(
            "model loaded in %.2fs: %s on %s (%d layers offloaded, %d threads, n_ctx %d)",
            time.perf_counter() - started,
            name,
            self.info.device,
            placement.n_gpu_layers,
            threads,
            self.info.n_ctx,
        )

    # ---- public API ----------------------------------------------------------------

    def stream(
        self,
        request: SuggestionRequest,
        n: int = 3,
        strategies: Sequence[str] | None = None,
        seed: int | None = None,
        greedy: Sequence[int] = (),
    ) -> SuggestionStream:
        """Start a round of `n` suggestions.

        Strategies: the explicit list if given (one may repeat: sequences of the same
        strategy share their prompt and differ by seed); else n variants of the
        request's own strategy if it names one; else n distinct strategies suited to its
        emotion. Sequence i samples with `seed + i` (default: the configured seed), so a
        round is reproducible and a regenerated one, given a new seed, is not a repeat;
        the sequences listed in `greedy` take the most likely token instead.
        """
        chosen = self.plan_strategies(request, n, strategies)
        if any(not 0 <= i < n for i in greedy):
            raise ValueError(f"greedy sequences must be within 0..{n - 1}")
        return SuggestionStream(self, request, chosen, self.config.seed if seed is None else seed, frozenset(greedy))

    def complete(
        self,
        request: SuggestionRequest,
        n: int = 3,
        strategies: Sequence[str] | None = None,
        seed: int | None = None,
        greedy: Sequence[int] = (),
    ) -> SuggestionSet:
        stream = self.stream(request, n, strategies, seed, greedy)
        for _ in stream:
            pass
        assert stream.result is not None
        return stream.result

    def plan_strategies(self, request: SuggestionRequest, n: int, chosen: Sequence[str] | None = None) -> list[str]:
        if not 1 <= n <= self.config.n_seq_max:
            raise ValueError(f"n must be between 1 and {self.config.n_seq_max}")
        if n * self.config.max_tokens > self._ctx.n_ctx // 2:
            raise ValueError(
                f"{n} suggestions of up to {self.config.max_tokens} tokens need a context "
                f"of at least {2 * n * self.config.max_tokens} tokens (it is {self._ctx.n_ctx})"
            )
        if chosen is not None:
            unknown = [s for s in chosen if s not in strategies()]
            if unknown or len(chosen) != n:
                raise ValueError(f"need {n} known strategies, got {list(chosen)}")
            return list(chosen)
        if request.strategy is not None:
            return [request.strategy] * n
        emotion = request.emotion.label if request.emotion else None
        return pick_strategies(emotion, n)

    def count_tokens(self, text: str) -> int:
        return len(self._tokenize_prompt(text))

    def prime(self, context: Sequence[fmt.Turn], draft: str = "") -> int:
        """Decode the session so far into the cache while nobody is waiting.

        Called when the therapist's reply is recorded: the next round then starts
        from a cache that already holds every turn up to the client's next words, so
        its first token waits only for those words and the notes after them. Called
        again with `draft`, the client's words as typed so far, it extends the cache
        over them too; a later edit keeps the part that still matches. Returns the
        number of tokens decoded (0 when the prompt alone fills the room a round has;
        that round drops the oldest turns itself).
        """
        tokens = self._tokenize_prompt(fmt.render_next_turn_prefix(context, draft))
        room = self._ctx.n_ctx - self.config.n_seq_max * self.config.max_tokens
        if len(tokens) >= room:
            return 0
        started = time.perf_counter()
        reused = self._extend_cache(tokens)
        log.info("primed %d tokens (%d reused) in %.3fs", len(tokens) - reused, reused, time.perf_counter() - started)
        return len(tokens) - reused

    def reset_session(self) -> None:
        """Forget the cached prefix (a new client session starts)."""
        self._ctx.clear()
        self._cached = []

    def perf(self):
        return self._ctx.perf()

    def close(self) -> None:
        self._cached = []
        for owner in ("_batch", "_ctx", "_adapter", "_model"):
            resource = getattr(self, owner, None)
            if resource is not None:
                resource.close()

    def __enter__(self) -> "SuggestionEngine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- internals -------------------------------------------------------------------

    def _plan(self, path: Path) -> Plan:
        """The first load to try. The layout is read (and the file's tensor data checked
        to lie within it) only where layers could go to a GPU."""
        backend = self._backend.gpu_backend()
        requested = self.config.n_gpu_layers
        layout, memory, unreadable = None, None, ""
        if backend != "cpu" and requested != 0:
            try:
                layout = read_gguf_layout(path)
            except ModelFileError as problem:
                unreadable = str(problem)
            if layout is not None and requested is None:
                memory = self._backend.gpu_memory()
        return plan_offload(backend, requested, layout, memory, self.config.n_ctx, N_BATCH, unreadable)

    def _attempt(
        self, path: Path, adapter_path: Path | None, layers: int, threads: int
    ) -> tuple[Model, Context, LoraAdapter | None]:
        """Model, context and adapter with `layers` on the GPU. With layers there, any
        failure of llama.cpp's is the GPU's to answer for (GpuLoadFailed) until the CPU
        load says otherwise; on the CPU alone it is the file's."""
        with native_log_capture() as lines:
            try:
                return self._open(path, adapter_path, layers, threads)
            except (RuntimeError, ModelFileError) as error:
                if layers == 0:
                    raise
                raise classify_gpu_failure(lines, str(error)) from None

    def _open(
        self, path: Path, adapter_path: Path | None, layers: int, threads: int
    ) -> tuple[Model, Context, LoraAdapter | None]:
        try:
            model = self._backend.load_model(str(path), layers)
        except RuntimeError:
            raise ModelFileError(
                f"llama.cpp could not load {path.name}: the file is damaged or its architecture is not supported"
            ) from None
        owners: list = [model]
        try:
            ctx = Context(model, self.config.n_ctx, N_BATCH, self.config.n_seq_max, threads)
            owners.insert(0, ctx)
            adapter = None
            if adapter_path is not None:
                try:
                    adapter = LoraAdapter(model, str(adapter_path))
                except RuntimeError:
                    raise ModelFileError(
                        f"llama.cpp could not apply the adapter {adapter_path.name} to "
                        f"{path.name}: it was made for another model or is damaged"
                    ) from None
                owners.insert(0, adapter)
                ctx.use_adapter(adapter)
        except BaseException:
            for owner in owners:
                owner.close()
            raise
        return model, ctx, adapter

    def _check_template(self) -> bool | None:
        template = self._model.chat_template()
        if not template:
            return None
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        probe = fmt.build_messages(SuggestionRequest("probe words", (fmt.Turn("therapist", "probe reply"),)))
        try:
            rendered = (
                ImmutableSandboxedEnvironment()
                .from_string(template)
                .render(
                    messages=[{"role": m.role, "content": m.content} for m in probe],
                    add_generation_prompt=True,
                )
            )
        except Exception as err:  # a foreign template can fail in many ways
            log.warning("the model's chat template could not be rendered (%s)", type(err).__name__)
            return False
        matches = rendered == fmt.render_chatml(probe)
        if not matches:
            log.warning("the model's chat template differs from the dialogue format (ChatML)")
        return matches

    def _tokenize_prompt(self, prompt: str) -> list[int]:
        # Only the format's own turn markers are read as special tokens; everything
        # between them (including pasted client text) is tokenized as plain text.
        tokens: list[int] = []
        for piece in _SPECIAL_MARKERS.split(prompt):
            if piece:
                tokens += self._model.tokenize(piece, special=piece in (fmt.IM_START, fmt.IM_END))
        return tokens

    def _prompts(self, request: SuggestionRequest, chosen: list[str], sequences: int) -> list[list[int]]:
        """Token prompts, one per distinct strategy, that fit the KV cache together
        with the tokens `sequences` drafts generate.

        The cache is shared: the common prefix takes its cells once, each strategy's
        own suffix once, and every sequence's generated tokens cells of their own.
        """
        room = self._ctx.n_ctx - sequences * self.config.max_tokens
        budget = room
        longest = max(chosen, key=lambda s: len(strategies()[s].directive))
        while True:
            fitted = fmt.fit_context(request.with_strategy(longest), self.count_tokens, budget)
            prompts = [self._tokenize_prompt(fmt.render_prompt(fitted.with_strategy(s))) for s in chosen]
            shared = _common_prefix_length(prompts)
            cells = shared + sum(len(p) - shared for p in prompts)
            if cells <= room:
                return prompts
            budget -= cells - room

    def _keep_prefix(self, tokens: list[int]) -> int:
        """Make sequence 0 hold the longest prefix of `tokens` that it already holds,
        dropping the rest and every other sequence. Returns that prefix's length."""
        reused = _common_prefix_length([self._cached, tokens])
        for seq in range(1, self.config.n_seq_max):
            self._ctx.remove(seq)
        if not self._ctx.remove(0, reused):
            self._ctx.remove(0)
            reused = 0
        self._cached = tokens[:reused]
        return reused

    def _decode_rows(self, rows: list[tuple[int, int, tuple[int, ...], bool]]) -> list[int]:
        """Decode (token, position, sequences, wants logits) rows, at most n_batch a call.

        The last call takes the last n_batch rows, so rows that want logits belong at
        the end (fewer than n_batch of them). Returns their indices in that last batch.
        """
        last = max(0, len(rows) - self._ctx.n_batch)
        # An earlier call's logits are overwritten by the next call: refuse rather than
        # hand a sequence another sequence's logits.
        if any(logits for *_, logits in rows[:last]):
            raise ValueError(f"rows that want logits must be among the last {self._ctx.n_batch} rows")
        starts = [*range(0, last, self._ctx.n_batch), last]
        logit_index: list[int] = []
        for start, end in zip(starts, [*starts[1:], len(rows)]):
            self._batch.clear()
            logit_index = []
            for token, pos, seqs, logits in rows[start:end]:
                index = self._batch.add(token, pos, seqs, logits)
                if logits:
                    logit_index.append(index)
            if self._batch.n_tokens:
                self._ctx.decode(self._batch)
        return logit_index

    def _extend_cache(self, tokens: list[int]) -> int:
        """Make sequence 0 hold exactly `tokens`, reusing what it holds and decoding the
        new tail without logits. Returns the number of tokens reused."""
        reused = self._keep_prefix(tokens)
        self._decode_rows([(tokens[pos], pos, (0,), False) for pos in range(reused, len(tokens))])
        self._cached = tokens[:]
        return reused

    def _run_round(
        self,
        request: SuggestionRequest,
        chosen: list[str],
        cancel: threading.Event,
        stopped: set[int],
        seed: int,
        greedy: frozenset[int] = frozenset(),
    ) -> Iterator[TokenEvent]:
        started = time.perf_counter()
        n = len(chosen)
        distinct = list(dict.fromkeys(chosen))
        unique_prompts = self._prompts(request, distinct, n)
        prompts = [unique_prompts[distinct.index(s)] for s in chosen]
        # Every sequence keeps at least one token of its own to decode, so each gets
        # logits at its own position in the first shared batch.
        shared = _common_prefix_length(unique_prompts)
        shared = min(shared, min(len(p) for p in unique_prompts) - 1)
        reused = self._keep_prefix(prompts[0][:shared])
        for seq in range(1, n):
            self._ctx.copy_sequence(0, seq, 0, reused)

        argmax = replace(self.config.sampling, temperature=0.0)
        samplers = [
            Sampler(argmax if i in greedy else self.config.sampling, seed + i, self._model.n_vocab) for i in range(n)
        ]
        decoders = [codecs.getincrementaldecoder("utf-8")("replace") for _ in range(n)]
        texts = [""] * n
        generated = [0] * n
        logprobs = [0.0] * n
        sampled = [0] * n
        finish: list[str | None] = [None] * n
        positions = [len(p) for p in prompts]
        first_token_at: float | None = None
        decode_started = 0.0
        steps = 0

        try:
            # One batch where it fits: the uncached part of the shared prefix, each token
            # in every sequence, then each distinct prompt's own suffix, in every sequence
            # of that strategy, with logits on its last token (a decode call of its own
            # would cost a whole step). Sequences of one strategy sample from the same
            # logits with different seeds.
            every = tuple(range(n))
            rows = [(prompts[0][pos], pos, every, False) for pos in range(reused, shared)]
            for strategy, prompt in zip(distinct, unique_prompts):
                group = tuple(seq for seq in range(n) if chosen[seq] == strategy)
                rows += [(prompt[pos], pos, group, pos == len(prompt) - 1) for pos in range(shared, len(prompt))]
            first_logits = self._decode_rows(rows)
            logit_index = [first_logits[distinct.index(s)] for s in chosen]
            self._cached = prompts[0][:]

            while True:
                next_tokens: dict[int, int] = {}
                for seq in range(n):
                    if finish[seq] is not None:
                        continue
                    if cancel.is_set():
                        finish[seq] = "cancelled"
                        continue
                    if seq in stopped:
                        finish[seq] = "dropped"
                        continue
                    token = samplers[seq].sample(self._ctx, logit_index[seq])
                    logprobs[seq] += self._ctx.logprob(logit_index[seq], token, self._model.n_vocab)
                    sampled[seq] += 1
                    if first_token_at is None:
                        first_token_at = time.perf_counter()
                        decode_started = first_token_at
                    if self._model.is_end_of_generation(token):
                        finish[seq] = "stop"
                        continue
                    generated[seq] += 1
                    piece = decoders[seq].decode(self._model.piece(token))
                    texts[seq] += piece
                    stop_at = _find_stop(texts[seq])
                    if stop_at is not None:
                        texts[seq] = texts[seq][:stop_at]
                        finish[seq] = "stop"
                        continue
                    if piece:
                        yield TokenEvent(seq, chosen[seq], piece)
                    if generated[seq] >= self.config.max_tokens:
                        finish[seq] = "length"
                        continue
                    next_tokens[seq] = token
                if not next_tokens:
                    break
                self._batch.clear()
                for seq, token in next_tokens.items():
                    logit_index[seq] = self._batch.add(token, positions[seq], (seq,), True)
                    positions[seq] += 1
                    if seq == 0:
                        self._cached.append(token)
                self._ctx.decode(self._batch)
                steps += 1
        finally:
            for sampler in samplers:
                sampler.close()

        finished = time.perf_counter()
        suggestions = tuple(
            Suggestion(
                index=i,
                strategy=chosen[i],
                text=fmt.parse_reply(texts[i]).text,
                raw_text=texts[i],
                n_tokens=generated[i],
                finish_reason=finish[i] or "stop",
                likelihood=math.exp(logprobs[i] / max(sampled[i], 1)),
            )
            for i in range(n)
        )
        ttft = (first_token_at or finished) - started
        stats = RoundStats(
            prompt_tokens=len(prompts[0]),
            reused_tokens=reused,
            decoded_prompt_tokens=(shared - reused) + sum(len(p) - shared for p in unique_prompts),
            generated_tokens=sum(generated),
            ttft_s=ttft,
            total_s=finished - started,
            decode_s=finished - decode_started if first_token_at else 0.0,
            decode_steps=steps,
        )
        log.info(
            "round: %d suggestions, prompt %d tokens (%d reused), %d generated, ttft %.3fs, total %.3fs",
            n,
            stats.prompt_tokens,
            reused,
            stats.generated_tokens,
            ttft,
            stats.total_s,
        )
        return SuggestionSet(suggestions, stats, cancel.is_set())


def _common_prefix_length(sequences: Sequence[Sequence[int]]) -> int:
    """Length of the longest common prefix.

    >>> _common_prefix_length([[1, 2, 3], [1, 2, 4], [1, 2]])
    2
    """
    if not sequences:
        return 0
    length = min(len(s) for s in sequences)
    for i in range(length):
        first = sequences[0][i]
        if any(s[i] != first for s in sequences[1:]):
            return i
    return length


def _find_stop(text: str) -> int | None:
    hits = [text.find(stop) for stop in fmt.stop_strings()]
    hits = [h for h in hits if h >= 0]
    return min(hits) if hits else None
