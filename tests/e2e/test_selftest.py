"""`therapist-app selftest` and `--version`: what clinic IT and the package smoke test run."""

from __future__ import annotations

import json

import pytest

from therapist_app.cli import main
from therapist_app.cli.selftest import SelftestFailed, _export
from therapist_app.core.policy import Policy
from therapist_app.core.store import KdfParams, Store
from therapist_app.core.store.lockfile import StoreLock


@pytest.fixture
def clean_dirs(tmp_path, monkeypatch):
    """No policy, settings or store of this machine's user is read or written."""
    for name, sub in (
        ("HOME", "home"),
        ("XDG_CONFIG_HOME", "config"),
        ("XDG_DATA_HOME", "data"),
        ("XDG_CACHE_HOME", "cache"),
        ("XDG_CONFIG_DIRS", "etc-xdg"),
    ):
        monkeypatch.setenv(name, str(tmp_path / sub))
    return tmp_path


def test_version_names_the_native_libraries(capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["--version"])
    assert stopped.value.code == 0
    lines = dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines())
    assert lines["therapist-app"].startswith("0.")
    for component in ("llama.cpp", "ggml", "llama-cpp-python", "SQLCipher", "SQLite", "Qt"):
        assert lines[component] and "not available" not in lines[component], component
    assert lines["SQLCipher"][0].isdigit()  # a real cipher_version, not a plain SQLite


def test_a_bad_model_fails_the_selftest_naming_the_step(clean_dirs, capsys):
    fake = clean_dirs / "fake.gguf"
    fake.write_bytes(b"not a model" * 10_000)
    work = clean_dirs / "work"
    assert main(["selftest", "--model", str(fake), "--gui", "skip", "--data-dir", str(work)]) == 1
    err = capsys.readouterr().err
    assert "selftest: FAILED: load language model" in err and "not a GGUF model" in err
    # The store was created, then locked on the way out: its instance lock is free.
    assert (work / "selftest.db").exists()
    lock = StoreLock(work / "selftest.db")
    lock.acquire()
    lock.release()


def test_selftest_refuses_a_folder_that_is_not_empty(clean_dirs, capsys):
    busy = clean_dirs / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("someone's file")
    assert main(["selftest", "--gui", "skip", "--data-dir", str(busy)]) == 1
    assert "is not empty" in capsys.readouterr().err
    assert (busy / "keep.txt").read_text() == "someone's file"


def test_export_step_obeys_the_policy(tmp_path):
    with Store.create(tmp_path / "s.db", "a long passphrase", KdfParams.fast()) as store:
        refused = tmp_path / "refused.jsonl"
        assert "refused" in _export(store, Policy(export_allowed=False), refused)
        assert not refused.exists()
        # Allowed, but the store holds no decision: the step must fail, not pass quietly.
        with pytest.raises(SelftestFailed, match="expected 1 decision, wrote 0"):
            _export(store, Policy(), tmp_path / "empty.jsonl")


@pytest.mark.slow
@pytest.mark.gui
def test_selftest_runs_a_whole_session_on_the_bundled_model(clean_dirs, qapp, capsys):
    work = clean_dirs / "work"
    assert main(["selftest", "--gui", "require", "--threads", "2", "--data-dir", str(work)]) == 0
    out = capsys.readouterr().out
    for step in (
        "policy ok",
        "create encrypted store ok",
        "load language model ok",
        "load emotion and risk analysis ok",
        "selftest: ready after",
        "one suggestion ok",
        "export (as policy allows) ok",
        "integrity check ok",
        "lock and reopen ok",
        "open and close the main window ok",
        "selftest: passed",
    ):
        assert step in out, step
    # What it left behind: an encrypted store with its key file, and one exported line.
    assert not (work / "selftest.db").read_bytes().startswith(b"SQLite format 3")
    assert (work / "selftest.db.keys").is_file()
    lines = (work / "export.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["decision"] == "accepted"


def test_selftest_command_and_every_option_have_help():
    from therapist_app.cli import build_parser

    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    selftest = subparsers.choices["selftest"]
    assert selftest.description
    for action in selftest._actions:
        assert action.help, action.option_strings
    version = next(a for a in parser._actions if "--version" in a.option_strings)
    assert "llama.cpp" in version.help
