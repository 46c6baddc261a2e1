"""Schema migrations: fresh databases, checked-in old revisions, refusals that touch nothing."""

from __future__ import annotations

import hashlib
import logging
import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from typer.testing import CliRunner

from kdreg.cli.main import app
from kdreg.errors import SchemaError, StoreError
from kdreg.store.engine import make_engine
from kdreg.store.migrate import (
    SCHEMA_HEAD,
    VERSION_TABLE,
    alembic_config,
    current_revision,
    migrate_database,
)
from kdreg.store.schema import Base
from kdreg.store.store import Store

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
FIXTURE_0001 = FIXTURES / "kdreg-0001.db"
FIXTURE_0004 = FIXTURES / "kdreg-0004.db"


def checksum(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def schema_differences(store: Store) -> list[object]:
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        return list(compare_metadata(context, Base.metadata))


def rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    db = sqlite3.connect(path)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def kdreg(*args: str) -> subprocess.CompletedProcess[str]:
    """The real command in a subprocess."""
    return subprocess.run([sys.executable, "-m", "kdreg", *args], capture_output=True, text=True, timeout=120)


def kdreg_here(*args: str) -> subprocess.CompletedProcess[str]:
    """The same command in this process (Typer's CliRunner): no interpreter start-up."""
    result = CliRunner().invoke(app, list(args))
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)


def test_schema_head_is_alembics_head() -> None:
    script = ScriptDirectory.from_config(alembic_config())
    assert script.get_heads() == [SCHEMA_HEAD]
    assert FIXTURE_0001.exists() and FIXTURE_0004.exists(), "run python tests/fixtures/make_fixtures.py"


def test_fresh_database_is_exactly_the_models_schema(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "new.db"))
    assert store.revision == SCHEMA_HEAD
    assert schema_differences(store) == []
    with store.engine.connect() as conn:
        inspector = inspect(conn)
        tables = set(inspector.get_table_names())
        assert VERSION_TABLE in tables
        assert "alembic_version" not in tables
        assert "results_flat" in inspector.get_view_names()
    assert current_revision(store.engine) == SCHEMA_HEAD
    store.close()
    assert not list(tmp_path.glob("new.db.bak-*"))  # nothing to back up when creating


def test_default_database_at_0001_is_upgraded_with_a_backup(
    kdreg_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    target = kdreg_home / "kdreg.db"
    shutil.copy(FIXTURE_0001, target)
    with caplog.at_level(logging.WARNING, logger="kdreg.store"):
        store = Store()
    assert store.is_default and store.revision == SCHEMA_HEAD
    assert "upgraded" in caplog.text and "from schema 0001" in caplog.text

    (backup,) = kdreg_home.glob("kdreg.db.bak-0001-*")
    assert rows(backup, f"SELECT version_num FROM {VERSION_TABLE}") == [("0001",)]
    assert rows(backup, "SELECT count(*) FROM results") == [(3,)]

    assert schema_differences(store) == []
    assert rows(target, "SELECT id, teacher, loss, stage, seed, status, error FROM runs ORDER BY id") == [
        (1, "mbert", "kl", "finetune", 0, "succeeded", None),
        (2, "mbert", "hidden", "pretrain", 1, "failed", "DataError: corpus missing"),
    ]
    assert rows(target, "SELECT run_id, language, lang, split, metric, value, is_source FROM results_flat "
                        "ORDER BY language") == [
        (1, "de", "de", "test", "accuracy", 0.71, 0),
        (1, "deu_Latn", "de", "validation", "macro_f1", 0.69, 0),
        (1, "en", "en", "test", "accuracy", 0.81, 1),
    ]
    assert rows(target, "SELECT count(*) FROM grid_runs") == [(2,)]
    run = store.find_run(1)
    assert run.curves[0].losses == [2.1, 1.4, 0.9]
    assert run.config == {"seed": 0}
    store.close()


def test_explicit_database_behind_is_refused_with_the_command_to_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "my runs.db"  # a space, so the command must be quoted to be exact
    shutil.copy(FIXTURE_0001, target)
    before = checksum(target)
    with pytest.raises(SchemaError) as info:
        Store(str(target))
    message = str(info.value)
    command = f"kdreg db upgrade --db {shlex.quote(f'sqlite:///{target}')}"
    assert f"is at schema revision 0001, behind {SCHEMA_HEAD}" in message
    assert f"`{command}`" in message
    monkeypatch.setenv("KDREG_DB", str(target))  # KDREG_DB is explicit too
    with pytest.raises(SchemaError):
        Store()
    assert checksum(target) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my runs.db"]  # no lock, no backup, no WAL

    monkeypatch.delenv("KDREG_DB")
    argv = shlex.split(command)
    assert argv[:4] == ["kdreg", "db", "upgrade", "--db"]
    done = kdreg(*argv[1:])
    assert done.returncode == 0, done.stderr
    assert f"0001 → {SCHEMA_HEAD}" in done.stdout and "backup:" in done.stdout
    assert len(list(tmp_path.glob("my runs.db.bak-0001-*"))) == 1
    store = Store(str(target))
    assert store.revision == SCHEMA_HEAD
    assert schema_differences(store) == []
    assert rows(target, "SELECT count(*) FROM results_flat") == [(3,)]
    store.close()


@pytest.mark.parametrize("default", [True, False])
def test_newer_revision_is_refused_and_untouched(kdreg_home: Path, tmp_path: Path, default: bool) -> None:
    target = kdreg_home / "kdreg.db" if default else tmp_path / "newer.db"
    shutil.copy(FIXTURE_0001, target)
    db = sqlite3.connect(target)
    db.execute(f"UPDATE {VERSION_TABLE} SET version_num = 'ffff'")
    db.commit()
    db.close()
    before = checksum(target)
    siblings = sorted(p.name for p in target.parent.iterdir())

    with pytest.raises(SchemaError) as info:
        Store(None if default else str(target))
    assert "revision 'ffff', which this kdreg does not know" in str(info.value)
    assert "the database was not touched" in str(info.value)

    done = kdreg_here("db", "upgrade", "--db", str(target))
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: ")
    assert "'ffff'" in done.stderr

    assert checksum(target) == before
    assert sorted(p.name for p in target.parent.iterdir()) == siblings


def test_garbage_file_is_refused_and_untouched(tmp_path: Path) -> None:
    target = tmp_path / "notes.db"
    target.write_bytes(b"these are my notes, not a database\n" * 50)
    before = checksum(target)
    with pytest.raises(StoreError, match="file is not a database"):
        Store(str(target))
    for args in (("db", "upgrade", "--db", str(target)), ("db", "current", "--db", str(target))):
        done = kdreg_here(*args)
        assert done.returncode == 1, done.stdout
        assert done.stderr.splitlines() == [
            f"error: Cannot read the database {target}: file is not a database; "
            "point --db / KDREG_DB at a kdreg database or a new file."
        ]
    assert checksum(target) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.db"]


def _foreign_database(path: Path, *, table: str = "widgets") -> None:
    db = sqlite3.connect(path)
    db.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, name TEXT)")
    db.execute(f"INSERT INTO {table} (name) VALUES ('sprocket')")
    db.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
    db.execute("INSERT INTO alembic_version VALUES ('abc123')")
    db.commit()
    db.close()


