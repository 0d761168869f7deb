"""Settings: frozen dataclasses with help text and bounds per field, loaded from TOML.

Precedence is defaults < TOML file < command-line flags. Every field becomes a flag
(`max_length` -> `--max-length`) whose help is the field's help, so the TOML keys, the
flags and the run folder's `config.toml` all use the same names. A field's accepted
values (choices, bounds) are declared once, beside its help, with `setting()`; the
`Settings` base checks them, and subclasses add only the checks that tie fields together.
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


def setting(
    default: Any,
    help: str,
    choices: tuple | None = None,
    *,
    at_least: float | None = None,
    above: float | None = None,
    below: float | None = None,
    at_most: float | None = None,
):
    """A settings field: its default, its help, and the values it accepts.

    >>> from dataclasses import fields
    >>> @dataclass(frozen=True)
    ... class Demo(Settings):
    ...     rate: float = setting(0.5, "a share", above=0, below=1)
    >>> Demo(rate=1.0)
    Traceback (most recent call last):
    ...
    trainer.config.ConfigError: rate must be within (0, 1), not 1.0
    >>> describe_bounds(fields(Demo)[0])
    'within (0, 1)'
    """
    return field(
        default=default,
        metadata={
            "help": help,
            "choices": choices,
            "at_least": at_least,
            "above": above,
            "below": below,
            "at_most": at_most,
        },
    )


def default_of(cls: type, name: str, default: Any):
    """Field `name` of settings class `cls` with another default, same help and bounds
    (how a command's settings change a shared field's default without restating it)."""
    return field(default=default, metadata=cls.__dataclass_fields__[name].metadata)


def describe_bounds(f: dataclasses.Field) -> str:
    """The field's numeric bounds in words ('' when it has none)."""
    meta = f.metadata
    low = ("[", meta.get("at_least")) if meta.get("at_least") is not None else ("(", meta.get("above"))
    high = ("]", meta.get("at_most")) if meta.get("at_most") is not None else (")", meta.get("below"))
    if low[1] is not None and high[1] is not None:
        return f"within {low[0]}{low[1]:g}, {high[1]:g}{high[0]}"
    if low[1] is not None:
        return f"at least {low[1]:g}" if low[0] == "[" else f"above {low[1]:g}"
    if high[1] is not None:
        return f"at most {high[1]:g}" if high[0] == "]" else f"below {high[1]:g}"
    return ""


def _in_bounds(f: dataclasses.Field, value) -> bool:
    meta = f.metadata
    return not (
        (meta.get("at_least") is not None and value < meta["at_least"])
        or (meta.get("above") is not None and value <= meta["above"])
        or (meta.get("below") is not None and value >= meta["below"])
        or (meta.get("at_most") is not None and value > meta["at_most"])
    )


@dataclass(frozen=True)
class Settings:
    """Base of every settings class: each field is checked against its declared choices
    and bounds. Subclasses call `super().__post_init__()` first, then check what ties
    their fields together."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            choices = f.metadata.get("choices")
            if choices and value not in choices:
                raise ConfigError(f"{f.name} must be one of {', '.join(choices)}, not {value!r}")
            if not _in_bounds(f, value):
                raise ConfigError(f"{f.name} must be {describe_bounds(f)}, not {value!r}")


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
        bounds = describe_bounds(f)
        help_text = f"{f.metadata['help']} (default: {f.default!r}{'; ' + bounds if bounds else ''})"
        if kind is bool:
            group.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        else:
            group.add_argument(
                flag, dest=f.name, type=kind, default=None, choices=f.metadata.get("choices"), help=help_text
            )


def add_settings_command(
    subparsers: argparse._SubParsersAction, name: str, cls: type, func, *, help: str, description: str
) -> argparse.ArgumentParser:
    """A subcommand whose flags are the fields of settings class `cls` and which runs `func(args)`."""
    parser = subparsers.add_parser(name, help=help, description=description)
    add_config_arguments(parser, cls)
    parser.set_defaults(func=func)
    return parser


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
