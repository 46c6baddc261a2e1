"""Alembic environment for kdreg.

kdreg runs Alembic programmatically (``kdreg db upgrade``, or automatically for the
default database): the caller passes an open connection in ``config.attributes``.
The version table is kdreg's own, so another Alembic user of the same database does
not collide, and SQLite gets batch mode (ALTER via table copy).
"""

from __future__ import annotations

from alembic import context

from kdreg.store.migrate import VERSION_TABLE
from kdreg.store.schema import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - only when someone runs `alembic` by hand
    from kdreg.store.engine import make_engine

    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("Use `kdreg db upgrade` (or set sqlalchemy.url) to migrate a kdreg database.")
    connectable = make_engine(url)
    with connectable.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            version_table=VERSION_TABLE,
            render_as_batch=True,
        )
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
