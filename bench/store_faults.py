"""The store's fault campaign: kill -9 at every step of each operation, bit flips in the
write-ahead log and in the store's files, then open as the user would and judge.

    python bench/store_faults.py                 # every kill step, 20 flips of each kind
    python bench/store_faults.py --runs 100      # 100 flips of each kind
    python bench/store_faults.py --kill-spread 5 # every 5th kill step (quicker)

Ends with `RESULT faults=.. survived=.. lost=.. silent=..`: faults tried, faults after
which the user had every acknowledged change and either a working store or a specific
error to act on, acknowledged changes lost, and faults that went unnoticed (a store that
opens as healthy with data missing, or a user stranded between "missing" and "exists").
The checks are those of tests/core/store/test_faults.py, which runs a few of each in CI.
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.core.store import faults  # noqa: E402
from tests.core.store.helpers import PASSPHRASE  # noqa: E402
from therapist_app.core.store import KdfParams, Store  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="bit flips of each kind")
    parser.add_argument("--kill-spread", type=int, default=1, help="kill at every Nth step")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # the repairs log one line each; the tally says enough
    rng = random.Random(args.seed)
    outcomes: list[faults.Outcome] = []
    with tempfile.TemporaryDirectory() as scratch:
        base = Path(scratch)
        template = base / "template" / "store.db"
        template.parent.mkdir()
        Store.create(template, PASSPHRASE, KdfParams.fast()).close()
        counter = iter(range(10**9))

        def fresh() -> Path:
            folder = base / f"run{next(counter)}"
            folder.mkdir()
            return folder

        for operation in faults.OPERATIONS:
            steps = faults.count_steps(operation, fresh(), template)
            for kill_at in range(1, steps + 1, args.kill_spread):
                outcomes.append(faults.kill_run(operation, fresh(), template, kill_at))
            print(f"kill-{operation}: {steps} steps", flush=True)
        for _ in range(args.runs):
            outcomes.append(faults.wal_flip_run(fresh(), template, rng))
            outcomes.append(faults.damaged_file_run(fresh(), template, rng))
    by_kind = Counter(o.kind for o in outcomes)
    failed = [o for o in outcomes if not o.survived]
    for kind, count in sorted(by_kind.items()):
        bad = sum(o.kind == kind for o in failed)
        print(f"{kind:14s} {count:5d} tried  {count - bad:5d} survived")
    for outcome in failed[:20]:
        print(f"  FAILED {outcome.kind}: {outcome.detail}")
    print(
        f"RESULT faults={len(outcomes)} survived={len(outcomes) - len(failed)} "
        f"lost={sum(o.lost for o in outcomes)} silent={sum(o.silent for o in outcomes)}"
    )


if __name__ == "__main__":
    main()
