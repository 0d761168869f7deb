"""Replies from a model under evaluation or training: a Hugging Face folder through
transformers, or a GGUF through the app's own llama.cpp engine.

Both take examples and return the raw completions (what the model wrote, before
`parse_reply`), so format and repetition rewards see the real output. Prompts come only
from `dialogue_format`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence

from therapist_app.core.dialogue_format import IM_END, Example, SuggestionRequest, fit_context, render_prompt

log = logging.getLogger(__name__)


class Generator(Protocol):
    def __call__(self, requests: Sequence[SuggestionRequest]) -> list[str]: ...


@dataclass(frozen=True)
class SamplingSettings:
    max_new_tokens: int = 64
    temperature: float = 0.0  # 0 means greedy
    min_p: float = 0.0
    top_p: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1 or self.temperature < 0 or not 0 <= self.min_p < 1 or not 0 < self.top_p <= 1:
            raise ValueError("need max_new_tokens >= 1, temperature >= 0, 0 <= min_p < 1 and 0 < top_p <= 1")


class HFGenerator:
    """Batched `generate` with left padding; greedy unless a temperature is set."""

    def __init__(
        self,
        model,
        tokenizer,
        sampling: SamplingSettings = SamplingSettings(),
        batch_size: int = 8,
        max_prompt_tokens: int = 1024,
    ) -> None:
        self.model, self.tokenizer, self.sampling = model, tokenizer, sampling
        self.batch_size, self.max_prompt_tokens = batch_size, max_prompt_tokens
        self.generated_tokens = 0
        self.seconds = 0.0

    @classmethod
    def load(
        cls, model_dir: str | Path, sampling: SamplingSettings = SamplingSettings(), batch_size: int = 8
    ) -> "HFGenerator":
        import torch

        from trainer.models import load_causal_lm, load_tokenizer

        tokenizer = load_tokenizer(str(model_dir))
        model = load_causal_lm(str(model_dir), dtype=torch.float32)
        model.eval()
        return cls(model, tokenizer, sampling, batch_size)

    def _prompt(self, request: SuggestionRequest) -> str:
        count = lambda text: len(self.tokenizer(text, add_special_tokens=False)["input_ids"])  # noqa: E731
        return render_prompt(fit_context(request, count, self.max_prompt_tokens))

    def __call__(self, requests: Sequence[SuggestionRequest]) -> list[str]:
        import torch

        tokenizer, model = self.tokenizer, self.model
        tokenizer.padding_side = "left"
        # Stop at the end-of-turn marker our format writes, even where eos is another token.
        vocab = tokenizer.get_vocab()
        eos = vocab[IM_END] if IM_END in vocab else tokenizer.eos_token_id
        sample = self.sampling.temperature > 0
        options = {
            "max_new_tokens": self.sampling.max_new_tokens,
            "do_sample": sample,
            "eos_token_id": eos,
            "pad_token_id": tokenizer.pad_token_id,
        }
        if sample:
            options.update(temperature=self.sampling.temperature, top_p=self.sampling.top_p, top_k=0)
            if self.sampling.min_p:
                options["min_p"] = self.sampling.min_p
        else:
            options.update(temperature=None, top_p=None, top_k=None)
        torch.manual_seed(self.sampling.seed)
        out: list[str] = []
        for start in range(0, len(requests), self.batch_size):
            prompts = [self._prompt(r) for r in requests[start : start + self.batch_size]]
            batch = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
            began = time.perf_counter()
            with torch.no_grad():
                ids = model.generate(**batch, **options)
            self.seconds += time.perf_counter() - began
            new = ids[:, batch["input_ids"].shape[1] :]
            self.generated_tokens += int((new != tokenizer.pad_token_id).sum())
            out += tokenizer.batch_decode(new, skip_special_tokens=False)
        return out


@dataclass(frozen=True)
class EvalRound:
    """What one example's round produced: the draft that counts against the reference,
    and every draft the app would have shown."""

    top: str
    """Raw text of the first draft (or the best ranked, under best-of-N)."""
    shown: tuple[str, ...]
    """The cleaned drafts the therapist would see."""


class GGUFGenerator:
    """The app's `SuggestionEngine`, with the request's strategy. One draft per request
    by default (greedy unless sampling says otherwise); `drafts` > 1 samples that many
    with the app's sampling and shows them all, as the app did before best-of-N;
    `best_of` K decodes K candidates and shows the app's ranked, gated best 3."""

    def __init__(
        self,
        gguf: str | Path,
        sampling: SamplingSettings = SamplingSettings(),
        n_ctx: int = 2048,
        threads: int | None = None,
        drafts: int = 1,
        best_of: int = 0,
        adapter: str | Path = "",
    ) -> None:
        from therapist_app.core.engine import EngineConfig, SuggestionEngine
        from therapist_app.core.llama_runtime import SamplingParams

        if drafts < 1 or best_of < 0 or (best_of and drafts > 1):
            raise ValueError("drafts must be >= 1, best_of >= 0, and not both above one")
        if drafts > 1 or best_of:
            params = SamplingParams()  # the app's own sampling
        else:
            params = SamplingParams(
                temperature=sampling.temperature,
                top_k=0 if sampling.temperature else 40,
                top_p=sampling.top_p,
                min_p=sampling.min_p,
                repeat_penalty=1.0,
            )
        parallel = max(drafts, best_of, 1)
        self.drafts, self.best_of = drafts, best_of
        self.engine = SuggestionEngine(
            EngineConfig(
                model_path=Path(gguf),
                adapter_path=Path(adapter) if adapter else None,
                n_ctx=n_ctx,
                n_threads=threads,
                max_tokens=sampling.max_new_tokens,
                seed=sampling.seed,
                sampling=params,
                n_seq_max=max(parallel, 3),
                candidates=parallel,
            )
        )
        self._scorer = None
        self.generated_tokens = 0
        self.seconds = 0.0

    def rounds(
        self, requests: Sequence[SuggestionRequest], risks: Sequence[Sequence[str]] | None = None
    ) -> list[EvalRound]:
        from therapist_app.core.best_of_n import default_scorer
        from therapist_app.core.draft_round import DraftRound

        out = []
        for i, request in enumerate(requests):
            risk = tuple(risks[i]) if risks is not None else ()
            if self.best_of:
                if self._scorer is None:
                    self._scorer = default_scorer()
                result = DraftRound(self.engine, request, self._scorer, risk).complete()
                stats, shown = result.stats, result.ranking.shown
                raw = {d.index: d.raw_text for d in result.drafts}
                top = raw[shown[0].draft.index] if shown else ""
                texts = tuple(r.draft.text for r in shown)
            else:
                strategies = [request.strategy] * self.drafts if request.strategy else None
                outcome = self.engine.complete(request, n=self.drafts, strategies=strategies)
                stats = outcome.stats
                top = outcome.suggestions[0].raw_text
                texts = tuple(s.text for s in outcome.suggestions if s.text)
            self.generated_tokens += stats.generated_tokens
            self.seconds += stats.total_s
            out.append(EvalRound(top, texts))
        return out

    def __call__(self, requests: Sequence[SuggestionRequest]) -> list[str]:
        return [r.top for r in self.rounds(requests)]

    def close(self) -> None:
        self.engine.close()


def load_generator(
    model: str | Path,
    sampling: SamplingSettings = SamplingSettings(),
    batch_size: int = 8,
    threads: int | None = None,
    drafts: int = 1,
    best_of: int = 0,
    adapter: str | Path = "",
):
    """A GGUF file goes to llama.cpp (with `adapter` applied, if any); anything else is a
    Hugging Face folder (one draft per request: the app's rounds need llama.cpp)."""
    if str(model).endswith(".gguf"):
        return GGUFGenerator(model, sampling, threads=threads, drafts=drafts, best_of=best_of, adapter=adapter)
    if drafts > 1 or best_of:
        raise ValueError("--drafts and --best-of run the app's rounds and need a GGUF model")
    return HFGenerator.load(model, sampling, batch_size)


def requests_of(examples: Sequence[Example]) -> list[SuggestionRequest]:
    return [e.request() for e in examples]
