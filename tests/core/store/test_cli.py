"""`therapist-app store ...`, called through main() with passphrases on a pipe."""

from __future__ import annotations

import argparse
import json

import pytest

from therapist_app.cli import build_parser, main
from therapist_app.core.store import Store

FAST_KDF = ["--kdf-time-cost", "1", "--kdf-memory-kib", "8", "--kdf-parallelism", "1"]
PASS = "a long enough passphrase"


def test_store_lifecycle_through_the_cli(tmp_path, fd, capsys):
    db = str(tmp_path / "s.db")
    assert main(["store", "init", "--db", db, "--passphrase-fd", fd(PASS), *FAST_KDF]) == 0
    with Store.open(db, PASS) as store:
        client = store.add_client("C-9", "Ana Example")
        session = store.start_session(client.id)
        said = store.append_utterance(session.id, "client", "I saw Ana at 12 Elm Road.")
        store.decide(store.add_suggestion(said.id, "m", None, "How was it?", 1.0).id, "accepted")
    assert main(["store", "check", "--db", db, "--passphrase-fd", fd(PASS)]) == 0
    assert "ok" in capsys.readouterr().out

    backup = str(tmp_path / "b.db")
    assert main(["store", "backup", backup, "--db", db, "--passphrase-fd", fd(PASS)]) == 0
    restored = str(tmp_path / "r.db")
    assert main(["store", "restore", backup, "--db", restored, "--passphrase-fd", fd(PASS)]) == 0
    with Store.open(restored, PASS) as store:
        assert [c.code for c in store.list_clients()] == ["C-9"]

    out = tmp_path / "train.jsonl"
    assert (
        main(
            [
                "store",
                "export-training",
                str(out),
                "--db",
                db,
                "--passphrase-fd",
                fd(PASS),
                "--system-policy",
                str(tmp_path / "none"),
                "--user-policy",
                str(tmp_path / "none"),
            ]
        )
        == 0
    )
    assert json.loads(out.read_text())["client_words"] == "I saw [NAME] at [ADDRESS]."

    assert main(["store", "erase-client", "C-9", "--db", db, "--passphrase-fd", fd(PASS)]) == 2
    assert main(["store", "erase-client", "C-9", "--yes", "--db", db, "--passphrase-fd", fd(PASS)]) == 0
    with Store.open(db, PASS) as store:
        assert store.list_clients() == []


def test_cli_errors_are_clear(tmp_path, fd, capsys):
    db = str(tmp_path / "s.db")
    assert main(["store", "init", "--db", db, "--passphrase-fd", fd("short"), *FAST_KDF]) == 1
    assert "at least 8 characters" in capsys.readouterr().err
    assert main(["store", "init", "--db", db, "--passphrase-fd", fd(PASS), *FAST_KDF]) == 0
    assert main(["store", "check", "--db", db, "--passphrase-fd", fd("wrong passphrase")]) == 1
    assert "wrong passphrase" in capsys.readouterr().err
    assert main(["store", "check", "--db", db, "--passphrase-fd", fd()]) == 1
    assert "no passphrase" in capsys.readouterr().err
    policy = tmp_path / "policy.toml"
    policy.write_text("[policy]\nexport_allowed = false\n")
    assert (
        main(
            [
                "store",
                "export-training",
                str(tmp_path / "o.jsonl"),
                "--db",
                db,
                "--passphrase-fd",
                fd(PASS),
                "--system-policy",
                str(policy),
                "--user-policy",
                str(tmp_path / "none"),
            ]
        )
        == 1
    )
    assert "does not allow" in capsys.readouterr().err
    assert not (tmp_path / "o.jsonl").exists()
    policy.write_text("[policy]\nkeychain_allowed = false\n")
    assert (
        main(
            [
                "store",
                "init",
                "--keychain",
                "--db",
                str(tmp_path / "k.db"),
                "--passphrase-fd",
                fd(PASS),
                "--system-policy",
                str(policy),
                *FAST_KDF,
            ]
        )
        == 1
    )
    assert "keychain" in capsys.readouterr().err
    assert not (tmp_path / "k.db").exists()
    damaged = bytearray((tmp_path / "s.db").read_bytes())
    damaged[4096 + 10] ^= 0x40
    (tmp_path / "s.db").write_bytes(bytes(damaged))
    assert main(["store", "check", "--db", db, "--passphrase-fd", fd(PASS)]) == 1
    assert "Restore it from a backup" in capsys.readouterr().err
    assert (tmp_path / "s.db").read_bytes() == bytes(damaged)


def test_store_audit_prints_a_table_and_writes_a_csv(tmp_path, fd, capsys):
    db = str(tmp_path / "s.db")
    assert main(["store", "init", "--db", db, "--passphrase-fd", fd(PASS), *FAST_KDF]) == 0
    with Store.open(db, PASS) as store:
        client = store.add_client("C-7", "Marker Name")
        store.get_client(client.id)  # an audited view
        store.backup(tmp_path / "b.db", PASS)
        entries = store.audit_log()
    capsys.readouterr()
    assert main(["store", "audit", "--db", db, "--passphrase-fd", fd(PASS)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["Time", "(local)", "Action"] and len(lines) == 1 + len(entries)
    assert "Backup made" in lines[1] and "Client record viewed" in lines[2]
    assert "Records created" in lines[-1]
    assert main(["store", "audit", "--limit", "1", "--db", db, "--passphrase-fd", fd(PASS)]) == 0
    assert [line.split()[2:4] for line in capsys.readouterr().out.splitlines()[1:]] == [["Backup", "made"]]

    out = tmp_path / "audit.csv"
    assert main(["store", "audit", "--csv", str(out), "--db", db, "--passphrase-fd", fd(PASS)]) == 0
    assert f"wrote {len(entries)} audit rows" in capsys.readouterr().out
    rows = out.read_text(encoding="utf-8").splitlines()
    assert rows[0] == "id,at,action,client_id,session_id,object_id,count"
    assert [row.split(",")[2] for row in rows[1:]] == [e.action for e in entries]
    assert rows[2] == f"{entries[1].id},{entries[1].at},view_client,{client.id},,,"
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    assert b"Marker" not in out.read_bytes() and b"C-7" not in out.read_bytes()
    before = out.read_bytes()
    assert main(["store", "audit", "--csv", str(out), "--db", db, "--passphrase-fd", fd(PASS)]) == 1
    assert "already exists" in capsys.readouterr().err
    assert out.read_bytes() == before
    assert main(["store", "audit", "--db", db, "--passphrase-fd", fd("wrong passphrase")]) == 1
    assert "wrong passphrase" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["store", "audit", "--limit", "0", "--db", db, "--passphrase-fd", fd(PASS)])
    assert "at least 1" in capsys.readouterr().err


def test_passphrase_is_never_an_argument():
    store_parser = _subparsers(build_parser())["store"]
    for name, sub in _subparsers(store_parser).items():
        options = {o for action in sub._actions for o in action.option_strings}
        assert "--passphrase-fd" in options, name
        assert not {o for o in options if "passphrase" in o} - {"--passphrase-fd", "--own-passphrase"}


def test_every_store_command_and_option_has_help():
    store_parser = _subparsers(build_parser())["store"]
    for name, sub in _subparsers(store_parser).items():
        assert sub.description, name
        for action in sub._actions:
            assert action.help, f"{name} {action.dest}"


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("no subcommands")
