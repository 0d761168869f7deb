"""The encrypted session store (SQLCipher 4). See docs/store.md for key management,
the file layout and what each check does."""

from therapist_app.core.store.errors import (
    Conflict,
    CrisisNotAcknowledged,
    DatabaseCorrupt,
    DatabaseInUse,
    ExportRefused,
    InvalidInput,
    KeychainUnavailable,
    KeyFileDamaged,
    KeyFileMissing,
    NotEncrypted,
    NotFound,
    PassphraseTooShort,
    SchemaTooNew,
    StorageFailure,
    StorageFull,
    StoreError,
    StoreExists,
    StoreLocked,
    WalDamaged,
    WrongPassphrase,
)
from therapist_app.core.store.keys import KdfParams
from therapist_app.core.store.store import Store, restore

__all__ = [
    "Conflict", "CrisisNotAcknowledged", "DatabaseCorrupt", "DatabaseInUse", "ExportRefused", "KdfParams",
    "InvalidInput", "KeyFileDamaged", "KeyFileMissing", "KeychainUnavailable", "NotEncrypted", "NotFound", "PassphraseTooShort",
    "SchemaTooNew", "StorageFailure", "StorageFull", "Store", "StoreError", "StoreExists",
    "StoreLocked", "WalDamaged", "WrongPassphrase", "restore",
]
