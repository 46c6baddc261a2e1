"""Every code block of docs/plugins.md is exercised.

* ``python``/``toml`` blocks with ``file=PATH`` are written into a workspace: together they
  are the ``kdreg-tutorial`` package (and a grid file), which is pip-installed as a real
  distribution (offline, ``--target``) once per session;
* the other ``python`` blocks run in order, in the workspace, in one namespace;
* every ``toml`` block parses, and the tutorial's entry points name classes its files define;
* every ``shell`` line is run — ``kdreg plugins ...`` through the CLI app in this process
  with the installation on ``sys.path``, ``kdreg run``/``query`` in a subprocess — or is one
  of the quick-start lines that tests/test_plugin_authoring.py runs for real (listed
  below, and checked to still be there);
* the tutorial's test file is exercised by calling each of its test functions.
"""

from __future__ import annotations

import ast
import os
import re
import shlex
import subprocess
import sys
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "plugins.md"
AUTHORING_TESTS = ROOT / "tests" / "test_plugin_authoring.py"
FENCE = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```\s*$", re.M | re.S)
LANGUAGES = {"python", "toml", "shell"}

# The quick start scaffolds, installs, checks and tests `my-loss`: exactly what these tests do.
COVERED_BY_AUTHORING_TESTS = {
    "pip install -e ./kdreg-my-loss": "authoring",
    "kdreg plugins check my-loss": "test_plugins_check_passes_for_the_scaffold_and_the_example",
    "pytest kdreg-my-loss": "test_the_scaffold_and_the_example_pass_their_own_tests",
}


@dataclass(frozen=True)
class Block:
    language: str
    file: str | None
    text: str
    line: int


def doc_blocks() -> list[Block]:
    text = DOC.read_text(encoding="utf-8")
    out = []
    for match in FENCE.finditer(text):
        attrs = dict(re.findall(r"(\w+)=(\S+)", match.group(2)))
        out.append(
            Block(match.group(1), attrs.get("file"), match.group(3), text.count("\n", 0, match.start()) + 1)
        )
    return out


def shell_lines() -> list[str]:
    return [
        line.strip()
        for b in doc_blocks()
        if b.language == "shell"
        for line in b.text.splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]


def toml_loads(text: str) -> dict[str, Any]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    return tomllib.loads(text)


def run(
    argv: list[str], workspace: dict[str, Path], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(workspace["site"]),
        "PYTHONDONTWRITEBYTECODE": "1",
        "COLUMNS": "200",
    }
    if argv[0] == "kdreg":
        argv = [sys.executable, "-m", "kdreg", *argv[1:]]
    elif argv[0] == "pytest":
        argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *argv[1:]]
    return subprocess.run(
        argv, capture_output=True, text=True, env=env, cwd=workspace["root"], timeout=timeout
    )


@pytest.fixture(scope="session")
def workspace(tmp_path_factory: pytest.TempPathFactory,
    pip_install: Callable[..., None]) -> dict[str, Path]:
    """The guide's files written out, its package installed, its snippets run (in that order)."""
    root = tmp_path_factory.mktemp("docs-plugins")
    for block in doc_blocks():
        if block.file:
            path = root / block.file
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(block.text, encoding="utf-8")
    site = root / "site"
    pip_install(site, root / "kdreg-tutorial")
    # Snippets import the tutorial's modules; its folder is on sys.path only while they run,
    # so no other test's registry sees the tutorial's entry points.
    module = types.ModuleType("docs_plugins_snippets")  # dataclasses look their module up
    cwd = Path.cwd()
    sys.path.insert(0, str(site))
    sys.modules[module.__name__] = module
    os.chdir(root)
    try:
        for block in doc_blocks():
            if block.language == "python" and not block.file:
                exec(compile(block.text, f"{DOC}:{block.line}", "exec"), module.__dict__)
    finally:
        os.chdir(cwd)
        sys.path.remove(str(site))
        del sys.modules[module.__name__]
    return {"root": root, "site": site}


def test_the_guide_has_only_blocks_the_test_knows_how_to_run() -> None:
    blocks = doc_blocks()
    assert {b.language for b in blocks} <= LANGUAGES, "add a handler for the new kind of block"
    assert len([b for b in blocks if b.file and b.language == "python"]) == 7  # __init__, 5 kinds, tests
    for block in blocks:
        if block.language == "python":
            ast.parse(block.text)


def test_toml_blocks_parse_and_the_entry_points_name_the_guide_classes() -> None:
    tomls = [b for b in doc_blocks() if b.language == "toml"]
    assert len(tomls) >= 3
    parsed = {b.file: toml_loads(b.text) for b in tomls}
    project = parsed["kdreg-tutorial/pyproject.toml"]["project"]
    defined = {
        Path(b.file).stem: {n.name for n in ast.parse(b.text).body if isinstance(n, ast.ClassDef)}
        for b in doc_blocks()
        if b.language == "python" and b.file and "/src/" in b.file
    }
    groups = project["entry-points"]
    assert set(groups) == {
        "kdreg.teachers",
        "kdreg.students",
        "kdreg.losses",
        "kdreg.benchmarks",
        "kdreg.corpora",
    }
    for entries in groups.values():
        for value in entries.values():
            module, _, cls = value.partition(":")
            assert cls in defined[module.split(".")[-1]], value
    grid = parsed["tutorial-grid.toml"]
    assert grid["loss"] in groups["kdreg.losses"] and grid["benchmark"] in groups["kdreg.benchmarks"]


def test_python_snippets_ran(workspace: dict[str, Path]) -> None:
    """The snippets themselves assert; here, what they leave behind."""
    assert (workspace["root"] / "tiny-bert" / "config.json").is_file()
    assert (workspace["site"] / "kdreg_tutorial" / "loss.py").is_file()


def test_quick_start_scaffold_line_runs(workspace: dict[str, Path], tmp_path: Path) -> None:
    line = next(x for x in shell_lines() if x.startswith("kdreg plugins new"))
    done = subprocess.run(
        [sys.executable, "-m", "kdreg", *shlex.split(line)[1:]],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "kdreg-my-loss" / "src" / "kdreg_my_loss" / "plugin.py").is_file()


def test_the_other_quick_start_lines_are_run_by_the_authoring_tests() -> None:
    source = AUTHORING_TESTS.read_text(encoding="utf-8")
    for line, test_name in COVERED_BY_AUTHORING_TESTS.items():
        assert line in shell_lines()
        assert f"def {test_name}(" in source
    assert '"plugins", "new", "loss", "my-loss"' in source


@contextmanager
def tutorial_installed(workspace: dict[str, Path]) -> Iterator[None]:
    """The tutorial's installation on sys.path (and in a fresh registry) for this block only."""
    from kdreg.plugins.registry import registry

    sys.path.insert(0, str(workspace["site"]))
    registry.cache_clear()
    try:
        yield
    finally:
        sys.path.remove(str(workspace["site"]))
        registry.cache_clear()


def test_tutorial_shell_lines_run(workspace: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """`kdreg plugins ...` lines run through the real CLI app, in this process (torch is loaded once)."""
    from typer.testing import CliRunner

    from kdreg.cli.main import app

    monkeypatch.chdir(workspace["root"])  # the lines use relative paths (tiny-bert)
    monkeypatch.setenv("COLUMNS", "200")
    ran = 0
    for line in shell_lines():
        argv = shlex.split(line)
        if line in COVERED_BY_AUTHORING_TESTS or argv[:3] == ["kdreg", "plugins", "new"]:
            continue
        if argv[:2] == ["kdreg", "run"] or argv[:2] == ["kdreg", "query"]:
            continue  # test_tutorial_grid_runs
        if argv[:2] == ["pip", "install"]:
            assert argv[-1] == "./kdreg-tutorial"
            assert list(workspace["site"].glob("kdreg_tutorial-0.1.0.dist-info"))
            continue
        assert argv[:2] == ["kdreg", "plugins"], f"no handler for the guide's shell line {line!r}"
        with tutorial_installed(workspace):
            result = CliRunner().invoke(app, argv[1:])
        assert result.exit_code == 0, f"{line}\n{result.output[-3000:]}"
        if argv[2:3] == ["check"]:
            assert result.output.count("conforms ") == 5, result.output
        elif argv[2:3] == ["show"]:
            assert "kdreg-tutorial 0.1.0" in result.output and "layers" in result.output
        else:
            assert "tutorial-hidden" in result.output and "kdreg-tutorial" in result.output
        ran += 1
    assert ran == 3


def test_the_tutorial_test_file_passes(workspace: dict[str, Path]) -> None:
    """Each test function of the guide's tests/test_tutorial.py, called with a saved tiny model."""
    block = next(b for b in doc_blocks() if b.file == "kdreg-tutorial/tests/test_tutorial.py")
    module = types.ModuleType("docs_plugins_test_tutorial")
    sys.modules[module.__name__] = module
    try:
        exec(compile(block.text, f"{DOC}:{block.line}", "exec"), module.__dict__)
    finally:
        del sys.modules[module.__name__]
    saved_model = str(workspace["root"] / "tiny-bert")  # what the file's fixture makes
    cases = module.test_loss_and_data.pytestmark[0].args[1]
    with tutorial_installed(workspace):
        module.test_teacher(saved_model)
        module.test_student(saved_model)
        for kind, name in cases:
            module.test_loss_and_data(kind, name)
    assert len(cases) == 3


@pytest.mark.slow
def test_tutorial_grid_runs(workspace: dict[str, Path], kdreg_home: Path) -> None:
    """`kdreg run --config tutorial-grid.toml` trains with all five tutorial plugins; the query finds it."""
    lines = [x for x in shell_lines() if x.startswith(("kdreg run", "kdreg query"))]
    assert len(lines) == 2
    done = run(shlex.split(lines[0]), workspace)
    assert done.returncode == 0, done.stderr[-3000:]
    query = run(shlex.split(lines[1]), workspace)
    assert query.returncode == 0, query.stderr
    assert "tutorial-hidden" in query.stdout and "tutorial-student" in query.stdout

    from sqlalchemy import select

    from kdreg.store.schema import Run
    from kdreg.store.store import open_store

    store = open_store()
    with store.session() as session:
        runs = {r.stage: r for r in session.scalars(select(Run))}
        assert {stage: r.status for stage, r in runs.items()} == {
            "teacher": "succeeded",
            "finetune": "succeeded",
            "both": "succeeded",
        }
        assert runs["both"].config["corpus"]["distribution"] == "kdreg-tutorial"
        assert {r.lang for r in runs["both"].results} == {"en", "de", "es"}
    store.close()
