"""`therapist-app` headless commands, called through main([...])."""

from __future__ import annotations

import argparse

import pytest

from therapist_app.cli import build_parser, main


def _subparsers(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            yield from action.choices.items()


def _walk(parser, path=()):
    for name, sub in _subparsers(parser):
        yield path + (name,), sub
        yield from _walk(sub, path + (name,))


def test_every_command_and_option_has_help():
    parser = build_parser()
    commands = list(_walk(parser))
    assert {("suggest",), ("demo",)} <= {c for c, _ in commands}
    for path, sub in commands:
        assert sub.description or sub.format_usage(), path
        for action in sub._actions:
            if action.option_strings and action.dest != "help":
                assert action.help, f"{' '.join(path)} {action.option_strings} has no help"
    top_level = {a.dest: a for a in parser._actions}
    for choice in top_level["command"]._choices_actions:
        assert choice.help, f"{choice.dest} has no help"


def test_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert "therapist-app" in capsys.readouterr().out


def test_suggest_prints_emotion_and_strategy_tagged_suggestions(tiny_gguf, tmp_path, capsys):
    context = tmp_path / "context.txt"
    context.write_bytes("Therapist: What brings you in?\nClient: Work.\n".encode("utf-16"))
    code = main(
        [
            "suggest",
            "My boss shouts at me.",
            "--emotion",
            "anger",
            "--context-file",
            str(context),
            "-n",
            "2",
            "--model",
            str(tiny_gguf),
            "--max-tokens",
            "8",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "Emotion used: anger" in out
    # Two drafts shown, ranked: the emotion's first two strategies in the order of their scores.
    lines = [line.strip() for line in out.splitlines() if line.startswith("  ")]
    assert [line[:3] for line in lines] == ["1. ", "2. "]
    assert {line.split("]")[0][4:] for line in lines} == {"Reflection of feelings", "Restatement or Paraphrasing"}


@pytest.mark.parametrize(
    "content, message",
    [
        (b"\xff\xfe\x00\xd8", "not valid"),
        (b"just some words without speakers", "must start with 'Client:'"),
        (b"\xc3\x28 broken utf-8", "not valid UTF-8"),
    ],
)
def test_suggest_reports_bad_context_files(tiny_gguf, tmp_path, capsys, content, message):
    context = tmp_path / "context.txt"
    context.write_bytes(content)
    code = main(["suggest", "hello", "--context-file", str(context), "--model", str(tiny_gguf)])
    assert code == 2
    assert message in capsys.readouterr().err


def test_suggest_reports_a_bad_model_file(tmp_path, capsys):
    fake = tmp_path / "model.gguf"
    fake.write_text("not a model")
    assert main(["suggest", "hello", "--model", str(fake)]) == 2
    assert "not a GGUF model" in capsys.readouterr().err


def test_demo_plays_the_script_with_timings(tiny_gguf, capsys):
    assert main(["demo", "--model", str(tiny_gguf), "--max-tokens", "6"]) == 0
    out = capsys.readouterr().out
    assert out.count("turn ") >= 4 and "first token" in out and "already in the cache" in out


def test_no_display_runs_the_demo(monkeypatch, tiny_gguf, capsys):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    import therapist_app.cli.suggest as suggest

    original = suggest._engine

    def tiny_engine(args):
        args.model, args.max_tokens = tiny_gguf, 6
        return original(args)

    monkeypatch.setattr(suggest, "_engine", tiny_engine)
    assert main([]) == 0
    assert "No display found" in capsys.readouterr().out


@pytest.mark.slow
def test_suggest_detects_emotion_and_warns_on_crisis_language(tiny_gguf, capsys):
    code = main(
        [
            "suggest",
            "Honestly everyone would be better off without me.",
            "-n",
            "1",
            "--model",
            str(tiny_gguf),
            "--max-tokens",
            "6",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert out.index("CRISIS LANGUAGE (suicide_selfharm") < out.index("1. [")
    assert "better off without me" in out
    assert "(detected," in out and "runner-up" in out
