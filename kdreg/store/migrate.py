"""Schema versions with Alembic: create, check, upgrade, refuse.

Rules (each one a promise to the user's data):

* a fresh (empty) database is created by running every migration, so it is stamped
  at head in kdreg's own version table (``kdreg_alembic_version``);
* a database at head is used as it is; checking costs one small query;
* an older *default* database is upgraded automatically after a backup copy is made;
  an older database given by URL is refused with the exact command to run;
* a newer-than-known schema, or a file that is not a database at all, is refused
  and never written to (not even SQLite's WAL switch, see :mod:`kdreg.store.engine`);
* creation and migration hold a lock, so parallel processes do not race: a file lock
  for SQLite (beside the file) and other back-ends (under kdreg's home), and for
  PostgreSQL an advisory lock in the database itself, the one place every client of a
  team's server shares (machines, users and spellings of the URL differ, a lock file
  under each one's home would not serialise them); refusals are decided before the
  lock is taken, so a refused file gets no lock file beside it.

**Sharing a database with other tools.** kdreg's version table has its own name, so
another Alembic user's ``alembic_version`` (or any other table) in the same database
is never read or written. A non-empty database that has no kdreg tables yet is still
*refused* when kdreg merely opens it (``kdreg run --db other.db``): far more often
than not that is a typo pointing at somebody else's file, and quietly adding five
tables to it would be the wrong surprise. Creating kdreg's tables there on purpose is
one explicit command, ``kdreg db upgrade --db URL`` (``adopt_foreign=True``), which the
refusal names. Even then a database that already has a table or view with one of
kdreg's names (``runs``, ``results``, ...) is refused, because those would collide.
"""

from __future__ import annotations

import hashlib
import logging
import shlex
import shutil
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path

from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import DatabaseError, OperationalError, SQLAlchemyError

from kdreg.errors import SchemaError, StoreError
from kdreg.store.engine import enable_wal, sqlite_file, sqlite_path
from kdreg.store.revision import SCHEMA_HEAD, VERSION_TABLE

__all__ = ["SCHEMA_HEAD", "VERSION_TABLE"]  # defined beside the light revision check; used from here

VIEWS = ("results_flat",)
"""Views the migrations create (tables come from the ORM metadata)."""

LOCK_TIMEOUT_S = 120

ADVISORY_LOCK_KEY = int.from_bytes(hashlib.sha256(b"kdreg schema migration").digest()[:8], "big", signed=True)
"""PostgreSQL advisory lock held while creating or migrating (advisory locks are per database)."""

log = logging.getLogger("kdreg.store")


@dataclass(frozen=True)
class SchemaChange:
    """What :func:`migrate_database` did: the revision before (None: new) and after, and the backup."""

    before: str | None
    after: str
    backup: Path | None = None


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


def kdreg_object_names() -> frozenset[str]:
    """Names of every table and view kdreg creates (including its version table)."""
    from kdreg.store.schema import Base

    return frozenset(Base.metadata.tables) | set(VIEWS) | {VERSION_TABLE}


def current_revision(engine: Engine) -> str | None:
    """The database's kdreg revision; None when it has no kdreg version table (reads only)."""
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table(VERSION_TABLE):
                return None
            row = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).first()
            return row[0] if row else None
    except (DatabaseError, OperationalError) as exc:
        raise StoreError(
            f"Cannot read the database {_label(engine)}: {_reason(exc)}; "
            "point --db / KDREG_DB at a kdreg database or a new file."
        ) from None


def schema_state(engine: Engine) -> tuple[str | None, str]:
    """The revision and a word for ``kdreg db current`` (up to date, needs upgrade, newer, ...)."""
    revision = current_revision(engine)
    if revision == SCHEMA_HEAD:
        return revision, "up to date"
    if revision is None:
        return None, ("not a kdreg database" if _object_names(engine) else "not created yet")
    if revision not in known_revisions():
        return revision, "newer than this kdreg"
    return revision, "needs upgrade"


def _label(engine: Engine) -> str:
    path = sqlite_file(engine.url)
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


class _LockBusy(Exception):
    """The PostgreSQL advisory lock stayed taken for :data:`LOCK_TIMEOUT_S`."""


