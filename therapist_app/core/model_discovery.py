"""Models the user already has: GGUF files other local-model apps downloaded.

One model folder shared by every app saves tens of gigabytes, so the model manager and
`therapist-app models found` offer what LM Studio, Ollama, GPT4All and Jan keep in
their usual folders, plus any folder the user names. A found file is used where it
lies; it is copied into the app's own models folder only when the user asks.

Finding a file trusts nothing about it: a candidate counts only when its first four
bytes are the GGUF magic, and before the store records one it goes through the same
checks as a file added by hand (`inspect_model`: header, a llama.cpp load, SHA-256)
and the clinic policy's allow-list. Scanning reads directory entries and four bytes
per candidate, follows symbolic links (people link one model folder into several
apps) but never the same directory twice, so a link loop ends the walk instead of
looping; depth and entry count are bounded so naming a huge folder stays quick.

Each source app has one function taking `Places` (the home folder, environment,
platform and filesystem root to look in; injectable for tests), and `discover`
combines them.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence

import platformdirs

from therapist_app.core.model_file import (
    GGUF_MAGIC,
    ModelFileError,
    check_model_loads,
    read_gguf_header,
    sha256_file,
)
from therapist_app.core.model_manifest import manifest_path_for, verify_model
from therapist_app.core.policy import APP_NAME

log = logging.getLogger(__name__)

LM_STUDIO = "LM Studio"
OLLAMA = "Ollama"
GPT4ALL = "GPT4All"
JAN = "Jan"
FOLDER = "Folder"
"""The source of a model found in a folder the user named."""

OLLAMA_MODEL_LAYER = "application/vnd.ollama.image.model"
# Bounds that keep a scan quick whatever folder it is pointed at: model apps nest their
# files two to four folders deep.
MAX_DEPTH = 6
MAX_ENTRIES = 50_000
MAX_SETTINGS_BYTES = 1 << 20
_DIGEST = re.compile(r"sha256[:-]([0-9a-f]{64})")
# Parts of a split model: the app checks and hashes one file per model, so a model
# that llama.cpp would assemble from several files is not offered.
_SPLIT_PART = re.compile(r"-\d{5}-of-\d{5}\.gguf$", re.IGNORECASE)
# Vision projectors (LM Studio and Jan keep them beside the language model) are GGUF
# files but not models the app can run.
_PROJECTOR = re.compile(r"^mmproj", re.IGNORECASE)
# A file name Jan gives every model: its folder names the model instead.
_GENERIC_NAMES = {"model.gguf"}


@dataclass(frozen=True)
class FoundModel:
    source: str
    """The app whose folder holds it (LM_STUDIO, OLLAMA, GPT4ALL, JAN or FOLDER)."""
    name: str
    """Readable: Ollama's model:tag, Jan's model folder (its files are all called
    model.gguf), else the file name."""
    path: Path
    size_bytes: int
    expected_sha256: str | None = None
    """Ollama names each blob by its SHA-256; the check after hashing compares them."""


@dataclass(frozen=True)
class Places:
    """Where to look: the user's home, the environment, the platform (`sys.platform`
    values) and the root under which system-wide folders lie."""

    home: Path
    env: Mapping[str, str] = field(default_factory=dict)
    platform: str = sys.platform
    root: Path = Path("/")

    @classmethod
    def current(cls) -> "Places":
        return cls(Path.home(), dict(os.environ), sys.platform)

    def folder(self, variable: str, default: Path) -> Path:
        """An environment folder such as XDG_DATA_HOME or LOCALAPPDATA, else `default`."""
        value = self.env.get(variable, "").strip()
        return Path(value) if value else default

    @property
    def app_data(self) -> Path:
        """Per-user application data: ~/.local/share, ~/Library/Application Support or
        %LOCALAPPDATA%."""
        if self.platform == "win32":
            return self.folder("LOCALAPPDATA", self.home / "AppData" / "Local")
        if self.platform == "darwin":
            return self.home / "Library" / "Application Support"
        return self.folder("XDG_DATA_HOME", self.home / ".local" / "share")

    @property
    def app_config(self) -> Path:
        """Where Electron and Tauri apps keep their settings: ~/.config,
        ~/Library/Application Support or %APPDATA%."""
        if self.platform == "win32":
            return self.folder("APPDATA", self.home / "AppData" / "Roaming")
        if self.platform == "darwin":
            return self.home / "Library" / "Application Support"
        return self.folder("XDG_CONFIG_HOME", self.home / ".config")


def format_size(size_bytes: int) -> str:
    """
    >>> format_size(4_920_000_000), format_size(812_400_000), format_size(70_000)
    ('4.9 GB', '812 MB', '0.07 MB')
    """
    if size_bytes >= 1e9:
        return f"{size_bytes / 1e9:.1f} GB"
    if size_bytes >= 1e6:
        return f"{size_bytes / 1e6:.0f} MB"
    return f"{size_bytes / 1e6:.2f} MB"


# ---- walking folders ------------------------------------------------------------------


def is_gguf(path: Path) -> bool:
    """Whether `path` is a readable file that starts with the GGUF magic."""
    try:
        with path.open("rb") as f:
            return f.read(len(GGUF_MAGIC)) == GGUF_MAGIC
    except OSError:
        return False


def _gguf_candidates(folder: Path) -> Iterator[Path]:
    """Files named *.gguf under `folder`: symbolic links followed, each directory
    entered once (by device and inode), hidden entries skipped (partial downloads and
    the apps' own bookkeeping), depth and entry count bounded."""
    seen: set[tuple[int, int]] = set()
    stack = [(folder, 0)]
    entries = 0
    while stack:
        directory, depth = stack.pop()
        try:
            info = directory.stat()
            if (info.st_dev, info.st_ino) in seen:
                continue
            seen.add((info.st_dev, info.st_ino))
            with os.scandir(directory) as listing:
                children = list(listing)
        except OSError:
            continue
        for child in children:
            entries += 1
            if entries > MAX_ENTRIES:
                log.warning("model scan stopped after %d entries", MAX_ENTRIES)
                return
            if child.name.startswith("."):
                continue
            try:
                if child.is_dir():
                    if depth < MAX_DEPTH:
                        stack.append((Path(child.path), depth + 1))
                elif child.is_file() and child.name.lower().endswith(".gguf"):
                    yield Path(child.path)
            except OSError:  # a link to itself, a vanished or unreadable entry
                continue


def _offered(path: Path) -> bool:
    return not (_SPLIT_PART.search(path.name) or _PROJECTOR.match(path.name)) and is_gguf(path)


def _found(source: str, path: Path, name: str, expected_sha256: str | None = None) -> FoundModel | None:
    try:
        size = path.stat().st_size
    except OSError:
        return None
    return FoundModel(source, name, path, size, expected_sha256)


def scan_folder(folder: Path, source: str = FOLDER) -> list[FoundModel]:
    """The GGUF models under `folder` (none when it is missing or unreadable)."""
    found = []
    for path in _gguf_candidates(Path(folder)):
        if not _offered(path):
            continue
        name = path.parent.name if path.name.lower() in _GENERIC_NAMES else path.name
        model = _found(source, path, name)
        if model is not None:
            found.append(model)
    return found


def _unique(folders: Iterable[Path]) -> list[Path]:
    kept, seen = [], set()
    for folder in folders:
        key = os.path.normcase(os.path.abspath(folder))
        if key not in seen:
            seen.add(key)
            kept.append(folder)
    return kept


def _json_setting(path: Path, key: str) -> Path | None:
    """A folder named by `key` in an app's JSON settings file, if there is one."""
    try:
        if path.stat().st_size > MAX_SETTINGS_BYTES:
            return None
        value = json.loads(path.read_text(encoding="utf-8")).get(key)
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        return None
    return Path(value) if isinstance(value, str) and value.strip() else None


# ---- the source apps ------------------------------------------------------------------


def lm_studio_folders(places: Places) -> list[Path]:
    """LM Studio's models folders: the downloads folder its settings name first, then
    `models` in its home (~/.lmstudio; ~/.cache/lm-studio before 0.3; wherever
    ~/.lmstudio-home-pointer says)."""
    homes = [places.home / ".lmstudio", places.home / ".cache" / "lm-studio"]
    try:
        pointed = (places.home / ".lmstudio-home-pointer").read_text(encoding="utf-8").strip()
        if pointed:
            homes.insert(0, Path(pointed.splitlines()[0]))
    except (OSError, UnicodeDecodeError):
        pass
    settings = [home / "settings.json" for home in homes] + [places.app_config / "LM Studio" / "settings.json"]
    configured = [folder for folder in (_json_setting(s, "downloadsFolder") for s in settings) if folder]
    return _unique(configured + [home / "models" for home in homes])


def lm_studio(places: Places) -> list[FoundModel]:
    return [m for folder in lm_studio_folders(places) for m in scan_folder(folder, LM_STUDIO)]


def ollama_folders(places: Places) -> list[Path]:
    """Ollama's model stores: $OLLAMA_MODELS or ~/.ollama/models, and on Linux the
    system service's /usr/share/ollama/.ollama/models."""
    folders = [places.folder("OLLAMA_MODELS", places.home / ".ollama" / "models")]
    if places.platform.startswith("linux"):
        folders.append(places.root / "usr" / "share" / "ollama" / ".ollama" / "models")
    return _unique(folders)


def _ollama_name(host: str, namespace: str, model: str, tag: str) -> str:
    """What `ollama list` shows.

    >>> _ollama_name("registry.ollama.ai", "library", "llama3.2", "3b")
    'llama3.2:3b'
    >>> _ollama_name("hf.co", "bartowski", "Phi-3.5-mini-instruct-GGUF", "Q4_K_M")
    'hf.co/bartowski/Phi-3.5-mini-instruct-GGUF:Q4_K_M'
    """
    if host == "registry.ollama.ai":
        return f"{model}:{tag}" if namespace == "library" else f"{namespace}/{model}:{tag}"
    return f"{host}/{namespace}/{model}:{tag}"


def _ollama_blob(root: Path, manifest: Path) -> tuple[Path, str] | None:
    """The model layer's blob and its SHA-256, from one manifest."""
    try:
        if manifest.stat().st_size > MAX_SETTINGS_BYTES:
            return None
        layers = json.loads(manifest.read_text(encoding="utf-8")).get("layers", [])
        digests = [
            layer.get("digest", "")
            for layer in layers
            if isinstance(layer, dict) and layer.get("mediaType") == OLLAMA_MODEL_LAYER
        ]
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        return None
    # The pattern also keeps a hostile digest from naming a path outside the store.
    match = _DIGEST.fullmatch(digests[0]) if digests and isinstance(digests[0], str) else None
    if match is None:
        return None
    hex_digest = match.group(1)
    for blob in (root / "blobs" / f"sha256-{hex_digest}", root / "blobs" / f"sha256:{hex_digest}"):
        if blob.is_file():
            return blob, hex_digest
    return None


def ollama(places: Places) -> list[FoundModel]:
    """Each tag Ollama pulled: manifests/<host>/<namespace>/<model>/<tag> names the
    model layer's digest, whose blob (GGUF without an extension) is blobs/sha256-<hex>."""
    found = []
    for root in ollama_folders(places):
        manifests = root / "manifests"
        try:
            hosts = sorted(manifests.iterdir())
        except OSError:
            continue
        for manifest in (m for host in hosts for m in sorted(host.glob("*/*/*"))):
            blob = _ollama_blob(root, manifest)
            if blob is None or not is_gguf(blob[0]):
                continue
            name = _ollama_name(*manifest.relative_to(manifests).parts)
            model = _found(OLLAMA, blob[0], name, blob[1])
            if model is not None:
                found.append(model)
    return found


def gpt4all_folders(places: Places) -> list[Path]:
    """GPT4All's download folder: ~/.local/share/nomic.ai/GPT4All,
    ~/Library/Application Support/nomic.ai/GPT4All or %LOCALAPPDATA%\\nomic.ai\\GPT4All."""
    return [places.app_data / "nomic.ai" / "GPT4All"]


def gpt4all(places: Places) -> list[FoundModel]:
    return [m for folder in gpt4all_folders(places) for m in scan_folder(folder, GPT4ALL)]


def jan_folders(places: Places) -> list[Path]:
    """Jan's models: under its data folder (the one its settings.json names, else
    Jan/data in the per-user app folder: ~/.local/share, ~/Library/Application Support,
    %APPDATA%), `llamacpp/models` (0.6 on) and `models` (0.5), and ~/jan/models
    (0.4)."""
    app_folder = (places.app_config if places.platform == "win32" else places.app_data) / "Jan"
    data = [_json_setting(app_folder / "settings.json", "data_folder"), app_folder / "data"]
    data_folders = _unique(folder for folder in data if folder)
    return _unique(
        [d / "llamacpp" / "models" for d in data_folders]
        + [d / "models" for d in data_folders]
        + [places.home / "jan" / "models"]
    )


def jan(places: Places) -> list[FoundModel]:
    return [m for folder in jan_folders(places) for m in scan_folder(folder, JAN)]


SOURCES = ((LM_STUDIO, lm_studio), (OLLAMA, ollama), (GPT4ALL, gpt4all), (JAN, jan))


def searched_folders(places: Places, extra_folders: Sequence[str | Path] = ()) -> list[tuple[str, Path]]:
    """(source, folder) for every folder `discover` looks in, for messages and docs."""
    return (
        [(LM_STUDIO, f) for f in lm_studio_folders(places)]
        + [(OLLAMA, f) for f in ollama_folders(places)]
        + [(GPT4ALL, f) for f in gpt4all_folders(places)]
        + [(JAN, f) for f in jan_folders(places)]
        + [(FOLDER, Path(f)) for f in extra_folders]
    )


def discover(
    home: Path | None = None,
    env: Mapping[str, str] | None = None,
    extra_folders: Sequence[str | Path] = (),
    *,
    platform: str | None = None,
    root: Path | None = None,
) -> list[FoundModel]:
    """Every GGUF model found on this computer, each file once (the first source to
    find it names it), ordered by source then name. Defaults: the current user's home,
    environment and platform."""
    current = Places.current()
    places = Places(
        home or current.home, current.env if env is None else env, platform or current.platform, root or current.root
    )
    models = [m for _, source in SOURCES for m in source(places)]
    models += [m for folder in extra_folders for m in scan_folder(Path(folder).expanduser())]
    kept, seen = [], set()
    for model in models:
        key = os.path.normcase(os.path.realpath(model.path))
        if key not in seen:
            seen.add(key)
            kept.append(model)
    order = {name: i for i, name in enumerate([s for s, _ in SOURCES] + [FOLDER])}
    return sorted(kept, key=lambda m: (order[m.source], m.name.lower(), str(m.path)))


# ---- checking and copying ---------------------------------------------------------------


@dataclass(frozen=True)
class InspectedModel:
    path: Path
    sha256: str
    size_bytes: int
    has_manifest: bool
    """A manifest from `therapist-trainer export` was found and the file matches it."""


def inspect_model(path: Path, expected_sha256: str | None = None) -> InspectedModel:
    """Header, a llama.cpp load and SHA-256 of a GGUF, and its export manifest when one
    lies beside it (a mismatch is refused); `expected_sha256` (an Ollama digest) must
    match too. Blocking: run it on a worker."""
    path = Path(path)
    header = read_gguf_header(path)
    check_model_loads(path)
    if manifest_path_for(path).exists():
        verified = verify_model(path)
        inspected = InspectedModel(path, verified.manifest.sha256, header.size_bytes, True)
    else:
        inspected = InspectedModel(path, sha256_file(path), header.size_bytes, False)
    if expected_sha256 is not None and inspected.sha256 != expected_sha256:
        raise ModelFileError(
            f"{path.name} does not match the SHA-256 its app recorded: the file is damaged or "
            "was changed; download the model again in that app"
        )
    return inspected


def app_models_dir() -> Path:
    """The app's own models folder, where a found model is copied when asked."""
    return platformdirs.user_data_path(APP_NAME) / "models"


def copy_name(model: FoundModel) -> str:
    """A file name for a copy: the readable name, made safe, ending in .gguf.

    >>> copy_name(FoundModel(OLLAMA, "hf.co/bartowski/Phi-3.5:Q4_K_M", Path("b"), 1))
    'hf.co-bartowski-Phi-3.5-Q4_K_M.gguf'
    """
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", model.name).strip(".-") or "model"
    return stem if stem.lower().endswith(".gguf") else f"{stem}.gguf"


def _free_names(folder: Path, name: str) -> Iterator[Path]:
    yield folder / name
    for counter in range(2, 1000):
        yield folder / f"{Path(name).stem}-{counter}.gguf"


def copy_into(model: FoundModel, folder: Path) -> Path:
    """Copy a found model into `folder` and return the copy's path. A file already there
    is never written over (the copy takes a free name), and a failed copy (a full disk)
    leaves nothing behind. Blocking: run it on a worker."""
    folder.mkdir(parents=True, exist_ok=True)
    handle, partial_name = tempfile.mkstemp(prefix=".", suffix=".partial", dir=folder)
    partial = Path(partial_name)
    try:
        with model.path.open("rb") as source, os.fdopen(handle, "wb") as target:
            shutil.copyfileobj(source, target, 1 << 20)
        for candidate in _free_names(folder, copy_name(model)):
            try:
                os.link(partial, candidate)  # publishes the copy, never over a file
                break
            except FileExistsError:
                continue
            except OSError:  # a filesystem without hard links (FAT, some shares)
                if not candidate.exists():
                    os.replace(partial, candidate)
                    break
        else:
            raise ModelFileError(f"no free file name for {copy_name(model)} in {folder}")
    finally:
        partial.unlink(missing_ok=True)
    log.info("model copied into the app's folder (%d bytes)", model.size_bytes)
    return candidate


def copy_and_inspect(model: FoundModel, folder: Path) -> InspectedModel:
    """Copy, then check the copy (the file the app will load); a copy that fails the
    checks is removed."""
    copy = copy_into(model, folder)
    try:
        return inspect_model(copy, model.expected_sha256)
    except BaseException:
        copy.unlink(missing_ok=True)
        raise
