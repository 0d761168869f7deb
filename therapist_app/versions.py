"""Versions of the app and of the native libraries it runs on, for `--version` and About.

Clinic IT and bug reports need the exact llama.cpp, SQLCipher and Qt builds, not just
the Python package versions, so each is asked of the loaded library itself. Every
probe is independent: a component that is missing or fails to load reads "not
available (...)" instead of hiding the others.
"""

from __future__ import annotations

import ctypes
import platform
import sys

from therapist_app import __version__

NOT_AVAILABLE = "not available"


def _c_string(lib: ctypes.CDLL, name: str) -> str:
    function = getattr(lib, name)
    function.restype = ctypes.c_char_p
    function.argtypes = []
    value = function()
    return value.decode("utf-8", "replace") if value else "?"


def _missing(error: BaseException) -> str:
    return f"{NOT_AVAILABLE} ({type(error).__name__})"


def llama_cpp_versions() -> dict[str, str]:
    """llama.cpp's own version, ggml's version and commit, and the Python binding's."""
    try:
        import llama_cpp
        from llama_cpp import _ggml
        from llama_cpp import llama_cpp as bindings
    except (ImportError, OSError) as error:
        return {"llama.cpp": _missing(error)}
    found = {}
    # Older builds export neither function; the binding's version still identifies them.
    try:
        found["llama.cpp"] = _c_string(bindings._lib, "llama_version")
    except AttributeError:
        pass
    try:
        version = _c_string(_ggml.libggml, "ggml_version")
        found["ggml"] = f"{version} (commit {_c_string(_ggml.libggml, 'ggml_commit')})"
    except AttributeError:
        pass
    found["llama-cpp-python"] = llama_cpp.__version__
    return found


def sqlcipher_versions() -> dict[str, str]:
    try:
        import sqlcipher3
    except ImportError as error:
        return {"SQLCipher": _missing(error)}
    # An in-memory, never-keyed database: asking cipher_version touches no file.
    conn = sqlcipher3.connect(":memory:")
    try:
        row = conn.execute("PRAGMA cipher_version").fetchone()
    finally:
        conn.close()
    cipher = row[0] if row and row[0] else "missing: this SQLite build has no encryption"
    return {"SQLCipher": cipher, "SQLite": sqlcipher3.sqlite_version}


def qt_versions() -> dict[str, str]:
    try:
        import PySide6
        from PySide6 import QtCore
    except ImportError as error:
        return {"Qt": _missing(error)}
    return {"Qt": QtCore.qVersion(), "PySide6": PySide6.__version__}


def component_versions() -> dict[str, str]:
    """Component name -> version, in the order the About box and `--version` list them."""
    build = "packaged build" if getattr(sys, "frozen", False) else "Python environment"
    return {
        "therapist-app": f"{__version__} ({build})",
        **llama_cpp_versions(),
        **sqlcipher_versions(),
        **qt_versions(),
        "Python": platform.python_version(),
        "Platform": f"{platform.system()} {platform.release()} {platform.machine()}",
    }


def version_text() -> str:
    return "\n".join(f"{name}: {version}" for name, version in component_versions().items())
