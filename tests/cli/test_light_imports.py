"""Light commands start fast: they never import torch, transformers or datasets."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

HEAVY = ("torch", "transformers", "datasets")

# Runs the real CLI entry point in a fresh interpreter, then reports which heavy
# packages ended up in sys.modules (to a file, so the command's own output is untouched).
PROBE = """
import json, sys
from kdreg.cli.main import main

report, argv = sys.argv[1], sys.argv[2:]
try:
    main(argv)
    code = 0
except SystemExit as exc:
    code = exc.code if isinstance(exc.code, int) else 1
heavy = sorted({name.split(".")[0] for name in sys.modules} & set(HEAVY_NAMES))
with open(report, "w") as fh:
    json.dump({"code": code, "heavy": heavy}, fh)
""".replace("HEAVY_NAMES", repr(HEAVY))


def probe(tmp_path: Path, *argv: str) -> dict[str, object]:
    report = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(report), *argv], capture_output=True, text=True, timeout=120
    )
    assert report.exists(), done.stderr
    result = json.loads(report.read_text())
    result["stdout"], result["stderr"] = done.stdout, done.stderr
    return result


@pytest.mark.parametrize(
    "argv",
    [("--help",), ("plugins",), ("plugins", "--json"), ("db", "current"), ("db", "path"), ("db", "history"),
     ("compare", "--help"), ("claims", "--help")],
    ids=" ".join,
)
def test_light_command_imports_nothing_heavy(tmp_path: Path, argv: tuple[str, ...]) -> None:
    result = probe(tmp_path, *argv)
    assert result["code"] == 0, result["stderr"]
    assert result["heavy"] == [], f"`kdreg {' '.join(argv)}` imported {result['heavy']}"


def test_db_current_on_an_existing_database_imports_nothing_heavy(tmp_path: Path) -> None:
    from kdreg.store.store import Store

    Store().close()  # the default database of this test's KDREG_HOME, at head
    result = probe(tmp_path, "db", "current")
    assert result["code"] == 0, result["stderr"]
    assert "up to date" in str(result["stdout"])
    assert result["heavy"] == []


def test_no_builtin_plugin_module_imports_heavy_libraries(
    kdreg_cli: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    """`kdreg plugins` imports every plugin module; name the ones that pull in torch & co."""
    done = kdreg_cli("plugins", "--json")
    assert done.returncode == 0, done.stderr
    plugins = json.loads(done.stdout)["plugins"]
    # each heavy library is blamed on the first plugin whose import brought it in
    offenders = {f"{p['kind']} {p['name']}": p["heavy_imports"] for p in plugins if p["heavy_imports"]}
    assert offenders == {}
