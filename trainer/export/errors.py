"""What an export can fail with, kept apart from the export code so the command line can
name these failures without loading llama.cpp."""

from __future__ import annotations


class ExportError(RuntimeError):
    """An export that cannot run; the message says what to change."""


class UnsupportedArchitecture(ExportError):
    pass


class TokenizerMissing(ExportError):
    pass


class InsufficientDiskSpace(ExportError):
    pass


class VerificationFailed(ExportError):
    """Files were written with manifests marking them failed; the app will refuse them."""

    exit_code = 1
