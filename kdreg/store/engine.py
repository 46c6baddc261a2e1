"""Engines for the experiment store: SQLite made safe for several processes, or any SQLAlchemy URL.

SQLite gets WAL (readers never block the writer), a 30 s busy timeout (parallel
grids wait instead of failing), and foreign keys on (so deleting a run deletes its
results). Other back-ends (PostgreSQL for teams) are used as SQLAlchemy configures them,
except that PostgreSQL sessions run in UTC (see :func:`_on_postgresql_connect`).

Busy timeout and foreign keys are per-connection settings and change nothing on disk,
so every connection gets them. WAL, by contrast, is written into the file's header:
it is switched on by :func:`kdreg.store.migrate.ensure_schema` only once the file is
known to be kdreg's (new, or at a known revision), so opening somebody else's SQLite
file, a garbage file or a newer kdreg's database by mistake never modifies it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url

from kdreg.errors import StoreError

BUSY_TIMEOUT_MS = 30_000


def sqlite_path(url: str | URL) -> Path | None:
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
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA synchronous = NORMAL")
    finally:
        cursor.close()


def _on_postgresql_connect(dbapi_connection: Any, _record: Any) -> None:
    """Every PostgreSQL session in UTC, so kdreg means the same instant on every back-end.

    kdreg treats a naive datetime as UTC (SQLite stores UTC wall-clock time, and
    ``--since``/``--until`` are turned into naive UTC). PostgreSQL reads a naive
    timestamp compared with a ``timestamptz`` column in the *session* time zone, which is
    the server's (often local) zone by default, and hands ``timestamptz`` values back in
    it too: a team server in Europe/Berlin would shift every filter by an hour or two and
    show other times than SQLite. Autocommit is switched on for the ``SET`` alone, so the
    setting is not undone by the rollback that ends the pool's first transaction.
    """
    autocommit = dbapi_connection.autocommit
    dbapi_connection.autocommit = True
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SET TIME ZONE 'UTC'")
    finally:
        cursor.close()
        dbapi_connection.autocommit = autocommit


def enable_wal(engine: Engine) -> None:
    """Put an SQLite file in WAL mode (persistent in the file); a no-op when it already is, or not SQLite."""
    if sqlite_path(str(engine.url)) is None:
        return
    with engine.connect() as conn:
        mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
        if str(mode).lower() != "wal":
            conn.exec_driver_sql("PRAGMA journal_mode = WAL")


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite files get their parent folder created and the pragmas above."""
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise StoreError(
            f"Not a database URL: {url[:100]!r} ({exc}); write e.g. sqlite:///runs.db."
        ) from None
    if parsed.get_backend_name() == "sqlite":
        path = sqlite_path(url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", _on_sqlite_connect)
        return engine
    try:
        engine = create_engine(url, pool_pre_ping=True)
    except Exception as exc:  # missing driver, bad URL parts
        raise StoreError(
            f"Cannot use database {parsed.render_as_string(hide_password=True)}: {exc} "
            "(for PostgreSQL: pip install 'kdreg[postgres]')."
        ) from None
    if engine.dialect.name == "postgresql":
        event.listen(engine, "connect", _on_postgresql_connect)
    return engine
