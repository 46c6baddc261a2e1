"""Absurd values are refused before `kdreg run` writes anything, not stored as failed runs (issue 14).

Before, ``--student layers:k=99999999999999999999999`` and ``learning_rate = 1e300`` passed
the checks, the grid was written, and each run failed in training; ``hf:path=`` (empty)
quietly meant the current folder. Each is one error line now, and no database is created.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_world import GRID, invoke


def run_args(world: dict[str, str], grid: str, *extra: str) -> list[str]:
    return ["run", "--teacher", world["teacher"], "--benchmark", world["benchmark"], "--stage", "none",
            "--config", grid, *extra]


@pytest.mark.parametrize(("case", "expected"), [
    ("student", "layers:k = 99999999999999999999999 is out of range"),
    ("learning_rate", "[teacher_finetune] learning_rate = 1e+300 is out of range: give 0 to 1"),
    ("empty hf path", "hf:path is empty"),
])
def test_refused_before_anything_is_written(
    world: dict[str, str], kdreg_home: Path, tmp_path: Path, case: str, expected: str
) -> None:
    grid = tmp_path / "grid.toml"
    grid.write_text(GRID)
    args = run_args(world, str(grid), "--student", "layers:k=1")
    if case == "student":
        args = run_args(world, str(grid), "--student", "layers:k=99999999999999999999999")
    elif case == "learning_rate":
        teacher_phase_first = GRID.index("[teacher_finetune]") < GRID.index("learning_rate = 1e-3")
        assert teacher_phase_first
        grid.write_text(GRID.replace("learning_rate = 1e-3", "learning_rate = 1e300", 1))
    else:
        args = ["run", "--teacher", "hf:path=", "--student", "layers:k=1", "--benchmark", world["benchmark"],
                "--stage", "none", "--config", str(grid)]
    done = invoke(*args)
    assert done.exit_code == 1, done.output
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
    assert expected in done.stderr
    assert not (kdreg_home / "kdreg.db").exists()
