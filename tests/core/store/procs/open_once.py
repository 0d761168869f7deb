"""Open the store at argv[1] with the passphrase on stdin; report how it went."""

import sys

from therapist_app.core.store import DatabaseInUse, Store

try:
    Store.open(sys.argv[1], sys.stdin.readline().rstrip("\n")).close()
except DatabaseInUse:
    print("DatabaseInUse")
    sys.exit(3)
print("opened")
