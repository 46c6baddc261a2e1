"""``kdreg db``: where the store is, which schema revision it has, and upgrading it."""

from __future__ import annotations

import typer

from kdreg.cli.options import DbOption, JsonOption
from kdreg.cli.output import print_json

db_app = typer.Typer(help="The experiment database: path, schema revision, history, upgrade.")


@db_app.command("path")
def db_path(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Print the database file (or URL, password hidden) kdreg uses."""
    from kdreg.paths import resolve_db_url
    from kdreg.store.engine import sqlite_path

    url, is_default = resolve_db_url(db)
    path = sqlite_path(url)
    where = str(path) if path else _safe_url(url)
    if as_json:
        print_json({"database": where, "default": is_default, "exists": path.exists() if path else None})
        return
    typer.echo(where)


@db_app.command("current")
def db_current(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Show the database's schema revision and the newest one this kdreg knows (reads only)."""
    from kdreg.paths import resolve_db_url
    from kdreg.store.revision import SCHEMA_HEAD, plain_sqlite_file, sqlite_revision

    url, _ = resolve_db_url(db)
    plain = plain_sqlite_file(url)
    if plain is not None and plain.is_file() and sqlite_revision(plain) == SCHEMA_HEAD:
        _print_current(str(plain), SCHEMA_HEAD, "up to date", as_json)  # the usual case, without SQLAlchemy
        return
    from kdreg.store.engine import make_engine, sqlite_path
    from kdreg.store.migrate import schema_state

    path = sqlite_path(url)
    if path is not None and not path.exists():
        revision, state = None, "not created yet"  # do not create an empty file just to look at it
    else:
        engine = make_engine(url, read_only=True)
        try:
            revision, state = schema_state(engine)
        finally:
            engine.dispose()
    _print_current(str(path) if path else _safe_url(url), revision, state, as_json)


def _print_current(where: str, revision: str | None, state: str, as_json: bool) -> None:
    from kdreg.store.revision import SCHEMA_HEAD

    if as_json:
        print_json({"database": where, "revision": revision, "head": SCHEMA_HEAD, "state": state})
        return
    typer.echo(f"{where}: revision {revision or '-'} (head {SCHEMA_HEAD}, {state})")


@db_app.command("history")
def db_history(as_json: JsonOption = False) -> None:
    """List the schema revisions, newest first."""
    from alembic.script import ScriptDirectory

    from kdreg.store.migrate import alembic_config

    rows = [
        {
            "revision": rev.revision,
            "down_revision": rev.down_revision,
            "description": (rev.doc or "").strip().splitlines()[0] if rev.doc else "",
        }
        for rev in ScriptDirectory.from_config(alembic_config()).walk_revisions()
    ]
    if as_json:
        print_json(rows)
        return
    for row in rows:
        typer.echo(f"{row['revision']}  {row['description']}")


@db_app.command("upgrade")
def db_upgrade(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Create the database or migrate it to the newest schema (an SQLite file is backed up first).

    This is also the explicit way to add kdreg's tables to a database other tools already use.
    """
    from kdreg.paths import resolve_db_url
    from kdreg.store.engine import make_engine, sqlite_path
    from kdreg.store.migrate import migrate_database

    url, _ = resolve_db_url(db)
    engine = make_engine(url)
    try:
        change = migrate_database(engine, auto_upgrade=True, adopt_foreign=True)
    finally:
        engine.dispose()
    path = sqlite_path(url)
    where = str(path) if path else _safe_url(url)
    if as_json:
        print_json(
            {
                "database": where,
                "before": change.before,
                "revision": change.after,
                "backup": str(change.backup) if change.backup else None,
            }
        )
        return
    if change.before == change.after:
        typer.echo(f"{where}: already at {change.after}")
        return
    note = f" (backup: {change.backup})" if change.backup else ""
    typer.echo(f"{where}: {change.before or 'new'} → {change.after}{note}")


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
