"""Schema versions with Alembic: create, check, upgrade, refuse.

Rules (each one a promise to the user's data):

* a fresh (empty) database is created by running every migration, so it is stamped
  at head in kdreg's own version table (``kdreg_alembic_version``);
* a database at head is used as it is; checking costs one small query;
* an older *default* database is upgraded automatically after a backup copy is made;
  an older database given by URL is refused with the exact command to run;
* a newer-than-known schema, a non-empty database that is not kdreg's, or a file that
  is not a database at all is refused and never written to;
* creation and migration hold a file lock, so parallel processes do not race.
"""

from __future__ import annotations

import hashlib
import shutil
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path

from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import DatabaseError, OperationalError

from kdreg.errors import SchemaError, StoreError
from kdreg.store.engine import sqlite_path

VERSION_TABLE = "kdreg_alembic_version"
SCHEMA_HEAD = "0002"
"""The newest revision this kdreg knows (a test checks it equals Alembic's head)."""


def script_location() -> str:
    """Folder of the shipped migrations (``kdreg_migrations``)."""
    return str(resources.files("kdreg_migrations"))


def alembic_config(connection: Connection | None = None):  # type: ignore[no-untyped-def]
    """An Alembic Config pointing at kdreg's migrations, optionally bound to ``connection``."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", script_location())
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def known_revisions() -> list[str]:
    """Every revision id, newest first."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    return [rev.revision for rev in script.walk_revisions()]


def current_revision(engine: Engine) -> str | None:
    """The database's kdreg revision; None when it has no kdreg version table."""
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table(VERSION_TABLE):
                return None
            row = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).first()
            return row[0] if row else None
    except (DatabaseError, OperationalError) as exc:
        raise StoreError(f"Cannot read the database {_label(engine)}: {_reason(exc)}.") from None


def _label(engine: Engine) -> str:
    path = sqlite_path(str(engine.url))
    return str(path) if path else engine.url.render_as_string(hide_password=True)


def _reason(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    return str(orig).splitlines()[0][:200]


def _lock_path(engine: Engine) -> Path:
    path = sqlite_path(str(engine.url))
    if path is not None:
        return path.with_name(path.name + ".lock")
    from kdreg.paths import home

    digest = hashlib.sha256(str(engine.url).encode()).hexdigest()[:16]
    return home() / "locks" / f"db-{digest}.lock"


def _table_names(engine: Engine) -> list[str]:
    try:
        with engine.connect() as conn:
            return inspect(conn).get_table_names()
    except (DatabaseError, OperationalError) as exc:
        raise StoreError(
            f"{_label(engine)} is not a readable database ({_reason(exc)}); "
            "point --db / KDREG_DB at a kdreg database or a new file."
        ) from None


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Run migrations up to ``revision`` (``kdreg db upgrade``)."""
    from alembic import command

    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), revision)


def backup_sqlite(path: Path, revision: str) -> Path:
    """Copy an SQLite database (WAL checkpointed) beside itself before upgrading it."""
    import sqlite3

    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    target = path.with_name(f"{path.name}.bak-{revision}-{stamp}")
    source = sqlite3.connect(path)
    try:
        dest = sqlite3.connect(target)
        try:
            source.backup(dest)
        finally:
            dest.close()
    finally:
        source.close()
    if not target.exists():  # pragma: no cover - the backup API always writes the file
        shutil.copy2(path, target)
    return target


def ensure_schema(engine: Engine, *, auto_upgrade: bool) -> str:
    """Make sure ``engine``'s database is usable at head; return the revision it is at.

    ``auto_upgrade`` is True only for kdreg's default database (which is upgraded after a
    backup); an explicit URL that is behind is refused with the command to run.
    """
    revision = current_revision(engine)
    if revision == SCHEMA_HEAD:
        return revision
    from filelock import FileLock

    lock = _lock_path(engine)
    lock.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(lock), timeout=120):
        revision = current_revision(engine)  # another process may have done it meanwhile
        if revision == SCHEMA_HEAD:
            return revision
        if revision is None:
            tables = _table_names(engine)
            if tables:
                raise SchemaError(
                    f"{_label(engine)} is not a kdreg database (it has tables {', '.join(sorted(tables)[:5])} "
                    f"but no {VERSION_TABLE}); nothing was written. Use a new file or another database."
                )
            upgrade(engine)
            return SCHEMA_HEAD
        known = known_revisions()
        if revision not in known:
            raise SchemaError(
                f"{_label(engine)} has schema revision {revision!r}, newer than this kdreg knows "
                f"({SCHEMA_HEAD}); upgrade kdreg (pip install -U kdreg). The database was not touched."
            )
        if not auto_upgrade:
            raise SchemaError(
                f"{_label(engine)} is at schema revision {revision}, behind {SCHEMA_HEAD}; back it up, then run "
                f"`kdreg db upgrade --db '{engine.url.render_as_string(hide_password=True)}'`."
            )
        path = sqlite_path(str(engine.url))
        if path is not None and path.exists():
            backup_sqlite(path, revision)
        upgrade(engine)
        return SCHEMA_HEAD
