"""Where the product's shipped data files live, in a checkout and in a packaged build."""

from __future__ import annotations

import sys
from pathlib import Path


def assets_dir() -> Path:
    """The `assets/` folder: beside the package in a checkout or editable install,
    under PyInstaller's unpack folder in a packaged build."""
    frozen_root = getattr(sys, "_MEIPASS", None)
    candidates = [Path(frozen_root) / "assets"] if frozen_root else []
    candidates.append(Path(__file__).resolve().parents[2] / "assets")
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("the assets folder is missing: looked in " + ", ".join(str(c) for c in candidates))


def asset_path(name: str) -> Path:
    path = assets_dir() / name
    if not path.exists():
        raise FileNotFoundError(f"asset {name!r} is missing from {assets_dir()}")
    return path
