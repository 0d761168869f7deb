"""Local, privacy-first reply assistant for therapists."""

__version__ = "0.1.0"