@contextmanager
def _advisory_lock(engine: Engine, timeout_s: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold kdreg's session-level advisory lock on a PostgreSQL database.

    Polled with ``pg_try_advisory_lock`` so waiting is bounded like the file lock's. The
    lock belongs to one dedicated connection (autocommit: no transaction stays open
    while others migrate); if unlocking fails the connection is dropped, which releases it.
    """
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        deadline = time.monotonic() + timeout_s
        take = text("SELECT pg_try_advisory_lock(:key)").bindparams(key=ADVISORY_LOCK_KEY)
        while not conn.execute(take).scalar():
            if time.monotonic() > deadline:
                raise _LockBusy
            time.sleep(0.05)
        try:
            yield
        finally:
            try:
                conn.execute(text("SELECT pg_advisory_unlock(:key)").bindparams(key=ADVISORY_LOCK_KEY))
            except SQLAlchemyError:
                conn.invalidate()


def _in_memory(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite" and sqlite_path(str(engine.url)) is None


def _object_names(engine: Engine) -> set[str]:
    """Tables and views in the database (reads only).

    Views first: each catalog query sees what was committed when it ran, and kdreg's view
    is created after its tables — so a view seen here means its tables (and the version
    table) are seen by the next query, never a view alone while another process is
    creating the schema (which read as a foreign database and refused it).
    """
    try:
        with engine.connect() as conn:
            inspector = inspect(conn)
            views = set(inspector.get_view_names())
            return views | set(inspector.get_table_names())
    except (DatabaseError, OperationalError) as exc:
        raise StoreError(
            f"{_label(engine)} is not a readable database ({_reason(exc)}); "
            "point --db / KDREG_DB at a kdreg database or a new file."
        ) from None


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Run migrations up to ``revision`` (no checks: use :func:`migrate_database`)."""
    from alembic import command

    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), revision)


def backup_sqlite(path: Path, revision: str) -> Path:
    """Copy an SQLite database (WAL content included) beside itself before upgrading it."""
    import sqlite3

    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
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


def _upgrade_command(engine: Engine) -> str:
    path = sqlite_file(engine.url)  # a read-only engine's URI names the same file
    url = f"sqlite:///{path}" if path is not None else engine.url.render_as_string(hide_password=True)
    return f"kdreg db upgrade --db {shlex.quote(url)}"


def _refusal(engine: Engine, revision: str | None, *, auto_upgrade: bool, adopt_foreign: bool) -> str | None:
    """Why this database must not be touched, or None when creating/upgrading it is allowed.

    Reads only, so it can run before the lock is taken (and again under it).
    """
    label = _label(engine)
    if revision is None:
        names = _object_names(engine)
        if not names or VERSION_TABLE in names:
            # Empty: create it. The version table without a row: another process is creating it
            # right now (Alembic writes that table first); the lock will tell.
            return None
        shown = ", ".join(sorted(names)[:5]) + (", ..." if len(names) > 5 else "")
        clash = names & kdreg_object_names()
        if clash:
            return (
                f"{label} is not a kdreg database (it has {shown} but no {VERSION_TABLE}, and "
                f"{', '.join(sorted(clash))} would collide with kdreg's); nothing was written. "
                "Use a new file or another database."
            )
        if adopt_foreign:
            return None
        return (
            f"{label} is not a kdreg database (it has {shown}); nothing was written. Use a new file, "
            f"or to keep kdreg's tables in this same database run `{_upgrade_command(engine)}` once."
        )
    if revision not in known_revisions():
        return (
            f"{label} has schema revision {revision!r}, which this kdreg does not know (its newest is "
            f"{SCHEMA_HEAD}): a newer kdreg wrote it. Upgrade kdreg (pip install -U kdreg); "
            "the database was not touched."
        )
    if revision != SCHEMA_HEAD and not auto_upgrade:
        return (
            f"{label} is at schema revision {revision}, behind {SCHEMA_HEAD}; nothing was written. "
            f"Back it up, then run `{_upgrade_command(engine)}`."
        )
    return None


