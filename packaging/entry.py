"""The packaged app's entry script: the same `therapist-app` command as a pip install."""

import sys

from therapist_app.cli import main

if __name__ == "__main__":
    sys.exit(main())
