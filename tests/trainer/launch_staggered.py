"""`therapist-trainer` for `accelerate launch`, each rank starting RANK x 1.5 s late.

Ranks that named the run folder by their own clock would then name it differently;
test_run_layer launches GRPO and DPO through this to prove the name is shared.
"""

import os
import sys
import time

from trainer.cli import main

time.sleep(1.5 * int(os.environ.get("RANK", "0")))
sys.exit(main(sys.argv[1:]))
