"""Read commands open the database read-only: an archived study can be read, and reading never writes.

Tests run as root, whom permission bits do not stop, so the read-only situations here bind
root too: a read-only bind mount of the database's folder, and ``chattr +i`` on the folder
and the file. Each is skipped, with the reason, where it cannot be set up (no privilege, a
file system without immutable files).
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from typer.testing import CliRunner

from kdreg.api import connect
from kdreg.cli.main import app
from kdreg.errors import SchemaError
from kdreg.store.migrate import SCHEMA_HEAD, VERSION_TABLE
from kdreg.store.reading import open_reader
from kdreg.store.store import Store
from kdreg.testing.store_data import seeded_copy

FIXTURE_0001 = Path(__file__).resolve().parent.parent / "fixtures" / "kdreg-0001.db"
READ_COMMANDS = (
    ("query", "--format", "csv"),
    ("show", "1", "--json"),
    ("report", "--format", "csv"),
    ("export", "--format", "jsonl"),
    ("db", "current", "--json"),
)


def checksum(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def kdreg(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, list(args))


def _run(*command: str) -> bool:
    return subprocess.run(command, capture_output=True).returncode == 0


def _writable(folder: Path) -> bool:
    probe = folder / "probe"
    try:
        probe.write_text("x")
    except OSError:
        return False
    probe.unlink()
    return True


@contextlib.contextmanager
def read_only_mount(source: Path, view: Path) -> Iterator[Path]:
    view.mkdir()
    if shutil.which("mount") is None or not _run("mount", "--bind", str(source), str(view)):
        pytest.skip("cannot bind-mount here (needs root with CAP_SYS_ADMIN)")
    try:
        if not _run("mount", "-o", "remount,bind,ro", str(view)) or _writable(view):
            pytest.skip("cannot remount a bind mount read-only here")
        yield view
    finally:
        subprocess.run(["umount", "-l", str(view)], capture_output=True)


@contextlib.contextmanager
def immutable(folder: Path) -> Iterator[Path]:
    files = [*folder.iterdir(), folder]
    if shutil.which("chattr") is None or not _run("chattr", "+i", *map(str, files)):
        pytest.skip("cannot chattr +i here (needs CAP_LINUX_IMMUTABLE and a file system that has it)")
    try:
        if _writable(folder):
            pytest.skip("chattr +i does not stop writes here")
        yield folder
    finally:
        subprocess.run(["chattr", "-i", *map(str, files)], capture_output=True)


@pytest.fixture()
def seeded(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Path:
    """A kdreg database (WAL mode, as kdreg leaves it) alone in its folder."""
    cache = tmp_path_factory.getbasetemp() / "synthetic-store-cache"
    cache.mkdir(exist_ok=True)
    folder = tmp_path / "archive"
    seeded_copy(cache, folder / "kdreg.db")
    with contextlib.closing(sqlite3.connect(folder / "kdreg.db")) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert sorted(p.name for p in folder.iterdir()) == ["kdreg.db"]
    return folder / "kdreg.db"


@pytest.fixture(params=["read-only mount", "chattr +i"])
def read_only_db(request: pytest.FixtureRequest, seeded: Path, tmp_path: Path) -> Iterator[Path]:
    """The seeded database in a folder nobody, root included, can write."""
    if request.param == "read-only mount":
        with read_only_mount(seeded.parent, tmp_path / "view") as view:
            yield view / seeded.name
    else:
        with immutable(seeded.parent):
            yield seeded


def test_every_read_command_reads_a_read_only_database(read_only_db: Path) -> None:
    before = checksum(read_only_db)
    for command in READ_COMMANDS:
        done = kdreg(*command, "--db", str(read_only_db))
        assert done.exit_code == 0, (command, done.output)
        assert done.stdout.strip(), command
    assert '"state": "up to date"' in kdreg("db", "current", "--db", str(read_only_db), "--json").stdout
    with connect(str(read_only_db)) as store:
        assert len(store.runs(frame=False)) > 0 and store.run(1)["id"] == 1
    assert checksum(read_only_db) == before
    assert sorted(p.name for p in read_only_db.parent.iterdir()) == ["kdreg.db"]


def test_the_read_path_opens_sqlite_read_only(seeded: Path) -> None:
    reader = open_reader(str(seeded))
    store = Store(str(seeded), read_only=True)
    try:
        assert reader.engine is None  # at head: the standard library's sqlite3, read-only by its URI
        assert "mode=ro" in reader.sqlite_uri and "immutable" not in reader.sqlite_uri  # folder writable
        with contextlib.closing(sqlite3.connect(reader.sqlite_uri, uri=True)) as conn:
            with pytest.raises(sqlite3.OperationalError, match="readonly database"):
                conn.execute("DELETE FROM results")
        engine = store.engine
        assert engine.url.query["mode"] == "ro" and "immutable" not in engine.url.query
        with engine.connect() as conn, pytest.raises(OperationalError, match="readonly database"):
            conn.execute(text("DELETE FROM results"))
        assert store.find_run(1).id == 1
    finally:
        reader.close()
        store.close()
    with contextlib.closing(sqlite3.connect(seeded)) as db:
        assert db.execute("SELECT count(*) FROM results").fetchone()[0] > 0


def test_a_read_only_folder_is_read_immutable_unless_a_writer_keeps_its_wal(
    seeded: Path, tmp_path: Path
) -> None:
    with read_only_mount(seeded.parent, tmp_path / "view") as view:
        reader = open_reader(str(view / seeded.name))
        assert "immutable=1" in reader.sqlite_uri  # no -shm, and none can be made
        reader.close()
        # A writer elsewhere (the folder is writable for it) holds changes in the WAL: the
        # read-only view must see them, which immutable would not.
        writer = sqlite3.connect(seeded)
        try:
            writer.execute("PRAGMA wal_autocheckpoint = 0")
            writer.execute("UPDATE runs SET teacher = 'newest' WHERE id = 1")
            writer.commit()
            assert Path(f"{seeded}-shm").exists()
            done = kdreg("query", "--teacher", "newest", "--format", "csv", "--db", str(view / seeded.name))
            assert done.exit_code == 0, done.output
            assert done.stdout.count("\n") == 2  # header and run 1
        finally:
            writer.close()


@pytest.mark.parametrize("command", READ_COMMANDS, ids=lambda c: c[0] if c[0] != "db" else "db current")
def test_read_commands_never_create_the_schema_in_an_empty_file(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    done = kdreg(*command, "--db", str(empty))
    if command[0] == "db":
        assert done.exit_code == 0 and '"state": "not created yet"' in done.stdout
    else:
        assert done.exit_code == 1
        assert "holds no kdreg data yet" in done.stderr and "never create" in done.stderr
        assert done.stderr.count("\n") == 1
    assert empty.stat().st_size == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.db"]


def test_an_older_default_database_is_upgraded_with_a_backup_by_a_read_as_documented(
        kdreg_home: Path) -> None:
    target = kdreg_home / "kdreg.db"
    shutil.copy(FIXTURE_0001, target)
    done = kdreg("query", "--format", "csv")
    assert done.exit_code == 0, done.stderr
    assert len(list(kdreg_home.glob("kdreg.db.bak-*"))) == 1  # the old file, kept
    with sqlite3.connect(target) as db:
        assert db.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchall() == [(SCHEMA_HEAD,)]


def test_an_older_database_named_by_url_is_refused_by_reads_and_left_alone(tmp_path: Path) -> None:
    target = tmp_path / "old.db"
    shutil.copy(FIXTURE_0001, target)
    before = checksum(target)
    with pytest.raises(SchemaError, match=f"behind {SCHEMA_HEAD}.*`kdreg db upgrade --db"):
        open_reader(str(target))
    done = kdreg("query", "--db", str(target))
    assert done.exit_code == 1 and "read commands never write" in done.stderr
    assert checksum(target) == before and not list(tmp_path.glob("old.db.bak-*"))
