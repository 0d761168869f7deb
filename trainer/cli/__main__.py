"""`python -m trainer.cli`: the `therapist-trainer` command, for `accelerate launch -m trainer.cli`."""

import sys

from trainer.cli import main

sys.exit(main())
