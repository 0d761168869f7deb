"""The app never touches the network: a full headless session opens no network socket.

The session runs in a child process (`therapist-app selftest`: clinic policy, encrypted
store, emotion and risk analysis, one suggestion on the bundled model, the decision
recorded, export, integrity check, lock, reopen, and the main window offscreen). Before
anything of the app is imported the child installs an audit hook (`sys.addaudithook`)
that records every `socket.*` event and refuses the network ones: a socket of any
family but AF_UNIX, a connect/bind/send on one, and every name lookup. AF_UNIX sockets
are local inter-process channels (Qt and D-Bus use them on Linux); they are recorded
and allowed.

Audit hooks see what Python code does. Native code (llama.cpp, Qt) calling the C
library directly is covered by packaging/smoke.py, which runs the packaged self-test
under strace and fails on any AF_INET/AF_INET6 socket or connect.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

CHILD = r"""
import json, socket, sys

LOOKUPS = {"socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex",
           "socket.gethostbyaddr", "socket.getnameinfo"}
ON_SOCKET = {"socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg"}
events = []

def hook(event, args):
    if not event.startswith("socket."):
        return
    family = None
    if event == "socket.__new__":
        family = args[1]
    elif event in ON_SOCKET:
        family = args[0].family
    network = event in LOOKUPS or (family is not None and family != socket.AF_UNIX)
    events.append({"event": event, "family": None if family is None else int(family),
                   "network": network})
    if network:
        raise PermissionError(f"network access refused by the test ({event})")

sys.addaudithook(hook)
code = 0
try:
    exec(compile(sys.argv[2], "<session>", "exec"), {"__name__": "__session__"})
except SystemExit as stop:
    code = stop.code if isinstance(stop.code, int) else 1
finally:
    with open(sys.argv[1], "w", encoding="utf-8") as out:
        json.dump({"events": events, "af_unix": int(socket.AF_UNIX)}, out)
sys.exit(code)
"""


def run_guarded(body: str, tmp_path: Path, timeout: float) -> tuple[subprocess.CompletedProcess, dict]:
    """Run `body` in a child Python under the socket audit hook; return its result and
    the recorded events."""
    home = tmp_path / "home"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HF_", "TRANSFORMERS_", "XDG_")) and k not in ("DISPLAY", "WAYLAND_DISPLAY")
    }
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(home / ".local/share"),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_CONFIG_DIRS=str(tmp_path / "etc-xdg"),
        QT_QPA_PLATFORM="offscreen",
    )
    home.mkdir()
    report = tmp_path / "socket-events.json"
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(report), body],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return result, json.loads(report.read_text(encoding="utf-8"))


def test_the_guard_sees_and_refuses_network_use(tmp_path):
    """The detector can fail: internet sockets and a name lookup are recorded and
    refused, a local socket pair is allowed."""
    body = (
        "import socket\n"
        "a, b = socket.socketpair(socket.AF_UNIX)\n"
        "a.close(); b.close()\n"
        "for attempt in (lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM),\n"
        "                lambda: socket.socket(socket.AF_INET6, socket.SOCK_DGRAM),\n"
        "                lambda: socket.getaddrinfo('localhost', 80)):\n"
        "    try:\n"
        "        attempt()\n"
        "    except PermissionError:\n"
        "        continue\n"
        "    raise SystemExit(3)\n"
    )
    result, report = run_guarded(body, tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr
    refused = [(e["event"], e["family"]) for e in report["events"] if e["network"]]
    assert refused == [
        ("socket.__new__", int(socket.AF_INET)),
        ("socket.__new__", int(socket.AF_INET6)),
        ("socket.getaddrinfo", None),
    ]
    allowed = [e for e in report["events"] if not e["network"]]
    assert allowed and all(e["family"] in (None, int(socket.AF_UNIX)) for e in allowed)


@pytest.mark.slow
def test_a_full_session_opens_no_network_socket(tmp_path):
    body = (
        "from therapist_app.cli import main\nraise SystemExit(main(['selftest', '--gui', 'auto', '--threads', '2']))\n"
    )
    result, report = run_guarded(body, tmp_path, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    for step in (
        "create encrypted store ok",
        "one suggestion ok",
        "export (as policy allows) ok",
        "1 de-identified decision written",
        "lock and reopen ok",
        "selftest: passed",
    ):
        assert step in result.stdout
    network = [e for e in report["events"] if e["network"]]
    assert network == [], f"network use during a session: {network}"
