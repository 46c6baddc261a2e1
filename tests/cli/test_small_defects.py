"""Small defects a new user meets in the first hour (issue 17 §4): closed pipes, help text, a GPU
asked for where there is none, `show --json` curves, which defaults a grid took, chance levels."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kdreg.cli.main import app
from kdreg.testing.store_data import seeded_copy


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    cache = tmp_path_factory.getbasetemp() / "synthetic-store-cache"
    cache.mkdir(exist_ok=True)
    path = tmp_path_factory.mktemp("defects") / "runs.db"
    seeded_copy(cache, path)
    yield path


@pytest.mark.parametrize("args", [("export",), ("query", "-f", "csv"), ("report",), ("show", "1", "--json")])
def test_a_closed_pipe_ends_quietly(store_path: Path, args: tuple[str, ...]) -> None:
    """`kdreg export | head`: the reader goes away; kdreg stops without a word on stderr."""
    proc = subprocess.Popen([sys.executable, "-m", "kdreg", *args, "--db", str(store_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ.copy())
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # before kdreg has written anything: its first write meets a closed pipe
    stderr = proc.stderr.read().decode()
    proc.wait(timeout=120)
    assert stderr == "", stderr
    assert proc.returncode == 1


def test_config_help_keeps_its_square_brackets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    done = CliRunner().invoke(app, ["run", "--help"])
    assert "same keys and [phase] hyper-parameters" in " ".join(done.output.split())
    docs = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text(encoding="utf-8")
    assert "same keys and [phase] hyper-parameters" in docs


def test_a_dry_run_refuses_cuda_without_a_gpu(kdreg_home: Path) -> None:
    import torch

    done = CliRunner().invoke(app, ["run", "--dry-run", "--device", "cuda"])
    if torch.cuda.is_available():
        assert done.exit_code == 0, done.output
        return
    assert done.exit_code == 1
    assert done.output.strip().splitlines() == [
        "error: --device cuda was asked for but no CUDA device is available; use --device cpu."]
    assert not (kdreg_home / "kdreg.db").exists()


def test_show_json_gives_the_curves_arrays(store_path: Path) -> None:
    done = CliRunner().invoke(app, ["show", "5", "--json", "--db", str(store_path)])
    assert done.exit_code == 0, done.output
    curves = json.loads(done.stdout)["curves"]
    with sqlite3.connect(store_path) as conn:
        stored = {phase: (json.loads(steps), json.loads(losses)) for phase, steps, losses in
                  conn.execute("SELECT phase, steps, losses FROM curves WHERE run_id = 5")}
    assert stored and {c["phase"]: (c["steps"], c["losses"]) for c in curves} == stored
    assert all(len(c["steps"]) == len(c["losses"]) == c["points"] > 1 for c in curves)
    text = CliRunner().invoke(app, ["show", "5", "--db", str(store_path)]).stdout
    assert re.search(r"curve \w+: \S+  \d+ points, steps \d+–\d+", text)  # the terminal's summary line


def test_the_plan_says_which_defaults_it_took(kdreg_home: Path) -> None:
    """`--teacher` starts your own study (xnli, wikipedia, ...); without it the default study is the base."""
    default = CliRunner().invoke(app, ["run", "--dry-run", "--stage", "none"])
    assert default.exit_code == 0, default.output
    assert default.stdout.splitlines()[0] == (
        "defaults: the default study (kdreg/default_grid.toml: no --teacher or --config); options given "
        "replace its values")
    from kdreg.request import DEFAULT_GRID

    named = CliRunner().invoke(app, ["run", "--config", str(DEFAULT_GRID), "--teacher", "synthetic:steps=10",
                                     "--stage", "none", "--dry-run"])
    assert named.exit_code == 0, named.output
    assert named.stdout.splitlines()[0] == ("defaults: the default study (--config kdreg/default_grid.toml); "
                                            "options given replace its values")
    own = CliRunner().invoke(app, ["run", "--teacher", "synthetic", "--dry-run", "--format", "json"])
    assert own.exit_code == 0, own.output  # offline: xnli and wikipedia are marked, the plan is shown
    plan = json.loads(own.stdout)
    assert plan["defaults"] == ("defaults: your study (--teacher given): student layers, loss kl, benchmark "
                                "xnli, corpus wikipedia, all four stages, seed 0, every language")
    only_none = CliRunner().invoke(app, ["run", "--teacher", "synthetic", "--stage", "none", "--dry-run"])
    # loss and corpus are left out of the line: stage none uses neither
    line = "defaults: your study (--teacher given): student layers, benchmark xnli, seed 0, every language"
    assert line in only_none.stdout


def test_benchmarks_state_their_chance_level() -> None:
    from kdreg.reporting.chance import chance_level

    assert chance_level("synthetic", "accuracy") == pytest.approx(1 / 6)
    assert chance_level("synthetic", "topic_alignment") == pytest.approx(1 / 6)
    assert chance_level("synthetic:topics=4", "accuracy") == pytest.approx(0.25)
    assert chance_level("xnli", "accuracy") == pytest.approx(1 / 3)
    assert chance_level("pawsx", "accuracy") == pytest.approx(1 / 2)
    assert chance_level("xnli", "macro_f1") is None
    assert chance_level("no-such-benchmark", "accuracy") is None  # a report never fails for it
    assert chance_level("files:path=/nowhere", "accuracy") is None  # does not say: never instantiated


def test_json_output_is_strict_json_even_with_nan_and_infinity(capsys: pytest.CaptureFixture[str]) -> None:
    from kdreg.cli.output import print_json

    print_json({"std": float("nan"), "rows": [(1.5, float("inf")), {"loss": float("-inf")}], "n": 1})
    text = capsys.readouterr().out

    def refuse(token: str) -> None:
        raise ValueError(f"non-standard JSON token {token}")

    assert json.loads(text, parse_constant=refuse) == {"std": None, "rows": [[1.5, None], {"loss": None}],
                                                       "n": 1}


def test_counts_stored_as_floats_print_as_whole_numbers() -> None:
    """A model's parameters (metric `parameters`, stored as a float) read as a count, scores as scores."""
    from kdreg.cli.output import cell_text, number

    assert number(2841798.0) == "2841798" and cell_text(149318.0) == "149318"
    assert number(1.0) == "1.0000" and number(0.5) == "0.5000" and number(1234.5) == "1234.5000"
    assert cell_text(None) == "" and cell_text(3) == "3"
