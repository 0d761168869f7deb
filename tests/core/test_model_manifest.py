"""Model manifests: the app trusts a GGUF only while it matches its manifest byte for byte
and the clinic policy allows its hash; `therapist-app models` verifies and registers."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from therapist_app.cli import main
from therapist_app.core.model_file import ModelFileError, sha256_file
from therapist_app.core.model_manifest import (
    ManifestError,
    ModelManifest,
    ModelProvenance,
    ModelRefused,
    Verification,
    check_allowed,
    manifest_path_for,
    read_manifest,
    verify_model,
    write_manifest,
)
from therapist_app.core.policy import Policy

PASS = "a long enough passphrase"
FAST_KDF = ["--kdf-time-cost", "1", "--kdf-memory-kib", "8", "--kdf-parallelism", "1"]
PASSED = Verification(True, True, True, True, True, 1.0, 0.0004, 0.0001, 144, True, ("a note",))


def _manifest(path: Path, verification: Verification = PASSED) -> ModelManifest:
    return ModelManifest(
        file=path.name,
        sha256=sha256_file(path),
        size_bytes=path.stat().st_size,
        quantisation="f32",
        tensor_types={"f32": 20},
        provenance=ModelProvenance(
            name="tiny",
            architecture="LlamaForCausalLM",
            base_model="tiny-base",
            license="apache-2.0",
            run_id="r1",
            data_sha256="ab" * 32,
            evaluation={"final_eval_loss": 6.1},
        ),
        verification=verification,
        exported_at="2026-01-01T00:00:00Z",
        tools={"llama-cpp-python": "0.3.36"},
    )


@pytest.fixture
def model(tiny_gguf, tmp_path) -> Path:
    """A copy of the tiny GGUF with its manifest beside it."""
    path = tmp_path / "tiny.f32.gguf"
    shutil.copy(tiny_gguf, path)
    write_manifest(_manifest(path), tmp_path)
    return path


@pytest.fixture
def no_policy(tmp_path) -> list[str]:
    return ["--system-policy", str(tmp_path / "none.toml"), "--user-policy", str(tmp_path / "none.toml")]


def test_manifest_round_trips_and_verifies(model):
    manifest_path = manifest_path_for(model)
    assert manifest_path.name == "tiny.f32.manifest.json"
    assert read_manifest(manifest_path) == _manifest(model)
    for given in (model, manifest_path):
        verified = verify_model(given)
        assert verified.model_path == model and verified.manifest.provenance.run_id == "r1"


def _flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x40
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda p: _flip_byte(p, p.stat().st_size // 2), "SHA-256 differs"),
        (lambda p: _flip_byte(p, p.stat().st_size - 1), "SHA-256 differs"),
        (lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size - 4096]), "truncated or was replaced"),
        (lambda p: p.write_bytes(p.read_bytes() + b"\0" * 16), "truncated or was replaced"),
    ],
)
def test_a_damaged_model_is_refused(model, damage, message):
    damage(model)
    with pytest.raises(ManifestError, match=message):
        verify_model(model)


def test_a_swapped_or_foreign_file_is_refused(model, tmp_path, bundled_model):
    shutil.copy(bundled_model, model)
    with pytest.raises(ManifestError, match="truncated or was replaced"):
        verify_model(model)
    model.write_text("not a model\n" * 10_000)
    with pytest.raises(ModelFileError, match="not a GGUF"):
        verify_model(model)


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "no manifest"),
        ("{not json", "cannot read"),
        ('{"format": "something-else"}', "not a therapist model manifest"),
        ('{"format": "therapist-model-manifest", "version": 99}', "version 99"),
        ('{"format": "therapist-model-manifest", "version": 1, "file": "x.gguf"}', "malformed"),
    ],
)
def test_missing_or_malformed_manifests_are_refused(model, content, message):
    manifest_path = manifest_path_for(model)
    if content is None:
        manifest_path.unlink()
    else:
        manifest_path.write_text(content)
    with pytest.raises(ManifestError, match=message):
        verify_model(model)


def test_manifest_fields_are_validated(model):
    good = _manifest(model)
    for change, message in (
        ({"file": "../elsewhere.gguf"}, "plain .gguf"),
        ({"sha256": "XYZ"}, "64 lowercase hex"),
        ({"size_bytes": 0}, "positive"),
        ({"quantisation": "q1"}, "unknown quantisation"),
    ):
        with pytest.raises(ManifestError, match=message):
            replace(good, **change)


def test_a_manifest_naming_another_file_is_refused(model, tmp_path):
    other = tmp_path / "other.gguf"
    shutil.copy(model, other)
    shutil.copy(manifest_path_for(model), manifest_path_for(other))
    with pytest.raises(ManifestError, match="describes tiny.f32.gguf, not other.gguf"):
        verify_model(other)


def test_a_file_that_failed_export_verification_is_refused(model, tmp_path):
    write_manifest(_manifest(model, replace(PASSED, passed=False)), tmp_path)
    with pytest.raises(ManifestError, match="failed the export's verification"):
        verify_model(model)


def test_policy_decides_which_verified_models_may_load(model):
    verified = verify_model(model)
    sha = verified.manifest.sha256
    check_allowed(verified, Policy())
    strict = Policy(require_approved_models=True)
    with pytest.raises(ModelRefused, match="not approved"):
        check_allowed(verified, strict)
    check_allowed(verified, replace(strict, allowed_model_hashes=(sha,)))
    check_allowed(verified, strict, approved_hashes=frozenset({sha}))


def test_models_verify_command(model, no_policy, capsys, tmp_path):
    assert main(["models", "verify", str(model), *no_policy]) == 0
    out = capsys.readouterr().out
    assert "tiny (LlamaForCausalLM) from tiny-base, run r1, licence apache-2.0" in out and "ok:" in out
    strict = tmp_path / "policy.toml"
    strict.write_text("[policy]\nrequire_approved_models = true\n")
    assert (
        main(
            [
                "models",
                "verify",
                str(model),
                "--system-policy",
                str(strict),
                "--user-policy",
                str(tmp_path / "none.toml"),
            ]
        )
        == 1
    )
    assert "not approved" in capsys.readouterr().err


def test_models_add_registers_in_the_store_and_refuses_bad_files(model, no_policy, fd, capsys, tmp_path):
    from therapist_app.core.store import Store

    db = str(tmp_path / "s.db")
    assert main(["store", "init", "--db", db, "--passphrase-fd", fd(PASS), *FAST_KDF]) == 0
    assert main(["models", "add", str(model), "--db", db, "--passphrase-fd", fd(PASS), *no_policy]) == 0
    assert "registered as model 1" in capsys.readouterr().out
    sha = sha256_file(model)
    with Store.open(db, PASS) as store:
        [record] = store.models()
    assert (record.sha256, record.approved, Path(record.path)) == (sha, False, model.resolve())

    # Clinic IT's allow-list approves; a policy requiring approval refuses other hashes.
    allow = tmp_path / "allow.toml"
    allow.write_text(f'[policy]\nrequire_approved_models = true\nallowed_model_hashes = ["{sha}"]\n')
    assert (
        main(
            [
                "models",
                "add",
                str(model),
                "--db",
                db,
                "--passphrase-fd",
                fd(PASS),
                "--system-policy",
                str(allow),
                "--user-policy",
                str(tmp_path / "none.toml"),
            ]
        )
        == 0
    )
    assert "approved by clinic policy" in capsys.readouterr().out
    deny = tmp_path / "deny.toml"
    deny.write_text(f'[policy]\nrequire_approved_models = true\nallowed_model_hashes = ["{"0" * 64}"]\n')
    assert (
        main(
            [
                "models",
                "add",
                str(model),
                "--db",
                db,
                "--passphrase-fd",
                fd(PASS),
                "--system-policy",
                str(deny),
                "--user-policy",
                str(tmp_path / "none.toml"),
            ]
        )
        == 1
    )
    assert "not approved" in capsys.readouterr().err

    assert main(["models", "add", str(model), "--db", db, "--passphrase-fd", fd("wrong passphrase!!"), *no_policy]) == 1
    assert "wrong passphrase" in capsys.readouterr().err
    _flip_byte(model, model.stat().st_size // 3)
    assert main(["models", "add", str(model), "--db", db, "--passphrase-fd", fd(PASS), *no_policy]) == 1
    assert "SHA-256 differs" in capsys.readouterr().err

    assert main(["models", "list", "--db", db, "--passphrase-fd", fd(PASS)]) == 0
    listed = capsys.readouterr().out
    assert sha[:16] in listed and "approved" in listed and str(model.resolve()) in listed
    with Store.open(db, PASS) as store:
        assert [(r.sha256, r.approved) for r in store.models()] == [(sha, True)]


def test_the_manifest_is_plain_json_with_every_field(model):
    record = json.loads(manifest_path_for(model).read_text())
    assert record["format"] == "therapist-model-manifest" and record["version"] == 1
    assert set(record) >= {
        "file",
        "sha256",
        "size_bytes",
        "quantisation",
        "tensor_types",
        "provenance",
        "verification",
        "exported_at",
        "tools",
    }
    assert record["verification"]["notes"] == ["a note"]


@pytest.mark.parametrize("action", ["verify", "add", "list"])
def test_models_commands_have_help_for_every_option(action):
    import argparse

    from therapist_app.cli import build_parser

    def subcommands(parser):
        return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))

    models = subcommands(build_parser()).choices["models"]
    parser = subcommands(models).choices[action]
    assert parser.description and [a.dest for a in parser._actions if not a.help] == []
