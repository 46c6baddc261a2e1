"""Which schema revision kdreg knows, and reading an SQLite file's revision with the standard library.

Kept apart from :mod:`kdreg.store.migrate` (Alembic, SQLAlchemy) so that ``kdreg db
current`` on an up-to-date SQLite file answers without importing SQLAlchemy, which costs
more than the rest of the command (``bench/light_commands.py``). Anything else — another
back-end, an older or newer revision, a file that is not kdreg's — goes the full way
through :func:`kdreg.store.migrate.schema_state`.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from urllib.parse import quote, urlencode

VERSION_TABLE = "kdreg_alembic_version"
SCHEMA_HEAD = "0005"
"""The newest revision this kdreg knows (a test checks it equals Alembic's head)."""


def plain_sqlite_file(url: str) -> Path | None:
    """The file of a plain ``sqlite:///PATH`` URL (no query, no escapes), else None: ask SQLAlchemy."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or any(c in url for c in "?%#"):
        return None
    database = url[len(prefix):]
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def read_only_query(path: Path) -> dict[str, str]:
    """SQLite URI options that open ``path`` read-only: ``mode=ro``, and ``immutable=1`` if it must.

    A database in WAL mode is read through its ``-shm`` index, which a read-only connection
    creates beside the file when it is missing. Where it is missing and cannot be created
    (the folder is read-only: permissions, ``chattr +i``, a read-only mount), ``immutable=1``
    tells SQLite that nobody changes the file, so it reads it without ``-wal``/``-shm``;
    that is only right when no ``-wal`` holds changes, so a non-empty ``-wal`` keeps plain
    ``mode=ro`` (which then fails with a message, rather than showing older data).
    """
    shm, wal = Path(f"{path}-shm"), Path(f"{path}-wal")
    query = {"mode": "ro"}
    try:
        wal_empty = not wal.exists() or wal.stat().st_size == 0
    except OSError:
        wal_empty = False
    if not shm.exists() and not os.access(path.parent, os.W_OK) and wal_empty:
        query["immutable"] = "1"
    return query


def read_only_uri(path: Path) -> str:
    """The ``file:`` URI that opens ``path`` read-only with ``sqlite3`` (see :func:`read_only_query`)."""
    return f"file:{quote(str(path.absolute()), safe='/')}?{urlencode(read_only_query(path))}"


def sqlite_revision(path: Path) -> str | None:
    """The kdreg revision stored in an SQLite file, read-only; None when it cannot be read that way."""
    try:
        connection = sqlite3.connect(read_only_uri(path), uri=True)
    except sqlite3.Error:
        return None
    try:
        row = connection.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchone()
    except sqlite3.Error:  # no version table, not a database, locked: the full check says which
        return None
    finally:
        connection.close()
    return row[0] if row else None
