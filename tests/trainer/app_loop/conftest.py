"""The GUI harness (a real encrypted store, the real window and session controller, the
fake engine) for the loop tests, which fill a store the way a therapist does."""

from tests.ui.conftest import make_window, store_template  # noqa: F401  (fixtures for this folder)
