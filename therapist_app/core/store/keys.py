"""The data key and the sidecar key file that holds it wrapped.

The database is keyed with a random 256-bit data key in raw hex form, so SQLCipher runs
no per-open KDF. That data key is never written in clear: the key file (`<db>.keys`,
JSON) holds it AES-256-GCM-wrapped by a key derived from the therapist's passphrase with
Argon2id and, optionally, wrapped a second time by a random key kept in the OS keychain.
The GCM associated data binds each wrap to the store id, the slot and the KDF settings,
so a key file cannot be edited to weaken the KDF or swapped between stores unnoticed.

A `pending` slot exists only while a rekey is under way: it lets the store open with
either key after a crash at any step (see `store.Store.rekey`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import secrets
import unicodedata
from dataclasses import asdict, dataclass, field
from pathlib import Path

from argon2.low_level import Type, hash_secret_raw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from therapist_app.core.store.errors import (
    InvalidInput,
    KeychainUnavailable,
    KeyFileDamaged,
    KeyFileMissing,
    PassphraseTooShort,
    WrongPassphrase,
)

log = logging.getLogger(__name__)

KEY_FILE_FORMAT = "therapist-app-keys/1"
KEYCHAIN_SERVICE = "therapist-assistant-store"
MIN_PASSPHRASE_CHARS = 8
DATA_KEY_BYTES = 32


@dataclass(frozen=True)
class KdfParams:
    """Argon2id cost. The defaults follow RFC 9106's second recommended option
    (64 MiB, 3 passes); tests pass `KdfParams.fast()` to stay quick."""

    time_cost: int = 3
    memory_kib: int = 64 * 1024
    parallelism: int = 4

    def __post_init__(self) -> None:
        if self.time_cost < 1:
            raise ValueError("time_cost must be at least 1")
        if self.parallelism < 1:
            raise ValueError("parallelism must be at least 1")
        if self.memory_kib < 8 * self.parallelism:
            raise ValueError("memory_kib must be at least 8 x parallelism (Argon2's minimum)")
        # Upper bounds: a key file is read before anything authenticates it, and must
        # not be able to make the app allocate or compute without limit.
        if self.memory_kib > 4 * 1024 * 1024 or self.time_cost > 64 or self.parallelism > 64:
            raise ValueError("KDF costs above 4 GiB, 64 passes or 64 lanes are refused")

    @classmethod
    def fast(cls) -> "KdfParams":
        """Cheapest legal cost: for tests and benchmarks only, never for real stores."""
        return cls(time_cost=1, memory_kib=8, parallelism=1)


def normalize_passphrase(passphrase: str) -> bytes:
    """NFKC-normalised UTF-8, so the NFC and NFD (or full-width) forms of one
    passphrase derive the same key. Only a minimum length is enforced."""
    if not isinstance(passphrase, str):
        raise TypeError("the passphrase must be a str")
    normalized = unicodedata.normalize("NFKC", passphrase)
    if len(normalized) < MIN_PASSPHRASE_CHARS:
        raise PassphraseTooShort(f"the passphrase must be at least {MIN_PASSPHRASE_CHARS} characters long")
    try:
        return normalized.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(
            "the passphrase holds a character that is not valid text (an "
            "unpaired surrogate, usually from a damaged paste); type it "
            "again"
        ) from None


def derive_kek(passphrase: str, salt: bytes, params: KdfParams) -> bytes:
    return hash_secret_raw(
        normalize_passphrase(passphrase),
        salt,
        time_cost=params.time_cost,
        memory_cost=params.memory_kib,
        parallelism=params.parallelism,
        hash_len=32,
        type=Type.ID,
    )


def new_data_key() -> bytearray:
    # A bytearray so `wipe` can overwrite it when the store locks.
    return bytearray(secrets.token_bytes(DATA_KEY_BYTES))


def wipe(buffer: bytearray | None) -> None:
    if buffer is not None:
        buffer[:] = bytes(len(buffer))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


@dataclass(frozen=True)
class Wrapped:
    nonce: str
    ciphertext: str


@dataclass(frozen=True)
class KeyFile:
    """The parsed sidecar. `wraps` maps slot ("passphrase", "keychain") to a wrap of
    the current key; `pending` holds wraps of a half-installed new key."""

    store_id: str
    salt: str
    kdf: KdfParams
    wraps: dict[str, Wrapped] = field(default_factory=dict)
    pending: dict[str, Wrapped] = field(default_factory=dict)

    def aad(self, slot: str) -> bytes:
        # Current and pending wraps share the AAD so a settled rekey can promote the
        # pending wrap as it is; which key the file uses is proved on the file itself.
        header = {
            "format": KEY_FILE_FORMAT,
            "store_id": self.store_id,
            "salt": self.salt,
            "kdf": asdict(self.kdf),
            "slot": slot,
        }
        return json.dumps(header, sort_keys=True).encode("utf-8")

    def to_json(self) -> str:
        def slots(table: dict[str, Wrapped]) -> dict:
            return {name: asdict(w) for name, w in table.items()}

        record = {
            "format": KEY_FILE_FORMAT,
            "store_id": self.store_id,
            "salt": self.salt,
            "kdf": asdict(self.kdf),
            "wraps": slots(self.wraps),
            "pending": slots(self.pending),
        }
        return json.dumps({**record, "checksum": _checksum(record)}, indent=2)

    @classmethod
    def parse(cls, text: str, path: Path) -> "KeyFile":
        try:
            record = json.loads(text)
            if record.get("format") != KEY_FILE_FORMAT:
                raise ValueError(f"unknown format {record.get('format')!r}")
            checksum = record.pop("checksum", None)
            # Files written before the checksum existed have none; any file that has
            # one must match it, so an edit reads as damage, not as a wrong passphrase.
            if checksum is not None and checksum != _checksum(record):
                raise KeyFileDamaged(
                    f"the key file {path} was edited or damaged since the app wrote it "
                    "(its checksum does not match), so no passphrase can open it. Restore "
                    "the key file from the same backup as the database."
                )
            kdf = KdfParams(**record["kdf"])
            return cls(
                store_id=str(record["store_id"]),
                salt=str(record["salt"]),
                kdf=kdf,
                wraps={k: Wrapped(**v) for k, v in record["wraps"].items()},
                pending={k: Wrapped(**v) for k, v in record.get("pending", {}).items()},
            )
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise KeyFileDamaged(
                f"the key file {path} is damaged ({type(error).__name__}); "
                "restore it from the same backup as the database"
            ) from None


def _checksum(record: dict) -> str:
    """SHA-256 of the key file's fields in canonical form. Not a secret and not a seal
    against an attacker (the GCM tags are that): it tells an edited file from a wrong
    passphrase."""
    canonical = json.dumps(record, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def key_file_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".keys")


def read_key_file(db_path: Path) -> KeyFile:
    path = key_file_path(db_path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise KeyFileMissing(
            f"the key file {path} is missing; without it {db_path.name} cannot be opened. "
            "Restore it from the same backup as the database."
        ) from None
    except IsADirectoryError:
        raise KeyFileDamaged(f"{path} is a folder, not a key file") from None
    # A key file is a few hundred bytes of JSON; refuse anything else before parsing.
    if len(data) > 64 * 1024:
        raise KeyFileDamaged(
            f"the key file {path} is not one the app wrote (too large); restore it from the same backup as the database"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise KeyFileDamaged(
            f"the key file {path} is damaged (not text); restore it from the same backup as the database"
        ) from None
    return KeyFile.parse(text, path)


def write_atomically(path: Path, data: bytes) -> None:
    """Write, fsync, rename over, fsync the folder: a crash leaves old or new, never half."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def fsync_dir(folder: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_key_file(db_path: Path, key_file: KeyFile) -> None:
    write_atomically(key_file_path(db_path), key_file.to_json().encode("utf-8"))


