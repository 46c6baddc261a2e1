"""Light commands start fast: they never import torch, transformers or datasets, nor what they do not use.

Beyond the heavy three, each light command is held to the imports its work needs
(measured in ``bench/light_commands.py``: pydantic ≈ 40 ms, SQLAlchemy ≈ 110 ms with the
asyncio and ssl it pulls in, rich's Markdown with markdown-it and pygments ≈ 30 ms, every
command module at start). Help is Click's plain text (Typer's rich help imports rich's
Markdown and tracebacks, about 50 ms of a 110 ms ``--help``); no read command imports
SQLAlchemy for an SQLite file at kdreg's revision (they read it with the standard library's
``sqlite3``, :mod:`kdreg.store.reading`); and a command imports its own module, not the
others (``--help`` lists them all, so it imports them all).
"""

from __future__ import annotations

import json
import re
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
top = {name.split(".")[0] for name in sys.modules}
heavy = sorted(top & set(HEAVY_NAMES))
commands = sorted(name for name in sys.modules if name.startswith("kdreg.cli.")
                  and name.split(".")[2] not in ("main", "loading", "options", "output"))
with open(report, "w") as fh:
    json.dump({"code": code, "heavy": heavy, "top": sorted(top), "commands": commands,
               "orm": "sqlalchemy.orm" in sys.modules,
               "registry": "kdreg.plugins.registry" in sys.modules}, fh)
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


NOT_FOR_LIGHT = {"pydantic", "alembic", "torch", "transformers", "datasets", "accelerate", "numpy"}
NO_HELP_RENDERING = {"markdown_it", "pygments"}
NO_STORE = {"sqlalchemy", "asyncio", "ssl"}
STATISTICS = (NOT_FOR_LIGHT - {"numpy"}) | NO_STORE | NO_HELP_RENDERING
"""claims and compare run scipy.stats' paired tests, which need numpy."""


LIGHT_CASES = [
    (("--help",), NOT_FOR_LIGHT | NO_STORE | NO_HELP_RENDERING, None),
    (("query", "--help"), NOT_FOR_LIGHT | NO_STORE | NO_HELP_RENDERING, "kdreg.cli.query"),
    (("plugins",), NOT_FOR_LIGHT | NO_STORE | NO_HELP_RENDERING, "kdreg.cli.plugins"),
    (("plugins", "--json"), NOT_FOR_LIGHT | NO_STORE | NO_HELP_RENDERING, "kdreg.cli.plugins"),
    (("query",), NOT_FOR_LIGHT | NO_STORE | NO_HELP_RENDERING, "kdreg.cli.query"),
    (("query", "--lang", "de", "--sort", "de", "-n", "5"), NOT_FOR_LIGHT | NO_STORE | NO_HELP_RENDERING,
     "kdreg.cli.query"),
    (("query", "--group-seeds", "--format", "json"), NOT_FOR_LIGHT | NO_STORE | NO_HELP_RENDERING,
     "kdreg.cli.query"),
    (("report",), NOT_FOR_LIGHT | NO_STORE | NO_HELP_RENDERING, "kdreg.cli.report"),
    (("status", "--json"), NOT_FOR_LIGHT | NO_STORE | NO_HELP_RENDERING, "kdreg.cli.status"),
    (("claims",), STATISTICS, "kdreg.cli.claims"),
    (("compare", "--a", "stage=pretrain", "--b", "stage=finetune"), STATISTICS, "kdreg.cli.compare"),
    (("export", "--format", "csv"), NOT_FOR_LIGHT | NO_STORE | NO_HELP_RENDERING, "kdreg.cli.export"),
    (("db", "current"), NOT_FOR_LIGHT | NO_HELP_RENDERING | NO_STORE, "kdreg.cli.db"),
]


@pytest.mark.parametrize(("argv", "forbidden", "own_module"), LIGHT_CASES,
                         ids=[" ".join(argv) for argv, _, _ in LIGHT_CASES])
