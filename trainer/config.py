"""Training configs: frozen dataclasses with help text per field, loaded from TOML.

Precedence is defaults < TOML file < command-line flags. Every field becomes a flag
(`max_length` -> `--max-length`) whose help is the field's help, so the TOML keys, the
flags and the run folder's `config.toml` all use the same names.
"""

from __future__ import annotations

import argparse
import dataclasses
import tomllib
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

C = TypeVar("C")


class ConfigError(ValueError):
    """A config file or flag with an unknown key or a value out of range."""


def _f(default: Any, help: str, choices: tuple | None = None):
    return field(default=default, metadata={"help": help, "choices": choices})


@dataclass(frozen=True)
class SFTSettings:
    model: str = _f("", "base model: a local Hugging Face folder (e.g. from `import-gguf`) or a hub id when online")
    data: str = _f(
        "",
        "training data: a normalised JSONL file (split here, conversations kept whole) or a "
        "folder holding train.jsonl and validation.jsonl from `therapist-trainer split`; "
        "empty means the shipped seed corpus",
    )
    output_dir: str = _f("runs/sft", "folder that holds one sub-folder per run")
    run_name: str = _f("", "name of this run's folder; empty means a timestamp")
    finetune: str = _f("lora", "lora (adapters through peft) or full (every weight)", ("lora", "full"))
    lora_r: int = _f(16, "LoRA rank")
    lora_alpha: int = _f(32, "LoRA scaling numerator (alpha / r scales the update)")
    lora_dropout: float = _f(0.05, "dropout on the LoRA branch")
    lora_target_modules: str = _f("all-linear", "comma-separated module names to adapt, or all-linear")
    lora_top_layers: int = _f(0, "adapt only the top N transformer layers (0: all); the backward pass then "
                                 "stops below them, which speeds up CPU training")
    max_length: int = _f(512, "longest tokenized example; longer prompts lose their oldest tokens")
    batch_size: int = _f(8, "examples per device per step")
    grad_accum: int = _f(1, "steps whose gradients add up before an optimiser update")
    learning_rate: float = _f(2e-4, "peak learning rate")
    lr_scheduler: str = _f("cosine", "learning-rate schedule (a transformers scheduler name)")
    warmup_ratio: float = _f(0.03, "fraction of the updates spent warming the learning rate up")
    weight_decay: float = _f(0.0, "AdamW weight decay")
    epochs: float = _f(1.0, "passes over the training split (ignored when max_steps > 0)")
    max_steps: int = _f(-1, "optimiser updates to run; -1 means use epochs")
    seed: int = _f(0, "seed for the split, shuffling and initialisation")
    validation_fraction: float = _f(0.1, "share of conversations held out for validation when data is one file")
    test_fraction: float = _f(0.1, "share of conversations held out (unused here) for testing when data is one file")
    device: str = _f("auto", "auto (CUDA when present), cpu or cuda", ("auto", "cpu", "cuda"))
    bf16: str = _f("auto", "bfloat16 mixed precision: auto (where the GPU supports it), on or off", ("auto", "on", "off"))
    packing: str = _f(
        "auto",
        "pack several examples per row: auto (only where attention keeps packed examples "
        "apart, i.e. flash attention on CUDA), on or off",
        ("auto", "on", "off"),
    )
    group_by_length: bool = _f(True, "batch examples of similar length together to cut padding")
    gradient_checkpointing: bool = _f(False, "recompute activations in the backward pass to save memory")
    logging_steps: int = _f(5, "log loss, learning rate and tokens/s every N updates")
    eval_steps: int = _f(50, "validate every N updates (and always at the end); 0 means only at the end")
    eval_on_start: bool = _f(False, "also validate before the first update (a baseline for the loss curve)")
    save_steps: int = _f(100, "save a checkpoint every N updates (and at the end)")
    save_total_limit: int = _f(2, "checkpoints kept in the run folder")
    merge_lora: bool = _f(True, "also save the LoRA-merged full model (what GGUF export needs)")
    resume: str = _f("", "continue a run: latest (the newest checkpoint in the run folder), auto (latest if there "
                         "is one, else start) or a checkpoint folder")
    num_threads: int = _f(0, "CPU threads for torch; 0 means one per physical core")

    def __post_init__(self) -> None:
        positive = ("lora_r", "lora_alpha", "max_length", "batch_size", "grad_accum", "logging_steps", "save_steps", "save_total_limit")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, not {getattr(self, name)}")
        for name in ("eval_steps", "num_threads", "lora_top_layers"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be 0 or more, not {getattr(self, name)}")
        if self.max_steps == 0 or self.max_steps < -1:
            raise ConfigError("max_steps must be -1 (use epochs) or at least 1")
        if self.max_steps == -1 and self.epochs <= 0:
            raise ConfigError("epochs must be above 0 when max_steps is -1")
        if not 0 < self.learning_rate < 1:
            raise ConfigError(f"learning_rate must be within (0, 1), not {self.learning_rate}")
        for name in ("lora_dropout", "warmup_ratio", "weight_decay"):
            if not 0 <= getattr(self, name) < 1:
                raise ConfigError(f"{name} must be within [0, 1), not {getattr(self, name)}")
        if not (0 < self.validation_fraction < 1 and 0 <= self.test_fraction < 1
                and self.validation_fraction + self.test_fraction < 1):
            raise ConfigError("validation_fraction must be in (0, 1), test_fraction in [0, 1), and their sum below 1")
        for f in fields(self):
            choices = f.metadata.get("choices")
            if choices and getattr(self, f.name) not in choices:
                raise ConfigError(f"{f.name} must be one of {', '.join(choices)}, not {getattr(self, f.name)!r}")


def _field_type(cls: type, f: dataclasses.Field) -> type:
    hint = typing.get_type_hints(cls)[f.name]
    if isinstance(hint, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    return hint


def add_config_arguments(parser: argparse.ArgumentParser, cls: type) -> None:
    """`--config FILE` plus one flag per field; unset flags stay None so the file wins."""
    parser.add_argument("--config", type=Path, help="TOML file with settings (flags override it)")
    group = parser.add_argument_group("settings (also TOML keys)")
    for f in fields(cls):
        flag = "--" + f.name.replace("_", "-")
        kind = _field_type(cls, f)
        help_text = f"{f.metadata['help']} (default: {f.default!r})"
        if kind is bool:
            group.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        else:
            group.add_argument(flag, dest=f.name, type=kind, default=None, choices=f.metadata.get("choices"), help=help_text)


def load_config(cls: type[C], path: str | Path | None = None, overrides: dict | None = None) -> C:
    """Defaults, then the TOML file's keys, then non-None overrides."""
    values: dict[str, Any] = {}
    known = {f.name: f for f in fields(cls)}
    if path is not None:
        path = Path(path)
        try:
            with path.open("rb") as f:
                values = tomllib.load(f)
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except tomllib.TOMLDecodeError as bad:
            raise ConfigError(f"{path}: not valid TOML ({bad})") from None
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError(f"{path}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(known)}")
        for name, value in values.items():
            kind = _field_type(cls, known[name])
            if kind is float and isinstance(value, int) and not isinstance(value, bool):
                values[name] = float(value)
            elif not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise ConfigError(f"{path}: {name} must be a {kind.__name__}, not {value!r}")
    values.update({k: v for k, v in (overrides or {}).items() if k in known and v is not None})
    return cls(**values)


def config_from_args(cls: type[C], args: argparse.Namespace) -> C:
    return load_config(cls, args.config, {f.name: getattr(args, f.name, None) for f in fields(cls)})


def to_toml(config) -> str:
    """The config as TOML, loadable again with `load_config` (the run folder's record)."""
    lines = []
    for f in fields(config):
        value = getattr(config, f.name)
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, (int, float)):
            text = repr(value)
        else:
            text = '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
        lines.append(f"{f.name} = {text}")
    return "\n".join(lines) + "\n"
