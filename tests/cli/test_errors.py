"""User mistakes end in one red line on stderr, exit code 1, and nothing written.

Most cases run the real command in a subprocess; the many spelling mistakes of a
plugin spec go through Typer's CliRunner (same code path, same stderr, no start-up
cost). The plugin used here is a real installed distribution as far as
``importlib.metadata`` is concerned: a module and a ``*.dist-info`` folder (METADATA,
entry_points.txt) on the path, written by the test.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kdreg.cli.main import app

PLUGIN = '''
from dataclasses import dataclass
from kdreg.plugins.spec import Loss


class ErrKL(Loss):
    """A loss with typed parameters, for error messages."""

    @dataclass(frozen=True)
    class Params:
        temperature: float = 1.0
        layers: int = 2

        def __post_init__(self) -> None:
            if self.layers == 99:  # a plugin bug kdreg did not foresee
                raise ZeroDivisionError("division by zero in the plugin")

    def compute(self, student, teacher, batch):
        raise NotImplementedError
'''


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("errors-site")
    (site / "kdreg_errplug.py").write_text(PLUGIN)
    info = site / "kdreg_errplug-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: kdreg-errplug\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[kdreg.losses]\nerrkl = kdreg_errplug:ErrKL\n")
    return site


def kdreg(*args: str, pythonpath: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, **env}
    if pythonpath is not None:
        full["PYTHONPATH"] = str(pythonpath)
    return subprocess.run([sys.executable, "-m", "kdreg", *args], capture_output=True, text=True, env=full,
                          timeout=120)


def the_error(done: subprocess.CompletedProcess[str]) -> str:
    """The single stderr line of a failed command (asserting there is exactly one)."""
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    return lines[0][len("error: "):]


def checksum(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("errkll", "No plugin named 'errkll'. Did you mean 'errkl'"),
        ("loss/errkll:layers=3", "No loss plugin named 'errkll'. Did you mean 'errkl'"),
        ("errkl:temperature", "Malformed parameter 'temperature' in 'errkl:temperature'"),
        ("errkl:", "Nothing after ':' in 'errkl:'"),
        ("bad name!", "Malformed plugin name 'bad name!'"),
        ("errkl:temperature=hot", "Parameter errkl:temperature must be float, got 'hot'."),
        ("errkl:layers=2.5", "Parameter errkl:layers must be int, got '2.5'."),
        ("errkl:depth=3", "Plugin 'errkl' has no parameter 'depth' (its parameters: layers, temperature)"),
    ],
)
def test_plugin_spec_errors(
    plugin_path: Path, kdreg_home: Path, monkeypatch: pytest.MonkeyPatch, spec: str, expected: str
) -> None:
    monkeypatch.syspath_prepend(str(plugin_path))
    result = CliRunner().invoke(app, ["plugins", "show", spec])
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert expected in lines[0]
    assert not kdreg_home.exists() or list(kdreg_home.iterdir()) == []


def test_plugin_spec_error_in_a_subprocess(plugin_path: Path) -> None:
    message = the_error(kdreg("plugins", "show", "errkl:temperature=hot", pythonpath=plugin_path))
    assert message == "Parameter errkl:temperature must be float, got 'hot'."


def test_errors_from_kdreg_run_write_nothing(kdreg_home: Path) -> None:
    base = ("run", "--teacher", "synthetic", "--student", "synthetic", "--benchmark", "synthetic",
            "--corpus", "synthetic")
    assert "No loss plugin named 'klx'" in the_error(kdreg(*base, "--loss", "klx"))
    assert "Malformed parameter" in the_error(kdreg(*base, "--loss", "kl:temperature"))
    assert "must be float, got 'hot'" in the_error(kdreg(*base, "--loss", "kl:temperature=hot"))
    assert "Unknown device 'tpu'" in the_error(kdreg(*base, "--device", "tpu", "--dry-run"))
    assert "Only the distributions in KDREG_PLUGINS_ALLOW='other'" in the_error(
        kdreg(*base, "--dry-run", KDREG_PLUGINS_ALLOW="other"))
    long_loss = "+".join(["0.001*kl"] * 120)  # a valid loss whose spec is longer than the store keeps
    too_long = kdreg(*base, "--loss", long_loss, "--stage", "finetune")
    assert "the store keeps at most 200" in the_error(too_long)
    assert not (kdreg_home / "kdreg.db").exists()
    assert not kdreg_home.exists() or list(kdreg_home.iterdir()) == []


@pytest.mark.parametrize("kind", ["garbage", "foreign", "directory"])
def test_unusable_database_errors_write_nothing(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "target.db"
    if kind == "garbage":
        target.write_bytes(b"\x00\x01not sqlite at all\n" * 100)
    elif kind == "foreign":
        db = sqlite3.connect(target)
        db.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
        db.commit()
        db.close()
    else:
        target.mkdir()
    before = checksum(target) if target.is_file() else None
    if kind == "directory":
        done = kdreg("db", "upgrade", "--db", str(target))
    else:
        done = kdreg("run", "--teacher", "synthetic", "--benchmark", "synthetic", "--stage", "none", "--db",
                     str(target))
    message = the_error(done)
    assert str(target) in message
    expected = {
        "garbage": "file is not a database",
        "foreign": "is not a kdreg database",
        "directory": "unable to open database file",
    }[kind]
    assert expected in message
    if before is not None:
        assert checksum(target) == before
    assert [p.name for p in tmp_path.iterdir()] == ["target.db"]


def test_an_unforeseen_error_is_one_line_too(plugin_path: Path) -> None:
    """A bug (here a plugin's) is not a traceback on the user's terminal, unless they ask for it."""
    message = the_error(kdreg("plugins", "show", "errkl:layers=99", pythonpath=plugin_path))
    assert message.startswith("unexpected ZeroDivisionError: division by zero in the plugin")
    assert "KDREG_DEBUG=1 shows the traceback" in message
    done = kdreg("plugins", "show", "errkl:layers=99", pythonpath=plugin_path, KDREG_DEBUG="1")
    assert done.returncode == 1 and "Traceback (most recent call last)" in done.stderr


def test_debug_shows_the_traceback(plugin_path: Path) -> None:
    done = kdreg("plugins", "show", "errkl:temperature=hot", pythonpath=plugin_path, KDREG_DEBUG="1")
    assert done.returncode == 1
    assert "Traceback (most recent call last)" in done.stderr
    assert "kdreg.errors.ParameterError: Parameter errkl:temperature must be float" in done.stderr


@pytest.mark.parametrize("command", [["query"], ["run"], ["cache", "clear"], ["db", "path"],
                                     ["plugins", "show"]])
def test_help_of_every_command_exits_0_with_nothing_on_stderr(command: list[str]) -> None:
    """Typer's own exits (help, usage errors) pass through the catch-all for unforeseen errors."""
    done = CliRunner().invoke(app, [*command, "--help"])
    assert (done.exit_code, done.stderr) == (0, ""), done.output
    assert "Usage:" in done.stdout
    usage = CliRunner().invoke(app, [*command, "--no-such-option"])
    assert usage.exit_code == 2 and "unexpected" not in usage.output


# ------------------------------------------- errors once shown as bugs ("unexpected ...", issue 14)
def here(*args: str, **env: str):  # type: ignore[no-untyped-def]
    """The command through Typer's CliRunner (same path as the real one, no start-up cost)."""
    result = CliRunner().invoke(app, list(args), env=env or None)
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)