def test_other_tools_database_is_refused_when_opened_and_adopted_on_request(tmp_path: Path) -> None:
    target = tmp_path / "app.db"
    _foreign_database(target)
    before = checksum(target)
    with pytest.raises(SchemaError) as info:
        Store(str(target))
    assert "is not a kdreg database (it has alembic_version, widgets); nothing was written" in str(info.value)
    assert f"kdreg db upgrade --db sqlite:///{target}" in str(info.value)
    assert checksum(target) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.db"]

    done = kdreg_here("db", "upgrade", "--db", str(target))  # the explicit way to share the database
    assert done.returncode == 0, done.stderr
    assert rows(target, "SELECT version_num FROM alembic_version") == [("abc123",)]
    assert rows(target, "SELECT name FROM widgets") == [("sprocket",)]
    store = Store(str(target))
    assert store.revision == SCHEMA_HEAD
    store.close()


def test_colliding_table_names_are_refused_even_on_request(tmp_path: Path) -> None:
    target = tmp_path / "clash.db"
    _foreign_database(target, table="runs")
    before = checksum(target)
    engine = make_engine(f"sqlite:///{target}")
    with pytest.raises(SchemaError, match="runs would collide with kdreg's"):
        migrate_database(engine, adopt_foreign=True)
    engine.dispose()
    assert checksum(target) == before


def test_another_alembic_user_in_the_same_database_does_not_collide(tmp_path: Path) -> None:
    """A second, ordinary Alembic project migrates the same file; each keeps its own version."""
    from alembic import command
    from alembic.config import Config

    target = tmp_path / "shared.db"
    url = f"sqlite:///{target}"
    Store(url).close()

    project = tmp_path / "other_project"
    (project / "versions").mkdir(parents=True)
    (project / "env.py").write_text(textwrap.dedent("""
        from alembic import context
        from sqlalchemy import create_engine

        engine = create_engine(context.config.get_main_option("sqlalchemy.url"))
        with engine.connect() as connection:
            context.configure(connection=connection)  # the default version table: alembic_version
            with context.begin_transaction():
                context.run_migrations()
    """))
    (project / "script.py.mako").write_text("")
    (project / "versions" / "w1_widgets.py").write_text(textwrap.dedent("""
        import sqlalchemy as sa
        from alembic import op

        revision = "w1"
        down_revision = None
        branch_labels = None
        depends_on = None

        def upgrade():
            op.create_table("widgets", sa.Column("id", sa.Integer, primary_key=True))

        def downgrade():
            op.drop_table("widgets")
    """))
    cfg = Config()
    cfg.set_main_option("script_location", str(project))
    cfg.set_main_option("sqlalchemy.url", url)
    command.upgrade(cfg, "head")

    assert rows(target, "SELECT version_num FROM alembic_version") == [("w1",)]
    assert rows(target, f"SELECT version_num FROM {VERSION_TABLE}") == [(SCHEMA_HEAD,)]
    store = Store(url)  # kdreg still sees its own database at head
    assert store.revision == SCHEMA_HEAD
    store.close()
    done = kdreg_here("db", "upgrade", "--db", url)
    assert done.returncode == 0, done.stderr
    assert "already at" in done.stdout
    assert rows(target, "SELECT version_num FROM alembic_version") == [("w1",)]


@pytest.mark.parametrize("revision", ["0001", "0004"])
def test_fixture_builder_is_reproducible(tmp_path: Path, revision: str) -> None:
    """The checked-in databases are what make_fixtures.py builds (so they can be rebuilt and reviewed)."""
    env = {**os.environ, "PYTHONPATH": str(FIXTURES)}
    code = (
        f"import sys; from pathlib import Path; from make_fixtures import build_{revision}; "
        f"build_{revision}(Path(sys.argv[1]))"
    )
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "again.db")],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    fixture = FIXTURES / f"kdreg-{revision}.db"
    assert dump(tmp_path / "again.db") == dump(fixture)  # content, not bytes: SQLite versions differ


def dump(path: Path) -> list[str]:
    db = sqlite3.connect(path)
    try:
        return list(db.iterdump())
    finally:
        db.close()
