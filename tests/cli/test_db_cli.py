"""`kdreg db path|current|history|upgrade`, for people and with --json for machines."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from typer.testing import CliRunner

from kdreg.cli.main import app
from kdreg.store.migrate import SCHEMA_HEAD, VERSION_TABLE, alembic_config

FIXTURE_0001 = Path(__file__).resolve().parents[1] / "fixtures" / "kdreg-0001.db"


def cli(*args: str) -> Any:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout) if "--json" in args else result.stdout


def test_path(kdreg_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert cli("db", "path") == f"{kdreg_home / 'kdreg.db'}\n"
    default = {"database": str(kdreg_home / "kdreg.db"), "default": True, "exists": False}
    assert cli("db", "path", "--json") == default
    monkeypatch.chdir(tmp_path)
    assert cli("db", "path", "--db", "runs.db", "--json")["database"] == str(tmp_path / "runs.db")
    monkeypatch.setenv("KDREG_DB", "postgresql+psycopg://me:s3cret@db.example/kd")
    shown = cli("db", "path", "--json")
    assert shown["database"] == "postgresql+psycopg://me:***@db.example/kd"
    assert (shown["default"], shown["exists"]) == (False, None)
    assert not (kdreg_home / "kdreg.db").exists()


def test_current_reports_every_state_without_writing(kdreg_home: Path, tmp_path: Path) -> None:
    assert cli("db", "current", "--json") == {
        "database": str(kdreg_home / "kdreg.db"),
        "revision": None,
        "head": SCHEMA_HEAD,
        "state": "not created yet",
    }
    assert not (kdreg_home / "kdreg.db").exists()  # looking does not create

    old = tmp_path / "old.db"
    shutil.copy(FIXTURE_0001, old)
    assert cli("db", "current", "--db", str(old), "--json")["state"] == "needs upgrade"
    line = cli("db", "current", "--db", str(old))
    assert line == f"{old}: revision 0001 (head {SCHEMA_HEAD}, needs upgrade)\n"

    newer = tmp_path / "newer.db"
    shutil.copy(FIXTURE_0001, newer)
    with sqlite3.connect(newer) as db:
        db.execute(f"UPDATE {VERSION_TABLE} SET version_num = 'ffff'")
    assert cli("db", "current", "--db", str(newer), "--json")["state"] == "newer than this kdreg"

    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE notes (id INTEGER)")
    assert cli("db", "current", "--db", str(foreign), "--json")["state"] == "not a kdreg database"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["foreign.db", "newer.db", "old.db"]


def test_history_lists_revisions_newest_first() -> None:
    expected = [rev.revision for rev in ScriptDirectory.from_config(alembic_config()).walk_revisions()]
    history = cli("db", "history", "--json")
    assert [row["revision"] for row in history] == expected
    assert expected[0] == SCHEMA_HEAD and expected[-1] == "0001"
    assert history[-1]["down_revision"] is None
    assert history[-1]["description"] == "initial schema: grids, runs, results, curves"
    assert cli("db", "history").splitlines()[-1] == "0001  initial schema: grids, runs, results, curves"


def test_upgrade_creates_upgrades_and_reports_the_backup(kdreg_home: Path, tmp_path: Path) -> None:
    created = cli("db", "upgrade", "--json")
    assert created == {"database": str(kdreg_home / "kdreg.db"), "before": None, "revision": SCHEMA_HEAD,
                       "backup": None}
    assert cli("db", "current", "--json")["state"] == "up to date"
    assert cli("db", "upgrade") == f"{kdreg_home / 'kdreg.db'}: already at {SCHEMA_HEAD}\n"

    old = tmp_path / "old.db"
    shutil.copy(FIXTURE_0001, old)
    upgraded = cli("db", "upgrade", "--db", f"sqlite:///{old}", "--json")
    assert (upgraded["before"], upgraded["revision"]) == ("0001", SCHEMA_HEAD)
    backup = Path(upgraded["backup"])
    assert backup.parent == tmp_path and backup.name.startswith("old.db.bak-0001-")
    with sqlite3.connect(backup) as db:
        assert db.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchall() == [("0001",)]
    with sqlite3.connect(old) as db:
        assert db.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchall() == [(SCHEMA_HEAD,)]
        assert db.execute("SELECT count(*) FROM runs").fetchone() == (2,)


def test_current_on_an_up_to_date_file_says_what_the_full_check_says(kdreg_home: Path) -> None:
    """The standard-library read (plain sqlite:/// URL) and SQLAlchemy's (any other spelling) agree."""
    from kdreg.store.revision import plain_sqlite_file, sqlite_revision

    cli("db", "upgrade")
    path = kdreg_home / "kdreg.db"
    assert plain_sqlite_file(f"sqlite:///{path}") == path and sqlite_revision(path) == SCHEMA_HEAD
    assert plain_sqlite_file(f"sqlite:///{path}?timeout=5") is None  # SQLAlchemy reads that one
    for fmt in ((), ("--json",)):
        light = cli("db", "current", "--db", f"sqlite:///{path}", *fmt)
        full = cli("db", "current", "--db", f"sqlite:///{path}?timeout=5", *fmt)
        assert light == full and "up to date" in str(light)
    assert sqlite_revision(kdreg_home / "missing.db") is None and not (kdreg_home / "missing.db").exists()
