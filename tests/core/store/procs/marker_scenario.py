"""Write a marker through every API that stores text, with all logging at DEBUG on
stderr, and copy the live database, -wal and -shm aside while the store is open.

argv: folder marker. TMPDIR/SQLITE_TMPDIR are set by the test to a folder it scans.
"""

import logging
import shutil
import sys
from pathlib import Path

from tests.core.store.helpers import PASSPHRASE, fill
from therapist_app.core.store import KdfParams, Store

logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
folder, marker = Path(sys.argv[1]), sys.argv[2]
live = folder / "live"
live.mkdir()
with Store.create(folder / "store.db", PASSPHRASE, KdfParams.fast()) as store:
    ids = fill(store, marker)
    store.get_client(ids["client"])
    store.session_transcript(ids["session"])
    for name in ("store.db", "store.db-wal", "store.db-shm"):
        shutil.copyfile(folder / name, live / name)
    print("wal bytes", (live / "store.db-wal").stat().st_size)
    store.compact()
    store.backup(folder / "backup.db", PASSPHRASE)
    assert store.integrity_check().ok
    store.rekey(PASSPHRASE)
    print("search", [c.id for c in store.search_clients(marker)])
print("done")
