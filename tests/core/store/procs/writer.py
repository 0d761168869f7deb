"""Commit numbered transactions forever, printing each id once its COMMIT returned.

argv: store path, session id, first number. The test SIGKILLs this process.
"""

import sys

from tests.core.store.helpers import PASSPHRASE
from therapist_app.core.store import Store

store = Store.open(sys.argv[1], PASSPHRASE)
session_id, number = int(sys.argv[2]), int(sys.argv[3])
print("ready", flush=True)
while True:
    with store.atomic():
        said = store.append_utterance(session_id, "client", f"commit {number}")
        store.add_suggestion(said.id, "m", None, f"reply {number}", 1.0)
    print(number, flush=True)
    number += 1
