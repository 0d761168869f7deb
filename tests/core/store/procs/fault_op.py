"""Run one store operation and SIGKILL this process at its k-th step.

argv: folder, operation, k (0: never; the run then prints how many steps it took).
A step is one call that changes what is on disk or in the database: a SQL statement,
a rename, an fsync, an unlink, a write. Each call counts twice, once just before and
once just after, so a kill lands both before a step takes effect and after it did.
Every operation prints "ok" lines as it goes (flushed), so the parent knows what was
acknowledged to the user before the kill.
"""

import os
import signal
import sys
from pathlib import Path

import sqlcipher3

from tests.core.store.helpers import PASSPHRASE
from therapist_app.core.store import KdfParams, Store, restore

folder, operation, kill_at = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
steps = 0


def step() -> None:
    global steps
    steps += 1
    if steps == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)


def counted(function):
    def wrapper(*args, **kwargs):
        step()
        result = function(*args, **kwargs)
        step()
        return result

    return wrapper


class CountingConnection(sqlcipher3.Connection):
    def execute(self, *args, **kwargs):
        step()
        cursor = super().execute(*args, **kwargs)
        step()
        return cursor


_connect = sqlcipher3.connect
sqlcipher3.connect = lambda *args, **kwargs: _connect(*args, factory=CountingConnection, **kwargs)
for name in ("replace", "fsync", "unlink", "write", "truncate"):
    setattr(os, name, counted(getattr(os, name)))
Path.unlink = counted(Path.unlink)

store_path = folder / "store.db"
if operation == "create":
    Store.create(store_path, PASSPHRASE, KdfParams.fast()).close()
    print("ok created", flush=True)
elif operation == "commit":
    with Store.open(store_path, PASSPHRASE) as store:
        session_id = store.sessions(store.list_clients()[0].id)[0].id
        for number in range(20):
            store.append_utterance(session_id, "client", f"commit {number}")
            print(f"ok {number}", flush=True)
elif operation == "rekey":
    with Store.open(store_path, PASSPHRASE) as store:
        store.rekey(PASSPHRASE)
    print("ok rekeyed", flush=True)
elif operation == "backup":
    with Store.open(store_path, PASSPHRASE) as store:
        store.backup(folder / "bk.db", PASSPHRASE)
    print("ok backup", flush=True)
elif operation == "restore":
    restore(folder / "bk.db", PASSPHRASE, store_path, replace=True).close()
    print("ok restored", flush=True)
elif operation == "erase":
    with Store.open(store_path, PASSPHRASE) as store:
        client = next(c for c in store.list_clients() if c.code == "C-ERASE")
        store.erase_client(client.id)
    print("ok erased", flush=True)
else:
    raise SystemExit(f"unknown operation {operation}")
if kill_at == 0:
    print(f"steps {steps}", flush=True)
