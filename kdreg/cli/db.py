"""``kdreg db``: where the store is, which schema revision it has, and upgrading it."""

from __future__ import annotations

import typer

from kdreg.cli.options import DbOption, JsonOption
from kdreg.cli.output import console, print_json

db_app = typer.Typer(help="The experiment database: path, schema revision, history, upgrade.")


@db_app.command("path")
def db_path(db: DbOption = None) -> None:
    """Print the database URL (or file) kdreg uses."""
    from kdreg.paths import resolve_db_url
    from kdreg.store.engine import sqlite_path

    url, _ = resolve_db_url(db)
    path = sqlite_path(url)
    typer.echo(str(path) if path else url)


@db_app.command("current")
def db_current(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Show the database's schema revision and the newest one this kdreg knows."""
    from kdreg.paths import resolve_db_url
    from kdreg.store.engine import make_engine, sqlite_path
    from kdreg.store.migrate import SCHEMA_HEAD, current_revision

    url, _ = resolve_db_url(db)
    path = sqlite_path(url)
    if path is not None and not path.exists():
        revision = None
    else:
        engine = make_engine(url)
        try:
            revision = current_revision(engine)
        finally:
            engine.dispose()
    state = "up to date" if revision == SCHEMA_HEAD else ("not created yet" if revision is None else "needs upgrade")
    if as_json:
        print_json({"database": str(path or url), "revision": revision, "head": SCHEMA_HEAD, "state": state})
        return
    console.print(f"{path or url}: revision {revision or '-'} (head {SCHEMA_HEAD}, {state})")


@db_app.command("history")
def db_history() -> None:
    """List the schema revisions, newest first."""
    from alembic.script import ScriptDirectory

    from kdreg.store.migrate import alembic_config

    for rev in ScriptDirectory.from_config(alembic_config()).walk_revisions():
        doc = (rev.doc or "").strip().splitlines()[0] if rev.doc else ""
        console.print(f"{rev.revision}  {doc}")


@db_app.command("upgrade")
def db_upgrade(db: DbOption = None) -> None:
    """Create the database or migrate it to the newest schema (a backup is made first for SQLite)."""
    from kdreg.errors import SchemaError
    from kdreg.paths import resolve_db_url
    from kdreg.store.engine import make_engine, sqlite_path
    from kdreg.store.migrate import SCHEMA_HEAD, current_revision, ensure_schema, known_revisions

    url, _ = resolve_db_url(db)
    engine = make_engine(url)
    try:
        before = current_revision(engine)
        if before is not None and before not in known_revisions():
            raise SchemaError(f"Schema revision {before!r} is newer than this kdreg ({SCHEMA_HEAD}); upgrade kdreg.")
        ensure_schema(engine, auto_upgrade=True)  # backs an SQLite file up before migrating it
    finally:
        engine.dispose()
    path = sqlite_path(url)
    note = " (a backup copy was written beside it)" if path and before not in (None, SCHEMA_HEAD) else ""
    console.print(f"{path or url}: {before or 'new'} → {SCHEMA_HEAD}{note}")


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
