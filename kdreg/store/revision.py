"""Which schema revision kdreg knows, and reading an SQLite file's revision with the standard library.

Kept apart from :mod:`kdreg.store.migrate` (Alembic, SQLAlchemy) so that ``kdreg db
current`` on an up-to-date SQLite file answers without importing SQLAlchemy, which costs
more than the rest of the command (``bench/light_commands.py``). Anything else — another
back-end, an older or newer revision, a file that is not kdreg's — goes the full way
through :func:`kdreg.store.migrate.schema_state`.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from urllib.parse import quote

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


def sqlite_revision(path: Path) -> str | None:
    """The kdreg revision stored in an SQLite file, read-only; None when it cannot be read that way."""
    try:
        connection = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True)
    except sqlite3.Error:
        return None
    try:
        row = connection.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchone()
    except sqlite3.Error:  # no version table, not a database, locked: the full check says which
        return None
    finally:
        connection.close()
    return row[0] if row else None