def wrap(wrapping_key: bytes, data_key: bytes, aad: bytes) -> Wrapped:
    nonce = secrets.token_bytes(12)
    return Wrapped(_b64(nonce), _b64(AESGCM(wrapping_key).encrypt(nonce, bytes(data_key), aad)))


def unwrap(wrapping_key: bytes, wrapped: Wrapped, aad: bytes) -> bytearray:
    try:
        plain = AESGCM(wrapping_key).decrypt(_unb64(wrapped.nonce), _unb64(wrapped.ciphertext), aad)
    except InvalidTag:
        raise WrongPassphrase("wrong passphrase") from None
    return bytearray(plain)


def new_store_id() -> str:
    return secrets.token_hex(16)


def seal(
    data_key: bytes,
    passphrase: str,
    kdf: KdfParams,
    *,
    store_id: str | None = None,
    keychain_kek: bytes | None = None,
    pending: bytes | None = None,
) -> KeyFile:
    """A new key file (fresh salt) wrapping `data_key`, and `pending` when a rekey is
    under way, under the passphrase and, when given, the keychain key."""
    key_file = KeyFile(store_id=store_id or new_store_id(), salt=_b64(secrets.token_bytes(16)), kdf=kdf)
    keks = {"passphrase": passphrase_kek(key_file, passphrase)}
    if keychain_kek is not None:
        keks["keychain"] = keychain_kek
    for slot, kek in keks.items():
        key_file.wraps[slot] = wrap(kek, data_key, key_file.aad(slot))
        if pending is not None:
            key_file.pending[slot] = wrap(kek, pending, key_file.aad(slot))
    return key_file


