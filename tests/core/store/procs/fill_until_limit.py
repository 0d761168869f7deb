"""Open the store, cap this process's file size (RLIMIT_FSIZE) a little above the
current files, then write big transactions until the limit refuses one.

argv: store path, session id. Prints "<exception class>:<transactions committed>:<message>"
for the failure, after checking here that the failed transaction left nothing behind.
"""

import resource
import signal
import sys

from tests.core.store.helpers import PASSPHRASE
from therapist_app.core.store import StorageFailure, StorageFull, Store

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG instead of being killed
store = Store.open(sys.argv[1], PASSPHRASE)
session_id = int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_FSIZE, (2 * 1024 * 1024, resource.RLIM_INFINITY))
big = "x" * 200_000
for committed in range(200):
    count_before = len(store.session_transcript(session_id).utterances)
    try:
        with store.atomic():
            for _ in range(5):
                store.append_utterance(session_id, "client", big)
    except (StorageFull, StorageFailure) as error:
        after = len(store.session_transcript(session_id).utterances)
        assert after == count_before, (after, count_before)
        print(f"{type(error).__name__}:{committed}:{error}")
        break
else:
    sys.exit("the file size limit was never reached")
store.close()
