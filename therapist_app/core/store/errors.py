"""Exceptions the store raises. Messages name files and ids, never client text or keys."""

from __future__ import annotations


class StoreError(Exception):
    """Base class for every error the encrypted store reports."""


class WrongPassphrase(StoreError):
    """The passphrase (or keychain entry) does not unwrap this store's key."""


class PassphraseTooShort(StoreError, ValueError):
    """A new passphrase is shorter than the minimum length."""


class KeyFileMissing(StoreError):
    """The sidecar that holds the wrapped key is absent: the database cannot be opened."""


class KeyFileDamaged(StoreError):
    """The key file is unreadable, or was edited since the app wrote it: its checksum
    no longer matches. Restore it from the same backup as the database."""


class WalDamaged(StoreError):
    """The write-ahead log holds intact commits after a damaged frame: opening would
    silently drop them. Nothing was changed; the message says how to recover."""


class InvalidInput(StoreError, ValueError):
    """A value given to the store is of the wrong type or cannot be stored as text
    (bytes, None, an unpaired surrogate...). Nothing was saved."""


class KeychainUnavailable(StoreError):
    """No usable OS keychain backend; the store falls back to the passphrase alone."""


class DatabaseCorrupt(StoreError):
    """The database file failed an integrity or authentication check and was not touched."""


class NotEncrypted(StoreError):
    """The file is a plaintext SQLite database: refused rather than read or overwritten."""


class DatabaseInUse(StoreError):
    """Another process (a second app instance) has this store unlocked."""


class StoreExists(StoreError):
    """Refusing to create or restore over an existing store."""


class StoreLocked(StoreError):
    """The store was locked (auto-lock or explicit) and must be unlocked again."""


class StorageFull(StoreError):
    """The disk filled during a write; the change was rolled back."""


class StorageFailure(StoreError):
    """The operating system reported an I/O error; the change was rolled back."""


class Conflict(StoreError, ValueError):
    """The change breaks a rule of the schema (a duplicate client code, the
    append-only audit log...); it was rolled back."""


class CrisisNotAcknowledged(StoreError):
    """A suggestion cannot be used while a crisis warning in its session up to its
    client words has no acknowledgement on record."""


class NotFound(StoreError, LookupError):
    """No row with the requested id."""


class ExportRefused(StoreError):
    """Clinic policy does not allow exporting training data."""


class SchemaTooNew(StoreError):
    """The database was written by a newer version of the app."""