def migrate_database(
    engine: Engine, *, auto_upgrade: bool = True, adopt_foreign: bool = False
) -> SchemaChange:
    """Create or upgrade ``engine``'s database to head, or raise :class:`SchemaError` touching nothing.

    ``auto_upgrade``: an older revision may be upgraded (after an SQLite backup); otherwise
    it is refused with the command to run. ``adopt_foreign``: kdreg's tables may be added to
    a database that already holds other, non-colliding tables (see the module docstring).
    """
    revision = current_revision(engine)
    if revision == SCHEMA_HEAD:
        enable_wal(engine)
        return SchemaChange(revision, revision)
    reason = _refusal(engine, revision, auto_upgrade=auto_upgrade, adopt_foreign=adopt_foreign)
    if reason:
        raise SchemaError(reason)
    from filelock import FileLock, Timeout

    lock = _lock_path(engine)
    try:
        guard: AbstractContextManager[object]
        if _in_memory(engine):  # private to this process: nobody to race with, no file to leave
            guard = nullcontext()
        elif engine.dialect.name == "postgresql":
            guard = _advisory_lock(engine)
        else:
            lock.parent.mkdir(parents=True, exist_ok=True)
            guard = FileLock(str(lock), timeout=LOCK_TIMEOUT_S)
        with guard:
            revision = current_revision(engine)  # another process may have done it meanwhile
            if revision == SCHEMA_HEAD:
                enable_wal(engine)
                return SchemaChange(revision, revision)
            reason = _refusal(engine, revision, auto_upgrade=auto_upgrade, adopt_foreign=adopt_foreign)
            if reason:
                raise SchemaError(reason)
            backup = None
            path = sqlite_path(str(engine.url))
            if revision is not None and path is not None and path.exists():
                backup = backup_sqlite(path, revision)
            try:
                enable_wal(engine)
                upgrade(engine)
            except SQLAlchemyError as exc:
                kept = f"; the copy made before is {backup}" if backup else ""
                raise StoreError(
                    f"Migrating {_label(engine)} from {revision or 'nothing'} to {SCHEMA_HEAD} failed: "
                    f"{_reason(exc)}{kept}."
                ) from exc
            return SchemaChange(revision, SCHEMA_HEAD, backup)
    except _LockBusy:
        raise StoreError(
            f"Another process has been creating or migrating {_label(engine)} for {LOCK_TIMEOUT_S} s "
            f"(PostgreSQL advisory lock {ADVISORY_LOCK_KEY}); wait for it, or end that session "
            "(pg_stat_activity) if no kdreg is running."
        ) from None
    except Timeout:
        raise StoreError(
            f"Another process has been creating or migrating {_label(engine)} for {LOCK_TIMEOUT_S} s "
            f"(lock {lock}); wait for it, or delete the lock file if no kdreg is running."
        ) from None
    except OSError as exc:
        raise StoreError(
            f"Cannot lock {_label(engine)} for migration ({lock}: {exc.strerror or exc})."
        ) from None


def check_readable(engine: Engine, *, is_default: bool = False) -> str:
    """Make sure ``engine``'s database is a kdreg database at head, reading only; return its revision.

    The read commands' check: unlike :func:`ensure_schema` it never creates, upgrades or
    switches anything (a read-only engine could not anyway), so a database that is empty,
    somebody else's, behind or newer is refused with what to do, and left exactly as it was.
    """
    revision = current_revision(engine)
    if revision == SCHEMA_HEAD:
        return revision
    label = _label(engine)
    upgrade_command = "kdreg db upgrade" if is_default else _upgrade_command(engine)
    if revision is None and not _object_names(engine):
        create = "kdreg run" if is_default else f"kdreg run --db {shlex.quote(label)}"
        raise SchemaError(
            f"{label} holds no kdreg data yet (an empty database); read commands never create "
            f"anything: `{create}` (or `{upgrade_command}`) makes kdreg's tables."
        )
    if revision is not None and revision in known_revisions():
        raise SchemaError(
            f"{label} is at schema revision {revision}, behind {SCHEMA_HEAD}; read commands never write, "
            f"so upgrade it first with `{upgrade_command}` (it backs an SQLite file up first)."
        )
    reason = _refusal(engine, revision, auto_upgrade=False, adopt_foreign=False)
    raise SchemaError(reason or f"{label} cannot be read as a kdreg database.")


def open_for_reading(url: str, *, is_default: bool) -> tuple[Engine, str]:
    """A read-only engine on ``url`` and its revision (see :func:`check_readable`).

    The one exception to "reading never writes" is the promise every kdreg makes about the
    *default* database: one that an older kdreg left behind is upgraded automatically, after
    a backup copy, by whichever command opens it first. A default database that cannot be
    written (an archived study) is refused with the command to run, as any other URL is.
    """
    from kdreg.store.engine import make_engine

    engine = make_engine(url, read_only=True)
    try:
        return engine, check_readable(engine, is_default=is_default)
    except SchemaError:
        revision = current_revision(engine) if is_default else None
        engine.dispose()
        if revision is None or revision not in known_revisions():
            raise
    writable = make_engine(url)
    try:
        ensure_schema(writable, auto_upgrade=True)
    except StoreError:
        pass  # not writable: the read-only check below refuses it with what to do
    finally:
        writable.dispose()
    engine = make_engine(url, read_only=True)
    try:
        return engine, check_readable(engine, is_default=is_default)
    except BaseException:
        engine.dispose()
        raise


def ensure_schema(engine: Engine, *, auto_upgrade: bool, adopt_foreign: bool = False) -> str:
    """Make sure ``engine``'s database is usable at head; return the revision it is at.

    ``auto_upgrade`` is True only for kdreg's default database (which is upgraded after a
    backup); an explicit URL that is behind is refused with the command to run.
    """
    change = migrate_database(engine, auto_upgrade=auto_upgrade, adopt_foreign=adopt_foreign)
    if change.before is not None and change.before != change.after:
        log.warning(
            "kdreg: upgraded %s from schema %s to %s%s",
            _label(engine),
            change.before,
            change.after,
            f" (backup: {change.backup})" if change.backup else "",
        )
    return change.after
