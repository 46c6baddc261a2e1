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

Read commands open the database **read-only** (:func:`make_engine` with ``read_only``), so
an archived study (a file and folder without write permission, a read-only mount) can be
read and no read can ever change a database: SQLite through a ``mode=ro`` URI, plus
``immutable=1`` where the folder cannot hold the ``-shm`` file a WAL reader needs (see
:func:`read_only_sqlite_url`); PostgreSQL sessions in read-only transactions.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url

from kdreg.errors import StoreError

BUSY_TIMEOUT_MS = 30_000


def parse_url(url: str | URL) -> URL:
    """``url`` parsed; a malformed one (e.g. a port that is not a number) is one StoreError line."""
    if isinstance(url, URL):
        return url
    try:
        return make_url(url)
    except Exception as exc:  # ArgumentError, or ValueError from a port like ':abc'
        shown = re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)  # never echo a password
        raise StoreError(
            f"Not a database URL: {shown[:100]!r} ({str(exc).splitlines()[0][:120]}); write e.g. "
            "sqlite:///runs.db or postgresql+psycopg://user@host:5432/kdreg (the port is a number)."
        ) from None


def sqlite_path(url: str | URL) -> Path | None:
    """The file behind an SQLite URL, or None for other back-ends and in-memory databases."""
    parsed = parse_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def sqlite_file(url: str | URL) -> Path | None:
    """Like :func:`sqlite_path`, and also the file behind SQLite's URI form (read-only openings)."""
    parsed = parse_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() == "sqlite" and database.startswith("file:"):
        return Path(unquote(database[len("file:"):].split("?", 1)[0]))  # file:/path/my%20runs.db
    return sqlite_path(parsed)


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA synchronous = NORMAL")
    finally:
        cursor.close()


def read_only_sqlite_url(path: Path) -> URL:
    """An SQLite URL that opens ``path`` read-only (:func:`kdreg.store.revision.read_only_query`)."""
    from kdreg.store.revision import read_only_query

    query = {**read_only_query(path), "uri": "true"}
    return URL.create("sqlite", database=f"file:{quote(str(path.absolute()), safe='/')}", query=query)


def _on_read_only_postgresql_connect(dbapi_connection: Any, _record: Any) -> None:
    """Every transaction of a read command's session read-only: the server refuses any write."""
    autocommit = dbapi_connection.autocommit
    dbapi_connection.autocommit = True
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
    finally:
        cursor.close()
        dbapi_connection.autocommit = autocommit


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


def make_engine(url: str, *, read_only: bool = False) -> Engine:
    """An engine for ``url``; SQLite files get their parent folder created and the pragmas above.

    ``read_only``: the engine can only read (see the module docstring); nothing is created,
    not even the folder.
    """
    parsed = parse_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = sqlite_path(url)
        target: str | URL = url
        if path is not None and read_only:
            target = read_only_sqlite_url(path)
        elif path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"Cannot create the folder of the database {path}: {exc.strerror or exc} "
                    f"({_blocking_file(path.parent) or path.parent}); point --db / KDREG_DB / KDREG_HOME "
                    "at a folder you can write."
                ) from None
        engine = create_engine(target, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})
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
        if read_only:
            event.listen(engine, "connect", _on_read_only_postgresql_connect)
    return engine


def _blocking_file(folder: Path) -> str | None:
    """The first part of ``folder`` that exists but is not a folder (why it cannot be created)."""
    for part in (folder, *folder.parents):
        if part.exists():
            return None if part.is_dir() else f"{part} is a file, not a folder"
    return None
