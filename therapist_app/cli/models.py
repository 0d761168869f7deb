"""`therapist-app models ...`: verify exported models and register them in the store.

A model is registered by its manifest (written by `therapist-trainer export`): the file
must match the manifest byte for byte and the clinic policy must allow its hash. The
store's passphrase comes from a prompt or `--passphrase-fd`, never from the command line.

Models other apps downloaded (LM Studio, Ollama, GPT4All, Jan; core/model_discovery.py)
are listed by `models found` and registered by `models add --found`: they carry no
manifest, so they are checked like a file added in the window (GGUF header, a llama.cpp
load, SHA-256) and must pass the same policy. They are used where they lie unless
`--copy` asks for a copy in the app's models folder.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from therapist_app.cli.store import PassphraseSource, add_policy_options, default_db_path
from therapist_app.core.model_discovery import (
    FoundModel,
    Places,
    app_models_dir,
    copy_and_inspect,
    discover,
    format_size,
    inspect_model,
    searched_folders,
)
from therapist_app.core.model_file import ModelFileError
from therapist_app.core.model_manifest import ModelRefused, VerifiedModel, check_allowed, verify_model
from therapist_app.core.policy import Policy, PolicyError, load_policy


def _describe(verified: VerifiedModel) -> str:
    m = verified.manifest
    p, v = m.provenance, m.verification
    run = f", run {p.run_id}" if p.run_id else ""
    return (
        f"{verified.model_path.name}: {m.quantisation}, {m.size_bytes / 1e6:.1f} MB, sha256 {m.sha256}\n"
        f"  {p.name} ({p.architecture}) from {p.base_model}{run}, licence {p.license}\n"
        f"  verified at export: top-1 agreement {v.top1_agreement:.4f} over {v.positions_compared} "
        f"positions, template {'matches' if v.template_matches else 'differs'}, "
        f"stops at {p.stop_token or 'end of turn'}"
    )


def _policy(args: argparse.Namespace) -> Policy:
    return load_policy(args.system_policy, args.user_policy)


def cmd_verify(args: argparse.Namespace) -> int:
    verified = verify_model(args.model)
    check_allowed(verified, _policy(args))
    print(_describe(verified))
    print("ok: the file matches its manifest and the clinic policy allows it")
    return 0


def _register(args: argparse.Namespace, path: Path, sha256: str, policy: Policy) -> str:
    """Record a checked, allowed model in the store; the line saying so."""
    from therapist_app.core.store import Store

    # Only clinic IT's allow-list can approve a model here: a therapist registering a
    # file cannot mark it approved themselves.
    approved = sha256 in policy.allowed_model_hashes
    passphrase = PassphraseSource(args.passphrase_fd).read(f"Passphrase for {args.db.name}: ")
    with Store.open(args.db, passphrase) as store:
        record = store.register_model(str(path.resolve()), sha256, approved)
        if approved and not record.approved:  # registered earlier, before IT approved it
            record = store.set_model_approval(record.sha256, True)
    return f"registered as model {record.id}{' (approved by clinic policy)' if record.approved else ''}"


def cmd_add(args: argparse.Namespace) -> int:
    if (args.model is None) == (args.found is None) or (args.copy and args.found is None):
        print(
            "error: name a model file, or --found MODEL (see `therapist-app models found`) with --copy if wanted",
            file=sys.stderr,
        )
        return 2
    if args.found is not None:
        return _add_found(args)
    verified = verify_model(args.model)
    policy = _policy(args)
    check_allowed(verified, policy)
    registered = _register(args, verified.model_path, verified.manifest.sha256, policy)
    print(_describe(verified))
    print(registered)
    return 0


def _pick(which: str, models: list[FoundModel]) -> FoundModel:
    """The found model numbered or named `which` in the `models found` list."""
    if which.isdigit() and 1 <= int(which) <= len(models):
        return models[int(which) - 1]
    named = [m for m in models if m.name == which]
    if len(named) == 1:
        return named[0]
    if named:
        numbers = ", ".join(str(models.index(m) + 1) for m in named)
        raise ModelFileError(f"several found models are called {which}: use one of the numbers {numbers}")
    raise ModelFileError(f"no found model is numbered or called {which}: `therapist-app models found` lists them")


def _add_found(args: argparse.Namespace) -> int:
    found = _pick(args.found, discover(extra_folders=args.scan))
    policy = _policy(args)
    # Check (and refuse) the file where it is before copying gigabytes of it.
    inspected = inspect_model(found.path, found.expected_sha256)
    if not policy.model_allowed(inspected.sha256):
        raise ModelRefused(
            f"clinic policy allows only approved models and {found.name} (sha256 "
            f"{inspected.sha256}) is not approved: ask clinic IT to add it to allowed_model_hashes"
        )
    if args.copy:
        # The copy must be the very file just checked.
        inspected = copy_and_inspect(replace(found, expected_sha256=inspected.sha256), args.models_folder)
    registered = _register(args, inspected.path, inspected.sha256, policy)
    where = "copied to" if args.copy else "used where it is:"
    provenance = "matches its export manifest" if inspected.has_manifest else "no export manifest: provenance unknown"
    print(
        f"{found.name} ({found.source}): {format_size(inspected.size_bytes)}, sha256 {inspected.sha256}\n"
        f"  {where} {inspected.path}\n  {provenance}"
    )
    print(registered)
    return 0


def cmd_found(args: argparse.Namespace) -> int:
    models = discover(extra_folders=args.scan)
    if not models:
        print("no GGUF models found; looked in:")
        for source, folder in searched_folders(Places.current(), args.scan):
            print(f"  {source}\t{folder}")
    for number, model in enumerate(models, 1):
        print(f"{number}\t{model.source}\t{model.name}\t{format_size(model.size_bytes)}\t{model.path}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from therapist_app.core.store import Store

    passphrase = PassphraseSource(args.passphrase_fd).read(f"Passphrase for {args.db.name}: ")
    with Store.open(args.db, passphrase) as store:
        records = store.models()
    if not records:
        print("no models registered")
    for record in records:
        present = "present" if Path(record.path).is_file() else "MISSING"
        print(
            f"{record.id}\t{record.sha256[:16]}...\t{'approved' if record.approved else 'not approved'}"
            f"\t{present}\t{record.path}"
        )
    return 0


def _run(handler):
    def run(args: argparse.Namespace) -> int:
        from therapist_app.core.store import StoreError

        try:
            return handler(args)
        except (ModelFileError, PolicyError, StoreError, OSError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 1

    return run


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "models",
        help="verify exported models and register them in the store",
        description="Check exported GGUF models against their manifests and the clinic policy, "
        "list the models other apps (LM Studio, Ollama, GPT4All, Jan) downloaded, "
        "and register them in the encrypted store.",
    )
    commands = parser.add_subparsers(dest="models_command", metavar="ACTION", required=True)

    def add(
        name: str, handler, help_text: str, *, model: bool, store: bool, found: bool = False
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        if found:
            sub.add_argument(
                "--scan",
                type=Path,
                action="append",
                default=[],
                metavar="DIR",
                help="also look for GGUF models in DIR (repeat for more folders)",
            )
        if model:
            sub.add_argument(
                "model", type=Path, nargs="?" if found else None, help="the exported .gguf file or its .manifest.json"
            )
            add_policy_options(sub)
        if store:
            sub.add_argument("--db", type=Path, default=default_db_path(), help="store file (default: %(default)s)")
            sub.add_argument(
                "--passphrase-fd",
                type=int,
                metavar="N",
                help="read the passphrase from file descriptor N instead of prompting",
            )
        sub.set_defaults(func=_run(handler))
        return sub

    add("verify", cmd_verify, "check a model file against its manifest and the clinic policy", model=True, store=False)
    adding = add(
        "add",
        cmd_add,
        "verify a model (an exported file, or one another app downloaded: "
        "--found) and register it in the store's model registry",
        model=True,
        store=True,
        found=True,
    )
    adding.add_argument(
        "--found",
        metavar="MODEL",
        help="register a model another app downloaded instead of a file: its number "
        "or name in `therapist-app models found`; used where it is unless --copy",
    )
    adding.add_argument(
        "--copy", action="store_true", help="with --found: copy the model into the app's models folder and use the copy"
    )
    adding.add_argument(
        "--models-folder", type=Path, default=app_models_dir(), help="where --copy puts the copy (default: %(default)s)"
    )
    add("list", cmd_list, "list the models registered in the store", model=False, store=True)
    add(
        "found",
        cmd_found,
        "list the GGUF models LM Studio, Ollama, GPT4All and Jan downloaded (and those in --scan folders)",
        model=False,
        store=False,
        found=True,
    )
