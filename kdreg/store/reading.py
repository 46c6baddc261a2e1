"""The read side of the store: a checked, read-only opening and statements run without the ORM.

`kdreg query`, `report` and `status` should answer in about a tenth of a second, Python
start-up included, and importing SQLAlchemy costs that much on its own. Their statements
are portable SQL text (:mod:`kdreg.store.sqltext`), so :func:`open_reader` runs them
through the standard library's ``sqlite3`` when the database is an SQLite file at kdreg's
current revision — the common case — and through SQLAlchemy's ``text()`` otherwise
(PostgreSQL, an SQLite URL with options, a default database that needs an upgrade first).
Either way the database is opened read-only and checked like
:class:`~kdreg.store.store.Store` in read-only mode, and the rows come back the same:
SQLite's stored text is turned back into datetimes, booleans and JSON by column name
(:data:`DATETIME_COLUMNS`…; a test keeps them equal to the schema's types).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from kdreg.errors import StoreError
from kdreg.store.sqltext import Sql
from kdreg.store.status import StatusReads

DATETIME_COLUMNS = frozenset({"created", "created_at", "started_at", "finished_at", "heartbeat_at"})
"""Columns (and labels) holding a datetime: stored as text by SQLite."""
BOOLEAN_COLUMNS = frozenset({"is_source"})
JSON_COLUMNS = frozenset({"config", "environment", "depends_on"})
BUSY_TIMEOUT_S = 30.0
SQLITE_TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
"""How SQLAlchemy stores a datetime in SQLite (and so how a bound datetime must be written)."""


def _to_datetime(value: Any) -> Any:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def _to_bool(value: Any) -> Any:
    return bool(value) if isinstance(value, int) else value


def _to_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _converters(names: Sequence[str]) -> list[tuple[int, Callable[[Any], Any]]]:
    out: list[tuple[int, Callable[[Any], Any]]] = []
    for i, name in enumerate(names):
        if name in DATETIME_COLUMNS:
            out.append((i, _to_datetime))
        elif name in BOOLEAN_COLUMNS:
            out.append((i, _to_bool))
        elif name in JSON_COLUMNS:
            out.append((i, _to_json))
    return out


class Rows:
    """The rows of one statement, fetched in batches and converted a column at a time."""

    def __init__(self, names: Sequence[str], fetch: Callable[[int], list[Any]]) -> None:
        self._names = list(names)
        self._fetch = fetch
        self._convert = _converters(self._names)

    def keys(self) -> list[str]:
        return list(self._names)

    def partitions(self, size: int) -> Iterator[list[tuple[Any, ...]]]:
        if not self._convert:  # nothing to convert: the driver's rows as they are
            while batch := self._fetch(size):
                yield batch
            return
        for columns in self.column_batches(size):
            yield list(zip(*columns, strict=True))

    def column_batches(self, size: int, *, convert: bool = True) -> Iterator[list[Sequence[Any]]]:
        """The rows ``size`` at a time as columns (one sequence per column), for writers that take
        columns (an export): no second zip back into rows. ``convert=False`` leaves the driver's
        values as they are (SQLite's datetimes as text, booleans as 0/1) to a caller that
        converts whole columns at once (pyarrow parses a column of timestamps in one call)."""
        while batch := self._fetch(size):
            columns: list[Sequence[Any]] = list(zip(*batch, strict=True))
            if convert:
                for i, convert_value in self._convert:
                    columns[i] = [convert_value(v) for v in columns[i]]
            yield columns

    def all(self) -> list[tuple[Any, ...]]:
        return [row for batch in self.partitions(10_000) for row in batch]

    def mappings(self) -> list[dict[str, Any]]:
        return [dict(zip(self._names, row, strict=True)) for row in self.all()]

    def scalars(self) -> list[Any]:
        return [row[0] for row in self.all()]

    def scalar(self) -> Any:
        rows = self.all()
        return rows[0][0] if rows else None


class ReadConnection:
    """One connection for reading: ``execute(Sql)`` and the database's clock."""

    def execute(self, statement: Sql) -> Rows:
        raise NotImplementedError

    def now(self) -> datetime:
        """Now by the database's clock (PostgreSQL's ``now()``; this machine's for SQLite), aware UTC."""
        return datetime.now(timezone.utc)


def _names(statement: Sql, labels: list[str]) -> list[str]:
    return [statement.names.get(label, label) for label in labels]


def _sqlite_params(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v.strftime(SQLITE_TIME_FORMAT) if isinstance(v, datetime) else v for k, v in params.items()}


class _SqliteConnection(ReadConnection):
    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def execute(self, statement: Sql) -> Rows:
        cursor = self._connection.execute(statement.text, _sqlite_params(statement.params))
        return Rows(_names(statement, [d[0] for d in cursor.description or ()]), cursor.fetchmany)


class _EngineConnection(ReadConnection):
    """A SQLAlchemy connection running the same text (PostgreSQL, or SQLite by URL)."""

    def __init__(self, connection: Any) -> None:
        self._connection = connection

    def execute(self, statement: Sql) -> Rows:
        from sqlalchemy import text

        sqlite = self._connection.dialect.name == "sqlite"
        params = _sqlite_params(statement.params) if sqlite else statement.params
        result = self._connection.execution_options(yield_per=5000).execute(text(statement.text), params)
        return Rows(_names(statement, list(result.keys())),
                    lambda size: [tuple(row) for row in result.fetchmany(size)])

    def now(self) -> datetime:
        from kdreg.store.liveness import db_now

        return db_now(self._connection)


class Reader(StatusReads):
    """An opened database for reading: SQLite through ``sqlite3``, or a SQLAlchemy engine.

    It answers the status questions (:class:`~kdreg.store.status.StatusReads`) as a Store does.
    """

    def __init__(self, label: str, *, sqlite_uri: str | None = None, sqlite_file: Path | None = None,
                 engine: Any = None) -> None:
        self.label = label
        self.sqlite_uri = sqlite_uri
        self.sqlite_file = sqlite_file
        self.engine = engine

    def close(self) -> None:
        if self.engine is not None:
            self.engine.dispose()


def open_reader(db: str | None = None) -> Reader:
    """The database at ``db`` (URL or SQLite path; default as everywhere), opened read-only, at head.

    Reading never writes: a missing SQLite file is an error (never created), the database
    is opened read-only, and one that is empty, behind or not kdreg's is refused with what
    to do (:func:`kdreg.store.migrate.check_readable`), never created — except that the
    default database is upgraded as everywhere (:func:`kdreg.store.migrate.open_for_reading`).
    So an archived, read-only study can be read. Only an SQLite file already at kdreg's
    revision is read without SQLAlchemy; everything else goes the full, checked way.
    """
    from kdreg.paths import resolve_db_url
    from kdreg.store.revision import SCHEMA_HEAD, plain_sqlite_file, read_only_uri, sqlite_revision

    url, is_default = resolve_db_url(db)
    path = plain_sqlite_file(url)
    if path is not None:
        if not path.exists():
            raise StoreError(f"No database at {path}; run `kdreg run` first or pass --db.")
        if sqlite_revision(path) == SCHEMA_HEAD:
            return Reader(str(path), sqlite_uri=read_only_uri(path), sqlite_file=path)
    from kdreg.store.engine import sqlite_file, sqlite_path
    from kdreg.store.migrate import open_for_reading

    path = sqlite_path(url)
    if path is not None and not path.exists():
        raise StoreError(f"No database at {path}; run `kdreg run` first or pass --db.")
    engine, _ = open_for_reading(url, is_default=is_default)
    label = str(path) if path else engine.url.render_as_string(hide_password=True)
    return Reader(label, sqlite_file=sqlite_file(engine.url), engine=engine)


def _error(label: str, exc: BaseException) -> StoreError:
    reason = str(getattr(exc, "orig", None) or exc).splitlines() or [type(exc).__name__]
    return StoreError(f"Database error reading {label}: {reason[0][:200]}")


@contextmanager
def read_connection(source: Any) -> Iterator[ReadConnection]:
    """A connection for reading from a :class:`Reader` or a :class:`~kdreg.store.store.Store`
    (or the given :class:`ReadConnection` itself); any database error becomes one :class:`StoreError` line."""
    if isinstance(source, ReadConnection):
        yield source
        return
    label = getattr(source, "label", "the database")
    uri = getattr(source, "sqlite_uri", None)
    if uri is not None:
        try:
            connection = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S)
        except sqlite3.Error as exc:
            raise _error(label, exc) from None
        try:
            yield _SqliteConnection(connection)
        except sqlite3.Error as exc:
            raise _error(label, exc) from None
        finally:
            connection.close()
        return
    from sqlalchemy.exc import SQLAlchemyError

    try:
        with source.engine.connect() as connection:
            yield _EngineConnection(connection)
    except SQLAlchemyError as exc:
        raise _error(label, exc) from exc


def fetch_all(source: Any, statements: Sequence[Sql]) -> list[list[dict[str, Any]]]:
    """Rows (as dicts) of each statement; from a Reader or Store, on two connections at once.

    The statements of a report are independent scans of the results; on their own
    connections they run on two cores at once (SQLite releases the GIL while it works).
    Given a single :class:`ReadConnection` (a caller's), they run one after another.
    """
    if isinstance(source, ReadConnection):
        return [source.execute(stmt).mappings() for stmt in statements]

    def fetch(stmt: Sql) -> list[dict[str, Any]]:
        with read_connection(source) as connection:
            return connection.execute(stmt).mappings()

    if len(statements) < 2:
        return [fetch(stmt) for stmt in statements]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(fetch, statements))
