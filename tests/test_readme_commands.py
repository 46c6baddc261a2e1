"""The README's query, report and export commands run as written against a seeded store."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kdreg.cli.main import app
from kdreg.testing.store_data import seeded_copy

README = Path(__file__).resolve().parent.parent / "README.md"


def _section_commands(title: str) -> list[list[str]]:
    text = README.read_text(encoding="utf-8")
    section = text.split(f"## {title}", 1)[1].split("\n## ", 1)[0]
    block = re.findall(r"```bash\n(.*?)```", section, flags=re.S)[0]
    commands = []
    for line in block.splitlines():
        line = line.split(" #", 1)[0].strip()
        if line:
            commands.append(shlex.split(line.split(">", 1)[0]))
    return commands


@pytest.fixture(scope="module")
def store_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("seeded-store")


@pytest.mark.parametrize("argv", _section_commands("Querying and reports"), ids=" ".join)
def test_readme_query_commands_run(argv: list[str], kdreg_home: Path, tmp_path: Path, store_cache: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    seeded_copy(store_cache, kdreg_home / "kdreg.db")
    monkeypatch.chdir(tmp_path)
    assert argv[0] == "kdreg"
    if argv[1] == "show":  # the README's run id is an example; use one that exists
        argv = [*argv[:2], "1"]
    result = CliRunner().invoke(app, argv[1:])
    assert result.exit_code == 0, result.output
    assert result.output.strip()


@pytest.mark.parametrize("argv", _section_commands("The database"), ids=" ".join)
def test_readme_db_commands_run(argv: list[str], kdreg_home: Path) -> None:
    result = CliRunner().invoke(app, argv[1:])
    assert result.exit_code == 0, result.output
