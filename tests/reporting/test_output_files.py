"""Output paths of `kdreg export` and `kdreg report --out` never harm the database or a device."""

from __future__ import annotations

import csv
import io
import os
import stat
from pathlib import Path
from typing import IO

import pytest
from typer.testing import CliRunner

from kdreg.cli.main import app
from kdreg.errors import ConfigError
from kdreg.reporting.output_files import write_file
from kdreg.testing.store_data import seeded_copy


@pytest.fixture()
def db(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Path:
    cache = tmp_path_factory.getbasetemp() / "synthetic-store-cache"
    cache.mkdir(exist_ok=True)
    path = tmp_path / "kdreg.db"
    seeded_copy(cache, path)
    return path


def kdreg(db: Path, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, [*args, "--db", str(db)])


def one_line_error(done, *needles: str) -> None:  # type: ignore[no-untyped-def]
    assert done.exit_code == 1, done.output
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
    for needle in needles:
        assert needle in done.stderr


def test_export_refuses_to_overwrite_the_database_it_reads(db: Path) -> None:
    before = db.read_bytes()
    one_line_error(kdreg(db, "export", "-o", str(db)), "it is the database being read")
    same_file_other_spelling = db.parent / "." / db.name
    one_line_error(kdreg(db, "export", "-o", str(same_file_other_spelling)), "database being read")
    assert db.read_bytes() == before
    assert kdreg(db, "query", "--limit", "1").exit_code == 0


def test_report_out_refuses_a_folder_whose_report_file_is_the_database(tmp_path: Path, db: Path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    named_like_a_report = folder / "report.csv"
    db.rename(named_like_a_report)
    before = named_like_a_report.read_bytes()
    one_line_error(kdreg(named_like_a_report, "report", "--out", str(folder)), "database being read")
    assert named_like_a_report.read_bytes() == before
    # nothing else written either, except what a read-only SQLite reader of a WAL database keeps
    # beside it: an empty -wal and the -shm index (only a writer can remove them)
    assert {p.name for p in folder.iterdir()} - {"report.csv-wal", "report.csv-shm"} == {"report.csv"}
    assert not (folder / "report.csv-wal").exists() or (folder / "report.csv-wal").stat().st_size == 0


@pytest.mark.parametrize("target", ["", "."])
def test_an_output_path_without_a_file_name_is_one_line(db: Path, target: str) -> None:
    one_line_error(kdreg(db, "export", "-o", target), "names no file")


def test_a_file_in_the_middle_of_the_path_is_one_line(tmp_path: Path, db: Path) -> None:
    blocker = tmp_path / "existing.txt"
    blocker.write_text("x")
    one_line_error(kdreg(db, "export", "-o", str(blocker / "sub.csv")), "Cannot write", "Not a directory")
    assert blocker.read_text() == "x"


def test_a_device_is_written_through_not_replaced(tmp_path: Path, db: Path) -> None:
    """`-o /dev/stdout` and friends: the target stays what it was (here a link to /dev/null)."""
    link = tmp_path / "sink.csv"
    link.symlink_to(os.devnull)
    done = kdreg(db, "export", "-o", str(link))
    assert done.exit_code == 0, done.output
    assert link.is_symlink() and stat.S_ISCHR(os.stat(link).st_mode)
    assert not list(tmp_path.glob("*.partial"))


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_device_is_one_line_and_stays_a_device(db: Path) -> None:
    one_line_error(kdreg(db, "export", "-o", "/dev/full"), "Cannot write /dev/full")
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_a_regular_file_is_replaced_whole_or_not_at_all(tmp_path: Path, db: Path) -> None:
    out = tmp_path / "results.csv"
    out.write_text("old\n")

    def fails(handle: IO[bytes]) -> None:
        handle.write(b"half")
        handle.flush()
        raise OSError(28, "No space left on device")

    with pytest.raises(ConfigError, match="No space left"):
        write_file(out, fails)
    assert out.read_text() == "old\n" and not list(tmp_path.glob("*.partial"))
    assert kdreg(db, "export", "--seed", "0", "-o", str(out)).exit_code == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert rows and {r["seed"] for r in rows} == {"0"}


# --------------------------------------------------------------- planted links (issue 14, item 5)
def test_a_planted_partial_link_is_never_written_through(tmp_path: Path, db: Path) -> None:
    """Another user plants OUT.partial -> a file of yours: the export must not overwrite that file."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    out = tmp_path / "results.csv"
    planted = tmp_path / "results.csv.partial"
    planted.symlink_to(victim)
    done = kdreg(db, "export", "-o", str(out))
    assert done.exit_code == 0, done.output
    assert victim.read_text() == "precious\n"
    assert planted.is_symlink() and not out.is_symlink()
    assert out.read_text().startswith("run_id,")
    left = {p.name for p in tmp_path.iterdir()} - {"kdreg.db-wal", "kdreg.db-shm"}  # SQLite's own
    assert left == {"kdreg.db", "results.csv", "results.csv.partial", "victim.txt"}  # no temporary file


def test_report_out_never_writes_through_planted_links(tmp_path: Path, db: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    folder = tmp_path / "out"
    folder.mkdir()
    names = ["report.md", "report.tex", "report.csv", "report.html", "report.png"]
    for name in names:
        (folder / f"{name}.partial").symlink_to(victim)
    done = kdreg(db, "report", "--out", str(folder))
    assert done.exit_code == 0, done.output
    assert victim.read_text() == "precious\n"
    assert all((folder / name).is_file() and not (folder / name).is_symlink()
               for name in names if name != "report.png" or (folder / name).exists())


@pytest.mark.parametrize("dangling", [False, True])
def test_an_output_that_is_a_link_to_a_file_is_refused(tmp_path: Path, db: Path, dangling: bool) -> None:
    victim = tmp_path / "victim.txt"
    if not dangling:
        victim.write_text("precious\n")
    out = tmp_path / "results.csv"
    out.symlink_to(victim)
    one_line_error(kdreg(db, "export", "-o", str(out)), "is a symbolic link", "victim.txt")
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "report.csv").symlink_to(victim)
    one_line_error(kdreg(db, "report", "--out", str(folder)), "is a symbolic link")
    assert sorted(p.name for p in folder.iterdir()) == ["report.csv"]  # checked before anything is written
    assert victim.read_text() == "precious\n" if not dangling else not victim.exists()


# ------------------------------------------------- kdreg's own files beside the database (item 9)
@pytest.mark.parametrize("suffix", [".lock", "-wal", "-shm", "-journal", ".bak-0001-20240101T000000000000"])
def test_files_kdreg_keeps_beside_the_database_are_refused(db: Path, suffix: str) -> None:
    own = db.with_name(db.name + suffix)
    if suffix.startswith("."):  # SQLite manages -wal, -shm and -journal itself; kdreg's are planted here
        own.write_bytes(b"kept")
    one_line_error(kdreg(db, "export", "-o", str(own)), "a file kdreg keeps beside the database")
    if suffix.startswith("."):
        assert own.read_bytes() == b"kept"
    else:  # SQLite may have made it while reading; the export's CSV must not be in it
        assert not own.exists() or b"run_id" not in own.read_bytes()
    assert not list(own.parent.glob("*.partial"))


def test_report_keeps_matplotlibs_cache_under_kdregs_cache(tmp_path: Path, db: Path) -> None:
    """Without MPLCONFIGDIR, matplotlib would write ~/.cache/matplotlib, outside KDREG_HOME."""
    pytest.importorskip("matplotlib")
    import subprocess
    import sys

    home, kdreg_home = tmp_path / "user-home", tmp_path / "kdreg-home"
    home.mkdir()
    unset = ("MPLCONFIGDIR", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "KDREG_CACHE")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env.update(HOME=str(home), KDREG_HOME=str(kdreg_home))
    command = [sys.executable, "-m", "kdreg", "report", "--db", str(db), "--out", str(tmp_path / "out")]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "report.png").is_file()
    assert list(home.rglob("*")) == []
    assert any((kdreg_home / "cache" / "matplotlib").iterdir())  # its font cache
