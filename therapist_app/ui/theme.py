"""Colours that follow the system's light or dark palette."""

from __future__ import annotations

from PySide6.QtGui import QPalette


def is_dark(palette: QPalette) -> bool:
    return palette.color(QPalette.ColorRole.Window).lightness() < 128


def crisis_colors(palette: QPalette, acknowledged: bool) -> tuple[str, str]:
    """(background, foreground) for the crisis banner, readable on either palette."""
    if is_dark(palette):
        return ("#3a2a10", "#ffcc80") if acknowledged else ("#5c0b0b", "#ffd6d6")
    return ("#fff4e0", "#7a4a00") if acknowledged else ("#ffe5e5", "#8b0000")


def chip_colors(palette: QPalette) -> tuple[str, str]:
    return ("#23384f", "#d6e9ff") if is_dark(palette) else ("#e3f0ff", "#0b3a6b")
