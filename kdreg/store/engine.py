"""Engines for the experiment store: SQLite made safe for several processes, or any SQLAlchemy URL.

SQLite gets WAL (readers never block the writer), a 30 s busy timeout (parallel
grids wait instead of failing), and foreign keys on (so deleting a run deletes its
results). Other back-ends (PostgreSQL for teams) are used as SQLAlchemy configures them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from kdreg.errors import StoreError

BUSY_TIMEOUT_MS = 30_000


def sqlite_path(url: str) -> Path | None:
    """The file behind an SQLite URL, or None for other back-ends and in-memory databases."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA synchronous = NORMAL")
    finally:
        cursor.close()


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite files get their parent folder created and the pragmas above."""
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise StoreError(f"Not a database URL: {url[:100]!r} ({exc}); write e.g. sqlite:///runs.db.") from None
    if parsed.get_backend_name() == "sqlite":
        path = sqlite_path(url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", _on_sqlite_connect)
        return engine
    try:
        return create_engine(url, pool_pre_ping=True)
    except Exception as exc:  # missing driver, bad URL parts
        raise StoreError(
            f"Cannot use database {parsed.render_as_string(hide_password=True)}: {exc} "
            "(for PostgreSQL: pip install 'kdreg[postgres]')."
        ) from None
