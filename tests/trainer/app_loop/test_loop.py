"""`therapist-trainer loop` on a store a therapist filled through the app's own session
controller: every decision kind is made in the window, then one command exports, pairs,
trains DPO on the tiny model, exports a verified GGUF and registers it in that store."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.ui.conftest import PASSPHRASE, new_session, say, unlock
from therapist_app.core.model_manifest import verify_model
from therapist_app.core.store import Store
from therapist_app.core.store.keys import key_file_path
from trainer.cli import main

pytest.importorskip("trl")

pytestmark = pytest.mark.gui

EDITED = "It sounds like your manager has left you feeling stressed and anxious all week."
OWN = "What would a calmer week look like for you?"


def _fill_store(qtbot, make_window) -> Path:
    """Three rounds in the window: reject + accept (the third draft not chosen); an edit that
    changes its draft (the others not chosen); a rejection, then the therapist's own words."""
    h = make_window()
    window = h.window
    unlock(qtbot, window)
    new_session(qtbot, window)
    controller = window.controller
    say(qtbot, window, "Work has been overwhelming.")
    controller.reject(0)
    controller.accept(1)
    # New drafts from here on: a draft repeating what the therapist already said is not shown.
    h.script.replies = (
        "It sounds like the worry has kept you on edge all week.",
        "What does your manager expect of you at night?",
        "You kept going through all of that, which took real strength.",
    )
    say(qtbot, window, "Mostly my manager.")
    controller.edit(0, EDITED)
    say(qtbot, window, "He emails me at night too.")
    controller.reject(2)
    controller.own_reply(OWN)
    decisions = window.store.session_transcript(controller.session.id).decisions
    assert sorted(d.decision for d in decisions) == ["accepted", "edited", *["not_chosen"] * 5, "rejected", "rejected"]
    window.lock()  # the loop opens the store itself, as the CLI would
    return h.store_path


def _args(store: Path, tmp_path: Path, fd: str, model: Path, *more: str) -> list[str]:
    return [
        "loop",
        "--store",
        str(store),
        "--passphrase-fd",
        fd,
        "--model",
        str(model),
        "--system-policy",
        str(tmp_path / "no-system-policy.toml"),
        "--user-policy",
        str(tmp_path / "no-user-policy.toml"),
        "--output-dir",
        str(tmp_path / "loops"),
        "--emotion-classifier",
        "none",
        *more,
    ]


