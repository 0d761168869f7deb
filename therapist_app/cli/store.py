"""`therapist-app store ...`: create, check, back up, restore, export from, erase in
and read the audit log of the encrypted store.

Passphrases come from an interactive prompt or from a file descriptor
(`--passphrase-fd N`, one line), never from the command line, where other users of the
machine could read them in the process list.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys
from pathlib import Path

import platformdirs

from therapist_app.core.policy import APP_NAME, PolicyError, load_policy
from therapist_app.core.store import KdfParams, Store, StoreError, restore
from therapist_app.core.store.audit_export import audit_table, write_audit_csv
from therapist_app.core.store.keys import MIN_PASSPHRASE_CHARS

log = logging.getLogger(__name__)


def default_db_path() -> Path:
    return platformdirs.user_data_path(APP_NAME) / "store.db"


class PassphraseSource:
    """Reads passphrases from one descriptor (one per line) or from the terminal."""

    def __init__(self, fd: int | None) -> None:
        self._stream = os.fdopen(fd, "r", encoding="utf-8", closefd=False) if fd is not None else None

    def read(self, prompt: str) -> str:
        if self._stream is None:
            return getpass.getpass(prompt)
        line = self._stream.readline()
        if not line:
            raise StoreError("no passphrase could be read from --passphrase-fd")
        return line.removesuffix("\n").removesuffix("\r")

    def new(self, prompt: str) -> str:
        first = self.read(prompt)
        if self._stream is None and getpass.getpass("Repeat it: ") != first:
            raise StoreError("the two passphrases differ")
        return first


def _passphrase(args: argparse.Namespace, source: PassphraseSource) -> str:
    return source.read(f"Passphrase for {args.db.name}: ")


def _open(args: argparse.Namespace, source: PassphraseSource) -> Store:
    return Store.open(args.db, _passphrase(args, source))


def cmd_init(args, source: PassphraseSource) -> int:
    if args.keychain and not load_policy(args.system_policy, args.user_policy).keychain_allowed:
        print(
            "error: clinic policy does not allow keeping the key in the OS keychain (keychain_allowed = false)",
            file=sys.stderr,
        )
        return 1
    args.db.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    kdf = KdfParams(args.kdf_time_cost, args.kdf_memory_kib, args.kdf_parallelism)
    passphrase = source.new(f"New passphrase (at least {MIN_PASSPHRASE_CHARS} characters): ")
    with Store.create(args.db, passphrase, kdf, keychain=args.keychain) as store:
        if store.keychain_message:
            print(f"note: {store.keychain_message}", file=sys.stderr)
        print(f"created {args.db} (key file {args.db.name}.keys: keep the two together)")
    return 0


def cmd_check(args, source: PassphraseSource) -> int:
    with _open(args, source) as store:
        report = store.integrity_check()
    if report.ok:
        print(f"{args.db}: ok (every page authenticated, structure intact)")
        return 0
    print(f"{args.db}: {len(report.problems)} problems; restore from a backup", file=sys.stderr)
    for problem in report.problems:  # page numbers and row ids, never client text
        print(f"  {problem}", file=sys.stderr)
    return 1


def cmd_salvage_wal(args, source: PassphraseSource) -> int:
    with Store.open(args.db, _passphrase(args, source), salvage_wal=True) as store:
        notice = store.notice
    print(notice or f"{args.db}: its log was not damaged; nothing to salvage")
    return 0


def cmd_backup(args, source: PassphraseSource) -> int:
    passphrase = _passphrase(args, source)
    with Store.open(args.db, passphrase) as store:
        if args.own_passphrase:
            passphrase = source.new("Passphrase for the backup: ")
        store.backup(args.destination, passphrase)
    print(f"backed up to {args.destination} and {args.destination.name}.keys")
    return 0


def cmd_restore(args, source: PassphraseSource) -> int:
    passphrase = source.read(f"Passphrase of the backup {args.backup.name}: ")
    args.db.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with restore(args.backup, passphrase, args.db, replace=args.replace):
        pass
    print(f"restored {args.backup} into {args.db}")
    return 0


def cmd_export_training(args, source: PassphraseSource) -> int:
    policy = load_policy(args.system_policy, args.user_policy)
    with _open(args, source) as store:
        count = store.export_training(args.output, policy)
    print(f"wrote {count} de-identified decisions to {args.output}")
    return 0


def cmd_erase_client(args, source: PassphraseSource) -> int:
    if not args.yes:
        print("erasure cannot be undone: add --yes to confirm", file=sys.stderr)
        return 2
    with _open(args, source) as store:
        matches = [c for c in store.list_clients() if c.code == args.code]
        if not matches:
            print(f"no client with code {args.code!r}", file=sys.stderr)
            return 1
        erasure = store.erase_client(matches[0].id)
    print(f"erased client {args.code}: {erasure.message}")
    return 0


def cmd_audit(args, source: PassphraseSource) -> int:
    with _open(args, source) as store:
        entries = store.audit_log(args.limit)
    if args.csv is None:
        print(audit_table(entries))
        return 0
    rows = write_audit_csv(entries, args.csv)
    print(f"wrote {rows} audit rows to {args.csv} (ids only, no client text)")
    return 0


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _run(handler):
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args, PassphraseSource(args.passphrase_fd))
        except (StoreError, PolicyError, ValueError, OSError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 1

    return run


def add_policy_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--system-policy", type=Path, default=None, help="system policy file (default: the platform's site config)"
    )
    parser.add_argument(
        "--user-policy", type=Path, default=None, help="user policy file (default: the platform's user config)"
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "store",
        help="manage the encrypted session store",
        description="Create, check, back up, restore, export from and erase in the "
        "encrypted store. Passphrases are prompted for, or read one per line from "
        "--passphrase-fd; never pass them as arguments.",
    )
    commands = parser.add_subparsers(dest="store_command", metavar="ACTION", required=True)

    def add(name: str, handler, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--db", type=Path, default=default_db_path(), help="store file (default: %(default)s)")
        sub.add_argument(
            "--passphrase-fd",
            type=int,
            metavar="N",
            help="read passphrases from file descriptor N, one per line, instead of prompting",
        )
        sub.set_defaults(func=_run(handler))
        return sub

    init = add("init", cmd_init, "create a new store protected by a passphrase")
    init.add_argument(
        "--keychain",
        action="store_true",
        help="also keep the key in the OS keychain (falls back to the passphrase alone when no keychain is available)",
    )
    defaults = KdfParams()
    init.add_argument(
        "--kdf-time-cost", type=int, default=defaults.time_cost, help="Argon2id passes (default: %(default)s)"
    )
    init.add_argument(
        "--kdf-memory-kib", type=int, default=defaults.memory_kib, help="Argon2id memory in KiB (default: %(default)s)"
    )
    init.add_argument(
        "--kdf-parallelism", type=int, default=defaults.parallelism, help="Argon2id lanes (default: %(default)s)"
    )
    add_policy_options(init)

    add("check", cmd_check, "authenticate every page and check the structure")

    backup = add("backup", cmd_backup, "write an encrypted backup with its own key (DESTINATION and DESTINATION.keys)")
    backup.add_argument("destination", type=Path, help="backup file to create (must not exist)")
    backup.add_argument("--own-passphrase", action="store_true", help="protect the backup with a separate passphrase")

    restore_parser = add("restore", cmd_restore, "restore a backup into --db after verifying every page")
    restore_parser.add_argument("backup", type=Path, help="backup file written by `store backup`")
    restore_parser.add_argument(
        "--replace",
        action="store_true",
        help="set an existing store aside (renamed, not deleted) and restore in its place",
    )

    export = add(
        "export-training", cmd_export_training, "export decisions as de-identified training JSONL (if policy allows)"
    )
    export.add_argument("output", type=Path, help="JSONL file to create (must not exist)")
    add_policy_options(export)

    erase = add("erase-client", cmd_erase_client, "erase a client and every record about them, then compact the files")
    erase.add_argument("code", help="the client's pseudonymous code")
    erase.add_argument("--yes", action="store_true", help="confirm the irreversible erasure")

    add(
        "salvage-wal",
        cmd_salvage_wal,
        "open a store whose recent-changes log is damaged, keeping the changes saved "
        "before the damage; the damaged log is kept beside the store, untouched",
    )

    audit = add("audit", cmd_audit, "show the audit log, newest first (ids and counts only, no client text)")
    audit.add_argument("--limit", type=_positive_int, metavar="N", help="only the N newest rows (default: all)")
    audit.add_argument(
        "--csv",
        type=Path,
        metavar="FILE",
        help="write the rows as CSV to FILE (created owner-only; must not exist) instead of printing a table",
    )