def test_light_commands_import_only_what_they_use(
    tmp_path: Path, argv: tuple[str, ...], forbidden: set[str], own_module: str | None
) -> None:
    from kdreg.store.store import Store

    Store().close()  # an up-to-date default database: reading it needs no migration machinery
    if argv[0] in ("status", "claims", "compare"):  # they need a grid, runs, two sides to pair
        from kdreg.paths import resolve_db_url
        from kdreg.testing.store_data import seed_store

        seed_store(resolve_db_url(None)[0])
    result = probe(tmp_path, *argv)
    assert result["code"] == 0, result["stderr"]
    assert sorted(forbidden & set(result["top"])) == [], f"`kdreg {' '.join(argv)}` imported them"
    if own_module is not None:  # one command module (plugins brings its `plugins new/check` sub-commands)
        assert {m for m in result["commands"] if m != "kdreg.cli.plugins_dev"} == {own_module}


def test_a_report_draws_the_stored_chance_level_without_the_plugin(tmp_path: Path) -> None:
    """Runs store their benchmark's chance level; a report reads it from the store, even for a
    benchmark that is not installed here (an archived study), without importing the plugin registry
    — also for a metric the benchmark gives no chance level for (runs store every level there is)."""
    from kdreg.store.store import Store
    from kdreg.testing.store_data import study_config, write_run

    store = Store()
    try:
        for stage in ("none", "finetune"):
            config = study_config(stage, 0, benchmark="archived-benchmark")
            write_run(store, config, {"en": 0.8, "de": 0.5}, extra=(("accuracy", "chance", 0.25),))
            write_run(store, config, {"en": 0.7, "de": 0.4}, metric="macro_f1")
    finally:
        store.close()
    result = probe(tmp_path, "report")
    assert result["code"] == 0, result["stderr"]
    assert re.search(r"^chance\s+25\.0\s+25\.0", str(result["stdout"]), re.M), result["stdout"]
    assert result["registry"] is False
    f1 = probe(tmp_path, "report", "--metric", "macro_f1")
    assert f1["code"] == 0, f1["stderr"]
    assert "macro_f1" in str(f1["stdout"]) and not re.search(r"^chance\s", str(f1["stdout"]), re.M)
    assert f1["registry"] is False


def test_every_command_module_registers_the_command_named_after_it() -> None:
    """Lazy loading names a command after its module; the module must agree (one line per command)."""
    from typer.main import get_command

    from kdreg.cli.main import COMMAND_MODULES, app

    group = get_command(app)
    assert list(group.commands) == [m.rsplit(".", 1)[-1] for m in COMMAND_MODULES]
    for name in group.commands:  # building a command imports its module and checks what it registers
        assert group.commands[name].name == name


def test_planning_the_default_study_imports_no_model_library(tmp_path: Path) -> None:
    """A dry run asks the synthetic teacher its depth from its parameters, not from transformers' config."""
    result = probe(tmp_path, "run", "--seed", "0,1", "--dry-run", "--format", "json")
    assert result["code"] == 0, result["stderr"]
    assert len(json.loads(str(result["stdout"]))["runs"]) == 20
    assert result["heavy"] == []


def test_planning_reads_a_saved_teacher_depth_from_its_config_json(
        tmp_path: Path, tiny_bert: Path, world: dict[str, str]) -> None:
    """`layers:k` beyond the teacher's depth is refused while planning, without importing transformers."""
    ok = probe(tmp_path, "run", "--teacher", f"hf:path={tiny_bert}", "--student", "layers:k=1",
               "--benchmark", world["benchmark"], "--stage", "none", "--dry-run")
    assert ok["code"] == 0, ok["stderr"]
    assert ok["heavy"] == []
    depth = json.loads((tiny_bert / "config.json").read_text())["num_hidden_layers"]
    too_deep = f"layers:k={depth + 1}"
    refused = probe(tmp_path, "run", "--teacher", f"hf:path={tiny_bert}", "--student", too_deep,
                    "--benchmark", world["benchmark"], "--stage", "none", "--dry-run")
    assert refused["code"] != 0
    assert f"the teacher has {depth} layers" in str(refused["stderr"])
    assert refused["heavy"] == []