@pytest.mark.slow  # about 30 s on 2 cores: DPO, GGUF conversion and verification
def test_the_loop_turns_decisions_made_in_the_app_into_a_registered_model(
    qtbot, make_window, tiny_hf_model, tmp_path, fd, capsys
):
    store = _fill_store(qtbot, make_window)
    code = main(
        _args(
            store,
            tmp_path,
            fd(PASSPHRASE),
            tiny_hf_model,
            "--run-name",
            "week1",
            "--max-steps",
            "3",
            "--batch-size",
            "4",
            "--learning-rate",
            "0.01",
            "--num-threads",
            "2",
            "--max-length",
            "256",
            "--quantisation",
            "f16",
            "--allow-no-stop",
        )
    )
    out = capsys.readouterr().out
    assert code == 0, out
    folder = tmp_path / "loops" / "week1"
    record = json.loads((folder / "loop.json").read_text())
    stages = record["stages"]
    assert record["failed"] is None and list(stages) == ["export", "pairs", "dpo", "gguf", "register"]

    # Export: ten rows, one per decision and one for the own reply, none naming the client.
    assert stages["export"]["rows"] == 10
    rows = [json.loads(line) for line in (folder / "export.jsonl").read_text().splitlines()]
    assert sorted(r["decision"] for r in rows) == [
        "accepted",
        "edited",
        *["not_chosen"] * 5,
        "own",
        "rejected",
        "rejected",
    ]
    assert "C-017" not in (folder / "export.jsonl").read_text()

    # Pairs: a kept text over a turned-down draft only under that draft's directive, when it
    # carries out the same strategy. The accepted question is another move than the rejected
    # reflection and the unchosen affirmation (no pair); the edited reflection is paired
    # with its original reflection only; the own question with the unchosen question only.
    pairs = stages["pairs"]
    assert (pairs["rounds"], pairs["pairs"], pairs["rounds_without_kept"], pairs["off_directive"]) == (3, 2, 0, 6)
    assert pairs["decisions"] == {"accepted": 1, "edited": 1, "not_chosen": 5, "own": 1, "rejected": 2}
    written = [json.loads(line) for line in (folder / "pairs.jsonl").read_text().splitlines()]
    assert sorted((p["chosen"].split("<")[0], p["rejected"].split("<")[0]) for p in written) == [
        (EDITED, "It sounds like the worry has kept you on edge all week."),
        (OWN, "What does your manager expect of you at night?"),
    ]
    assert "Strategy: Reflection" in next(p["prompt"] for p in written if EDITED in p["chosen"])

    # DPO (+NLL) trained from the given model, in the loop folder, on exactly those pairs.
    dpo = stages["dpo"]
    assert dpo["global_step"] == 3 and dpo["app_pairs"] == 2 and dpo["simulated_pairs"] == 0
    assert dpo["logprob_margin_after"] > dpo["logprob_margin_before"]
    assert "nll_weight = 1.0" in (folder / "dpo" / "config.toml").read_text()

    # GGUF: verified against the trained model, and its manifest matches the file.
    gguf = Path(stages["gguf"]["file"])
    assert gguf.parent == folder / "gguf" and gguf.name == "loop-week1.f16.gguf"
    verified = verify_model(gguf)
    assert verified.manifest.sha256 == stages["gguf"]["sha256"] and verified.manifest.provenance.run_id == "dpo"
    assert stages["gguf"]["top1_agreement"] >= 0.99

    # Registered in the store the decisions came from.
    with Store.open(store, PASSPHRASE) as opened:
        models = opened.models()
    assert [(m.id, Path(m.path), m.sha256) for m in models] == [
        (stages["register"]["model_id"], gguf.resolve(), verified.manifest.sha256)
    ]
    for stage in ("export:", "pairs: 2 from 3 rounds", "dpo: 3 steps on 2 app", "gguf:", "register: model"):
        assert stage in out


def test_a_failing_stage_is_named_and_recorded(store_template, tiny_hf_model, tmp_path, fd, capsys):
    store = tmp_path / "store.db"
    shutil.copyfile(store_template, store)
    shutil.copyfile(key_file_path(store_template), key_file_path(store))
    code = main(_args(store, tmp_path, fd("not the passphrase"), tiny_hf_model, "--run-name", "wrong"))
    assert code != 0
    assert "error: the export stage failed:" in capsys.readouterr().err
    record = json.loads((tmp_path / "loops" / "wrong" / "loop.json").read_text())
    assert record["failed"] == "export" and list(record["stages"]) == ["export"]

    # A store with no decisions yet: the loop stops before pairing or training.
    code = main(_args(store, tmp_path, fd(PASSPHRASE), tiny_hf_model, "--run-name", "empty"))
    assert code == 2
    assert "error: the export stage failed:" in capsys.readouterr().err
    record = json.loads((tmp_path / "loops" / "empty" / "loop.json").read_text())
    assert record["failed"] == "export" and record["stages"]["export"]["rows"] == 0
    assert not (tmp_path / "loops" / "empty" / "dpo").exists()


def test_a_round_with_nothing_turned_down_gives_no_pair_and_stops_the_loop(tiny_hf_model, tmp_path, capsys):
    from therapist_app.core.dialogue_format import Example
    from trainer.data.records import write_jsonl

    export = tmp_path / "export.jsonl"
    write_jsonl(
        [
            Example(
                "I'm tired.",
                "That sounds draining.",
                conversation_id="c",
                decision="accepted",
                suggestion="That sounds draining.",
                source="app",
            )
        ],
        export,
    )
    code = main(
        [
            "loop",
            "--app-export",
            str(export),
            "--no-register",
            "--model",
            str(tiny_hf_model),
            "--output-dir",
            str(tmp_path / "loops"),
            "--run-name",
            "nothing",
        ]
    )
    assert code == 2
    assert "error: the pairs stage failed: 1 decisions in 1 rounds give no pair" in capsys.readouterr().err
    record = json.loads((tmp_path / "loops" / "nothing" / "loop.json").read_text())
    assert record["stages"]["export"]["skipped"] and record["failed"] == "pairs"
