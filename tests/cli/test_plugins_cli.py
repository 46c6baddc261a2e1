"""`kdreg plugins` on the built-ins, which register through kdreg's own pyproject.toml."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from typer.testing import CliRunner

import kdreg
from kdreg.cli.main import app
from kdreg.plugins.spec import KINDS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
Cli = Callable[..., subprocess.CompletedProcess[str]]


def declared_builtins() -> dict[tuple[str, str], str]:
    """(kind, name) → 'module:Class' as pyproject.toml declares them."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    groups = {group: kind for kind, group in KINDS.items()}
    return {
        (groups[group], name): value
        for group, entries in project["entry-points"].items()
        if group in groups
        for name, value in entries.items()
    }


def module_exists(value: str) -> bool:
    return importlib.util.find_spec(value.partition(":")[0]) is not None


def test_builtins_are_listed_with_their_distribution_and_version(kdreg_cli: Cli) -> None:
    declared = declared_builtins()
    assert {kind for kind, _ in declared} == set(KINDS)  # at least one built-in of every kind
    done = kdreg_cli("plugins", "--json")
    assert done.returncode == 0, done.stderr
    listed = {(p["kind"], p["name"]): p for p in json.loads(done.stdout)["plugins"]}
    assert metadata.version("kdreg") == kdreg.__version__ == "0.1.0"
    for key, value in declared.items():
        row = listed[key]
        assert (row["distribution"], row["version"]) == ("kdreg", "0.1.0"), key
        if module_exists(value):  # built-ins still being written may be absent; present ones must load
            assert row["status"] == "ok", (key, row["error"])
            assert row["summary"], f"{key} has no summary line"
    assert any(module_exists(v) for v in declared.values())


def test_listing_options() -> None:
    runner = CliRunner()
    unloaded = runner.invoke(app, ["plugins", "--no-load", "--json", "--kind", "loss"])
    assert unloaded.exit_code == 0, unloaded.output
    rows = json.loads(unloaded.stdout)["plugins"]
    assert rows and {r["kind"] for r in rows} == {"loss"}
    assert {r["status"] for r in rows} == {"not loaded"} and {r["summary"] for r in rows} == {""}

    table = runner.invoke(app, ["plugins", "--kind", "benchmark"])
    assert table.exit_code == 0, table.output
    assert "kdreg plugins" in table.stdout
    for (kind, name), _ in declared_builtins().items():
        if kind == "benchmark":
            assert name in table.stdout

    bad = runner.invoke(app, ["plugins", "--kind", "losses"])
    assert bad.exit_code == 1
    assert bad.stderr == (
        "error: Unknown plugin kind 'losses'; use one of: teacher, student, loss, benchmark, corpus, "
        "executor.\n"
    )


def test_show_a_builtin_and_the_version() -> None:
    runner = CliRunner()
    loadable = [(k, n) for (k, n), v in declared_builtins().items() if module_exists(v)]
    kind, name = loadable[0]
    shown = runner.invoke(app, ["plugins", "show", f"{kind}/{name}", "--json"])
    assert shown.exit_code == 0, shown.output
    (info,) = json.loads(shown.stdout)
    assert (info["kind"], info["name"]) == (kind, name)
    assert (info["distribution"], info["version"]) == ("kdreg", "0.1.0")
    assert isinstance(info["params"], list)

    text = runner.invoke(app, ["plugins", "show", f"{kind}/{name}"])
    assert text.exit_code == 0, text.output
    assert "from kdreg 0.1.0" in text.stdout

    version = runner.invoke(app, ["--version"])
    assert (version.exit_code, version.stdout) == (0, "kdreg 0.1.0\n")


def test_a_piped_table_is_not_squeezed_to_80_columns() -> None:
    """With no terminal (a pipe, a CI log) every summary stays on one line, whole."""
    runner = CliRunner()
    rows = json.loads(runner.invoke(app, ["plugins", "--json"]).stdout)["plugins"]
    table = runner.invoke(app, ["plugins"])
    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    long_ones = [r["summary"] for r in rows if len(r["summary"]) > 60]
    assert long_ones  # the case that used to fold
    for summary in long_ones:
        assert any(summary in line for line in lines), summary
