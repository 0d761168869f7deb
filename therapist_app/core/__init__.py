"""The app's core: no Qt and no torch (an import-linter contract and a test enforce it)."""