def promoted(key_file: KeyFile, generation: str) -> KeyFile:
    """The key file once a rekey is settled: `generation` ("current" or "pending")
    names the key the database turned out to use; the other is dropped."""
    wraps = key_file.pending if generation == "pending" else key_file.wraps
    return KeyFile(key_file.store_id, key_file.salt, key_file.kdf, dict(wraps), {})


def passphrase_kek(key_file: KeyFile, passphrase: str) -> bytes:
    return derive_kek(passphrase, _unb64(key_file.salt), key_file.kdf)


# ---- the OS keychain (optional) ------------------------------------------------------


def _keyring():
    # Imported on first use: keyring scans its backends' entry points at import time,
    # which most unlocks (passphrase only) never need.
    import keyring
    from keyring.errors import KeyringError

    return keyring, KeyringError


def keychain_kek(store_id: str, create: bool) -> bytes:
    """The random wrapping key this store keeps in the OS keychain.

    Raises KeychainUnavailable (with the reason) when there is no usable backend or no
    entry, so callers can fall back to the passphrase.
    """
    keyring, KeyringError = _keyring()
    try:
        stored = keyring.get_password(KEYCHAIN_SERVICE, store_id)
        if stored is None and create:
            stored = _b64(secrets.token_bytes(32))
            keyring.set_password(KEYCHAIN_SERVICE, store_id, stored)
    except KeyringError as error:
        raise KeychainUnavailable(
            f"the OS keychain is not available ({type(error).__name__}); "
            "the store will be unlocked with the passphrase only"
        ) from None
    if stored is None:
        raise KeychainUnavailable("this store has no entry in the OS keychain")
    return _unb64(stored)


def forget_keychain(store_id: str) -> None:
    keyring, KeyringError = _keyring()
    try:
        keyring.delete_password(KEYCHAIN_SERVICE, store_id)
    except KeyringError as error:
        log.warning("could not delete keychain entry for store %s: %s", store_id, type(error).__name__)


def unwrap_keys(key_file: KeyFile, kek: bytes, slot: str) -> list[tuple[str, bytearray]]:
    """The current key, then the pending one a crashed rekey may have left.

    Which of the two keys the database file uses is settled by trying it on the file.
    """
    if slot not in key_file.wraps:
        raise WrongPassphrase(f"this store has no {slot} key")
    keys = [("current", unwrap(kek, key_file.wraps[slot], key_file.aad(slot)))]
    if slot in key_file.pending:
        keys.append(("pending", unwrap(kek, key_file.pending[slot], key_file.aad(slot))))
    return keys
