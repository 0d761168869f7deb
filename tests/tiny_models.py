"""Tiny random models built inside the test session (no hub, no weights in git).

A 2-layer, 64-wide Llama with SmolLM2's tokenizer: it has the ChatML turn tokens, so
it exercises the same template, stop-token and conversion paths as the real model,
and llama.cpp loads its GGUF in milliseconds.
"""

from __future__ import annotations

from pathlib import Path


def save_bundled_tokenizer(target: Path) -> Path:
    """The bundled SmolLM2 GGUF's tokenizer, saved as a Hugging Face tokenizer folder."""
    from transformers import AutoTokenizer

    from therapist_app.core.model_file import bundled_model_path

    gguf = bundled_model_path()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    tokenizer.save_pretrained(target)
    return target


def build_tiny_llama(target: Path, tokenizer_dir: Path, seed: int = 0) -> Path:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    return target
