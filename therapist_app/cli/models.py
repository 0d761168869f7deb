"""`therapist-app models ...`: verify exported models and register them in the store.

A model is registered by its manifest (written by `therapist-trainer export`): the file
must match the manifest byte for byte and the clinic policy must allow its hash. The
store's passphrase comes from a prompt or `--passphrase-fd`, never from the command line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from therapist_app.cli.store import PassphraseSource, default_db_path
from therapist_app.core.model_file import ModelFileError
from therapist_app.core.model_manifest import VerifiedModel, check_allowed, verify_model
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


def cmd_add(args: argparse.Namespace) -> int:
    from therapist_app.core.store import Store

    verified = verify_model(args.model)
    policy = _policy(args)
    # Only clinic IT's allow-list can approve a model here: a therapist registering a
    # file cannot mark it approved themselves.
    approved = verified.manifest.sha256 in policy.allowed_model_hashes
    check_allowed(verified, policy)
    passphrase = PassphraseSource(args.passphrase_fd).read(f"Passphrase for {args.db.name}: ")
    with Store.open(args.db, passphrase) as store:
        record = store.register_model(str(verified.model_path.resolve()), verified.manifest.sha256, approved)
        if approved and not record.approved:  # registered earlier, before IT approved it
            record = store.set_model_approval(record.sha256, True)
    print(_describe(verified))
    print(f"registered as model {record.id}{' (approved by clinic policy)' if record.approved else ''}")
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
        print(f"{record.id}\t{record.sha256[:16]}...\t{'approved' if record.approved else 'not approved'}"
              f"\t{present}\t{record.path}")
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
        "models", help="verify exported models and register them in the store",
        description="Check exported GGUF models against their manifests and the clinic policy, "
        "and register them in the encrypted store.")
    commands = parser.add_subparsers(dest="models_command", metavar="ACTION", required=True)

    def add(name: str, handler, help_text: str, *, model: bool, store: bool) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        if model:
            sub.add_argument("model", type=Path, help="the exported .gguf file or its .manifest.json")
            sub.add_argument("--system-policy", type=Path, default=None,
                             help="system policy file (default: the platform's site config)")
            sub.add_argument("--user-policy", type=Path, default=None,
                             help="user policy file (default: the platform's user config)")
        if store:
            sub.add_argument("--db", type=Path, default=default_db_path(),
                             help="store file (default: %(default)s)")
            sub.add_argument("--passphrase-fd", type=int, metavar="N",
                             help="read the passphrase from file descriptor N instead of prompting")
        sub.set_defaults(func=_run(handler))
        return sub

    add("verify", cmd_verify, "check a model file against its manifest and the clinic policy",
        model=True, store=False)
    add("add", cmd_add, "verify a model and register it in the store's model registry",
        model=True, store=True)
    add("list", cmd_list, "list the models registered in the store", model=False, store=True)
