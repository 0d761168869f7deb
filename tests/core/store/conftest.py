"""Fixtures for the store tests: every test copies one pre-built encrypted template
(created once per session with the cheapest KDF) instead of paying the KDF itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.core.store.helpers import PASSPHRASE, copy_store
from therapist_app.core.store import KdfParams, Store, connection, keys


@pytest.fixture(scope="session")
def template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("template") / "store.db"
    Store.create(path, PASSPHRASE, KdfParams.fast(), profile_name="Template").close()
    return path


@pytest.fixture
def store_path(template, tmp_path) -> Path:
    return copy_store(template, tmp_path / "store.db")


@pytest.fixture
def store(store_path):
    with Store.open(store_path, PASSPHRASE) as opened:
        yield opened


@pytest.fixture
def raw_connection():
    """A verified connection that bypasses the Store API (as any SQL client could)."""
    opened = []

    def connect(path: Path, passphrase: str = PASSPHRASE):
        key_file = keys.read_key_file(path)
        data_key = keys.unwrap_keys(key_file, keys.passphrase_kek(key_file, passphrase), "passphrase")[0][1]
        conn = connection.open_existing(path, data_key)
        opened.append(conn)
        return conn

    yield connect
    for conn in opened:
        conn.close()
