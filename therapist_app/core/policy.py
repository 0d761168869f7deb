"""Clinic policy: set by clinic IT in a system-wide TOML file, tightened by a user file.

Precedence: defaults < system file < user file, except that the user file can only make
the policy stricter. A user value that would loosen what the system file (or the
default) allows is ignored with a warning naming the field: a shorter lock timeout,
export or keychain turned off, approved models required, a narrower model allow-list
are honoured; the reverse is not. There is no telemetry setting because there is no
telemetry.

    [policy]
    lock_timeout_s = 300
    require_approved_models = true
    allowed_model_hashes = ["<64 hex digits>", ...]
    export_allowed = false
    keychain_allowed = true
"""

from __future__ import annotations

import logging
import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import platformdirs

log = logging.getLogger(__name__)

APP_NAME = "therapist-app"
POLICY_FILE = "policy.toml"
_SHA256 = re.compile(r"[0-9a-f]{64}")


class PolicyError(ValueError):
    """A policy file is unreadable or holds an invalid value."""


@dataclass(frozen=True)
class Policy:
    lock_timeout_s: float = field(
        default=300.0, metadata={"help": "Seconds of inactivity after which the store locks (10 to 86400)."}
    )
    allowed_model_hashes: tuple[str, ...] = field(
        default=(), metadata={"help": "SHA-256 (lowercase hex) of model files clinic IT has approved."}
    )
    require_approved_models: bool = field(
        default=False, metadata={"help": "Load only models whose hash is allowed here or approved in the store."}
    )
    export_allowed: bool = field(
        default=True, metadata={"help": "Whether de-identified training data may be exported from the store."}
    )
    keychain_allowed: bool = field(
        default=True, metadata={"help": "Whether the store's key may also be kept in the OS keychain."}
    )

    def __post_init__(self) -> None:
        if isinstance(self.lock_timeout_s, bool) or not isinstance(self.lock_timeout_s, (int, float)):
            raise PolicyError("lock_timeout_s must be a number of seconds")
        if not 10 <= self.lock_timeout_s <= 86400:
            raise PolicyError(f"lock_timeout_s must be within 10..86400, not {self.lock_timeout_s}")
        for name in ("require_approved_models", "export_allowed", "keychain_allowed"):
            if not isinstance(getattr(self, name), bool):
                raise PolicyError(f"{name} must be true or false")
        if isinstance(self.allowed_model_hashes, str):
            raise PolicyError("allowed_model_hashes must be a list of SHA-256 strings")
        hashes = tuple(str(h).lower() for h in self.allowed_model_hashes)
        bad = [h for h in hashes if not _SHA256.fullmatch(h)]
        if bad:
            raise PolicyError(f"allowed_model_hashes holds {len(bad)} value(s) that are not 64 hex digits")
        object.__setattr__(self, "allowed_model_hashes", hashes)

    def model_allowed(self, sha256: str, approved_in_store: bool = False) -> bool:
        """Whether a model file with this hash may be loaded."""
        if not self.require_approved_models:
            return True
        return approved_in_store or sha256.lower() in self.allowed_model_hashes


def system_policy_path() -> Path:
    return platformdirs.site_config_path(APP_NAME) / POLICY_FILE


def user_policy_path() -> Path:
    return platformdirs.user_config_path(APP_NAME) / POLICY_FILE


def _read(path: Path) -> dict:
    try:
        with path.open("rb") as f:
            table = tomllib.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise PolicyError(f"cannot read the policy file {path}: {error}") from None
    section = table.get("policy", {})
    if not isinstance(section, dict):
        raise PolicyError(f"{path}: [policy] must be a table")
    known = {f.name for f in fields(Policy)}
    unknown = sorted(set(section) - known)
    if unknown:
        raise PolicyError(f"{path}: unknown policy setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    if "allowed_model_hashes" in section and isinstance(section["allowed_model_hashes"], list):
        section["allowed_model_hashes"] = tuple(section["allowed_model_hashes"])
    return section


def _build(values: dict, path: Path, base: Policy) -> Policy:
    try:
        return replace(base, **values)
    except PolicyError as error:
        raise PolicyError(f"{path}: {error}") from None


def tighten(base: Policy, user: Policy, user_fields: set[str]) -> Policy:
    """Apply the user's settings to `base`, keeping the stricter value of each."""
    strict = {
        "lock_timeout_s": min(base.lock_timeout_s, user.lock_timeout_s),
        "export_allowed": base.export_allowed and user.export_allowed,
        "keychain_allowed": base.keychain_allowed and user.keychain_allowed,
        "require_approved_models": base.require_approved_models or user.require_approved_models,
        # Users may only narrow IT's allow-list, never add to it.
        "allowed_model_hashes": tuple(h for h in base.allowed_model_hashes if h in user.allowed_model_hashes),
    }
    for name in sorted(user_fields):
        if strict[name] != getattr(user, name):
            log.warning("the user policy file cannot loosen %s; the system value stays", name)
    return replace(base, **{name: strict[name] for name in user_fields})


def load_policy(system_path: Path | None = None, user_path: Path | None = None) -> Policy:
    """The policy in force. Missing files mean defaults; a malformed file is an error
    (the app must not start with a policy other than the one IT wrote)."""
    system_path = system_path or system_policy_path()
    user_path = user_path or user_policy_path()
    system = _build(_read(system_path), system_path, Policy())
    user_values = _read(user_path)
    if not user_values:
        return system
    user = _build(user_values, user_path, system)
    return tighten(system, user, set(user_values))