def test_a_postgresql_url_with_a_port_that_is_no_number() -> None:
    message = the_error(here("query", "--db", "postgresql+psycopg://me:secret@db.example:abc/kdreg"))
    assert "Not a database URL" in message and "the port is a number" in message
    assert "secret" not in message and "unexpected" not in message


def test_a_database_folder_below_a_regular_file(tmp_path: Path, kdreg_home: Path) -> None:
    blocker = tmp_path / "notes.txt"
    blocker.write_text("x")
    base = ("run", "--teacher", "synthetic", "--benchmark", "synthetic", "--stage", "none")
    message = the_error(here(*base, "--db", str(blocker / "sub" / "kdreg.db")))
    assert f"{blocker} is a file, not a folder" in message and "unexpected" not in message
    message = the_error(here(*base, KDREG_HOME=str(blocker / "home")))
    assert f"{blocker} is a file, not a folder" in message and "KDREG_HOME" in message
    assert blocker.read_text() == "x"


def test_a_hundred_thousand_character_hf_path() -> None:
    message = the_error(here("run", "--teacher", "hf:path=" + "a" * 100_000, "--dry-run"))
    assert "hf:path is 100,000 characters" in message and "at most 1,000" in message
    message = the_error(here("run", "--teacher", "hf:path=" + "a" * 300, "--dry-run"))  # one part too long
    assert "is not a usable path (File name too long)" in message


def test_a_limit_beyond_sql_integers(tmp_path: Path) -> None:
    from kdreg.testing.store_data import seeded_copy

    seeded_copy(tmp_path, tmp_path / "kdreg.db")
    message = the_error(here("query", "-n", "99999999999999999999", "--db", str(tmp_path / "kdreg.db")))
    assert "--limit 99999999999999999999 is out of range: give 1 to 9,223,372,036,854,775,807" in message


def test_a_student_that_cannot_be_built_for_its_teacher_is_refused_before_anything_is_written(
        tiny_bert: Path, kdreg_home: Path) -> None:
    base = ("run", "--teacher", f"hf:path={tiny_bert}", "--benchmark", "synthetic", "--stage", "none")
    message = the_error(here(*base, "--student", "layers:k=3", "--dry-run"))
    assert message == "layers:k=3 is out of range: the teacher has 2 layers, so 1 <= k <= 2."
    assert "layers:k=3 is out of range" in the_error(here(*base, "--student", "layers:k=1,layers:k=3"))
    assert not (kdreg_home / "kdreg.db").exists()
