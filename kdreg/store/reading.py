"""The read side of the store without the ORM: light table clauses and a checked opening.

`kdreg query` should answer in well under half a second, Python start-up included.
Importing the ORM (``sqlalchemy.orm`` and the declarative models) costs about 80 ms of
that and reads need none of it: the statements of :mod:`kdreg.store.queries` are built
on ``table()``/``column()`` clauses naming the same tables and typed columns as
:mod:`kdreg.store.schema` (a test keeps the two equal), and :func:`open_reader` opens the
database read-only, checked to be at head like :class:`~kdreg.store.store.Store` in read-only mode.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import JSON, Boolean, Connection, DateTime, Engine, Float, Integer, String, column, table

from kdreg.errors import StoreError

_TEXT = ("teacher", "student", "loss", "benchmark", "corpus")

runs = table(
    "runs",
    column("id", Integer),
    column("config_hash", String),
    *(column(name, String) for dim in _TEXT for name in (dim, f"{dim}_spec")),
    column("stage", String),
    column("seed", Integer),
    column("setup_hash", String),
    column("status", String),
    column("created_at", DateTime(timezone=True)),
    column("finished_at", DateTime(timezone=True)),
    column("heartbeat_at", DateTime(timezone=True)),
    column("config", JSON),
)
results = table(
    "results",
    column("id", Integer),
    column("run_id", Integer),
    column("language", String),
    column("lang", String),
    column("split", String),
    column("metric", String),
    column("value", Float),
    column("is_source", Boolean),
)
grid_runs = table("grid_runs", column("grid_id", Integer), column("run_id", Integer))


@dataclass
class Reader:
    """An opened database for reading: its engine and how to name it to people."""

    engine: Engine
    label: str

    def close(self) -> None:
        self.engine.dispose()


def open_reader(db: str | None = None) -> Reader:
    """The database at ``db`` (URL or SQLite path; default as everywhere), opened read-only, at head.

    Reading never writes: a missing SQLite file is an error (never created), the engine is
    read-only (:func:`kdreg.store.engine.make_engine`), and a database that is empty, behind
    or not kdreg's is refused with what to do (:func:`kdreg.store.migrate.check_readable`),
    never created — except that the default database is upgraded as everywhere
    (:func:`kdreg.store.migrate.open_for_reading`). So an archived, read-only study can be read.
    """
    from kdreg.paths import resolve_db_url
    from kdreg.store.engine import sqlite_path
    from kdreg.store.migrate import open_for_reading

    url, is_default = resolve_db_url(db)
    path = sqlite_path(url)
    if path is not None and not path.exists():
        raise StoreError(f"No database at {path}; run `kdreg run` first or pass --db.")
    engine, _ = open_for_reading(url, is_default=is_default)
    label = str(path) if path else engine.url.render_as_string(hide_password=True)
    return Reader(engine, label)


@contextmanager
def read_connection(reader: Reader) -> Iterator[Connection]:
    """A connection for reading; any database error becomes one :class:`StoreError` line."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        with reader.engine.connect() as connection:
            yield connection
    except SQLAlchemyError as exc:
        orig = getattr(exc, "orig", None) or exc
        raise StoreError(f"Database error reading {reader.label}: {str(orig).splitlines()[0][:200]}") from exc
