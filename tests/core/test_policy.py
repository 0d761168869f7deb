"""Clinic policy: defaults, validation with clear errors, and a user file that can only
tighten what the system file sets."""

from __future__ import annotations

import logging

import pytest

from therapist_app.core.policy import Policy, PolicyError, load_policy

HASH_A, HASH_B = "a" * 64, "b" * 64


def write(path, body):
    path.write_text("[policy]\n" + body, encoding="utf-8")
    return path


def test_defaults_without_files(tmp_path):
    policy = load_policy(tmp_path / "none.toml", tmp_path / "none2.toml")
    assert policy == Policy()
    assert policy.lock_timeout_s == 300 and policy.export_allowed and policy.keychain_allowed
    assert "telemetry" not in {f for f in Policy.__dataclass_fields__}


def test_system_file_sets_policy(tmp_path):
    system = write(
        tmp_path / "s.toml",
        f"lock_timeout_s = 120\nexport_allowed = false\n"
        f'require_approved_models = true\nallowed_model_hashes = ["{HASH_A.upper()}"]\n',
    )
    policy = load_policy(system, tmp_path / "none.toml")
    assert (policy.lock_timeout_s, policy.export_allowed, policy.require_approved_models) == (120, False, True)
    assert policy.allowed_model_hashes == (HASH_A,)
    assert policy.model_allowed(HASH_A) and not policy.model_allowed(HASH_B)
    assert policy.model_allowed(HASH_B, approved_in_store=True)


def test_user_file_can_tighten(tmp_path):
    system = write(tmp_path / "s.toml", f'allowed_model_hashes = ["{HASH_A}", "{HASH_B}"]\n')
    user = write(
        tmp_path / "u.toml", f'lock_timeout_s = 60\nkeychain_allowed = false\nallowed_model_hashes = ["{HASH_B}"]\n'
    )
    policy = load_policy(system, user)
    assert (policy.lock_timeout_s, policy.keychain_allowed) == (60, False)
    assert policy.allowed_model_hashes == (HASH_B,)


def test_user_file_cannot_loosen(tmp_path, caplog):
    system = write(
        tmp_path / "s.toml", "lock_timeout_s = 120\nexport_allowed = false\nrequire_approved_models = true\n"
    )
    user = write(
        tmp_path / "u.toml",
        f"lock_timeout_s = 3600\nexport_allowed = true\n"
        f'require_approved_models = false\nallowed_model_hashes = ["{HASH_A}"]\n',
    )
    with caplog.at_level(logging.WARNING):
        policy = load_policy(system, user)
    assert policy == load_policy(system, tmp_path / "none.toml")
    assert "cannot loosen export_allowed" in caplog.text


@pytest.mark.parametrize(
    "body, message",
    [
        ("lock_timeout_s = 1\n", "10..86400"),
        ('lock_timeout_s = "soon"\n', "number of seconds"),
        ('export_allowed = "yes"\n', "true or false"),
        ('allowed_model_hashes = ["abc"]\n', "64 hex digits"),
        ("telemetry = true\n", "unknown policy setting"),
        ("lock_timeout_s = \n", "cannot read"),
    ],
)
def test_invalid_files_are_clear_errors(tmp_path, body, message):
    bad = write(tmp_path / "s.toml", body)
    with pytest.raises(PolicyError, match=message) as error:
        load_policy(bad, tmp_path / "none.toml")
    assert "s.toml" in str(error.value)
