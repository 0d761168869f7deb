"""Session fixtures for trainer tests: a tiny random Llama with an offline tokenizer, and
the bundled SmolLM2 imported once (for the slow tests)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

# Nothing in these tests may reach a model or dataset hub.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"

ASSETS = Path(__file__).resolve().parents[2] / "assets"
SEED = ASSETS / "seed_corpus.jsonl"


def _seed_texts():
    for line in SEED.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        yield row["client_words"]
        yield row["reply"]


def build_tiny_model(folder: Path) -> Path:
    """A 2-layer, 64-wide random Llama and a word-level tokenizer trained on the seed corpus."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from therapist_app.core.dialogue_format import SYSTEM_PROMPT
    from therapist_app.core.taxonomy import emotions, strategies
    from trainer.models import CHATML_TEMPLATE

    specials = ["<unk>", "<|im_start|>", "<|im_end|>"]
    backend = Tokenizer(models.WordLevel(unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    extra = [SYSTEM_PROMPT, "system user assistant Client's emotion confidence Strategy"]
    extra += [s.name + " " + s.directive for s in strategies().values()] + [e.name for e in emotions().values()]
    backend.train_from_iterator(list(_seed_texts()) + extra, trainers.WordLevelTrainer(special_tokens=specials))
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="<unk>",
        eos_token="<|im_end|>",
        pad_token="<|im_end|>",
        bos_token="<|im_start|>",
    )
    tokenizer.chat_template = CHATML_TEMPLATE
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        tie_word_embeddings=True,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    pytest.importorskip("trl")
    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def smollm2(tmp_path_factory) -> Path:
    """The bundled SmolLM2 GGUF imported into a Hugging Face folder, once per session."""
    pytest.importorskip("gguf")
    from trainer.models import ModelError, bundled_gguf, import_gguf

    try:
        gguf = bundled_gguf()
    except ModelError as missing:
        pytest.skip(str(missing))
    return import_gguf(gguf, tmp_path_factory.mktemp("smollm2"))
