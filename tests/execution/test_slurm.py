"""The ``slurm`` executor on a real single-node Slurm cluster (fixture ``slurm``; no mocks).

A task killed with ``scancel`` is the one run the next ``kdreg run`` runs again; a
preempted task (Slurm's USR2) is requeued and stores its numbers once, from its complete
run; with PostgreSQL the jobs write the store themselves. (A whole study submitted as job
arrays, recorded by ``kdreg status`` after the submitter has gone and equal to ``inline``,
is tests/execution/test_cluster_docs.py, which runs docs/cluster.md.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from tiny_world import GRID, rows

# One worker runs every cluster test (with `pytest -n`): they start engines that claim the
# machine's cores, and the Ray tests count Ray's worker processes machine-wide.
pytestmark = pytest.mark.xdist_group("cluster")

SLOW = GRID.replace("[finetune]\nmax_steps = 6", "[finetune]\nmax_steps = 3000")


def kdreg(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kdreg", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "COLUMNS": "200"})


def _status(db: Path) -> dict:  # type: ignore[type-arg]
    done = kdreg("status", "--json", "--db", str(db))
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def _until(condition: Callable[[], object], what: str, timeout: float = 240) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}")


def _running_job(db: Path, stage: str) -> tuple[str, str]:
    """(task key, Slurm job) of the run of ``stage`` once its journal shows it started."""
    def started() -> tuple[str, str] | None:
        query = ("SELECT t.key, t.external_id, g.config FROM tasks t JOIN runs r ON r.id = t.run_id "
                 f"JOIN grids g ON g.id = t.grid_id WHERE r.stage = '{stage}'")
        for key, job, journal in rows(db, query):
            if (Path(json.loads(journal)["journal"]) / key / "started.json").exists():
                return key, job
        return None

    return _until(started, f"the {stage} run to start")  # type: ignore[return-value]


def test_scancel_of_a_running_task_makes_the_next_run_run_exactly_it(
        slurm, world: dict[str, str], kdreg_home: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    grid = tmp_path / "slow.toml"
    grid.write_text(SLOW)
    db = kdreg_home / "cancel.db"
    args = ["run", "--teacher", world["teacher"], "--student", "layers:k=1", "--benchmark",
            world["benchmark"], "--stage", "teacher,none", "--config", str(grid), "--db", str(db),
            "--executor", "slurm"]
    assert kdreg(*args).returncode == 0
    _, job = _running_job(db, "none")
    subprocess.run(["scancel", job], check=True, timeout=30)
    _until(lambda: not _status(db)["submitted"], "every task to end")
    assert dict(rows(db, "SELECT stage, status FROM runs")) == {"teacher": "succeeded", "none": "interrupted"}
    none_results = "SELECT COUNT(*) FROM results r JOIN runs u ON u.id = r.run_id WHERE u.stage = 'none'"
    assert rows(db, none_results) == [(0,)]
    again = kdreg(*args, "--wait")
    assert again.returncode == 0, again.stderr
    assert "1 to run, 1 skipped" in again.stderr
    assert dict(rows(db, "SELECT stage, status FROM runs")) == {"teacher": "succeeded", "none": "succeeded"}


def test_a_preempted_task_is_requeued_and_stores_its_numbers_once(
        slurm, world: dict[str, str], kdreg_home: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    grid = tmp_path / "slow.toml"
    grid.write_text(SLOW)
    db = kdreg_home / "preempt.db"
    args = ["run", "--teacher", world["teacher"], "--student", "layers:k=1", "--benchmark",
            world["benchmark"], "--stage", "teacher,none", "--config", str(grid), "--db", str(db),
            "--executor", "slurm"]
    assert kdreg(*args).returncode == 0
    key, job = _running_job(db, "none")
    journal = Path(json.loads(rows(db, "SELECT config FROM grids")[0][0])["journal"]) / key
    # USR2 is what Slurm sends a job it preempts, or that reaches its time limit
    subprocess.run(["scancel", "--signal=USR2", job], check=True, timeout=30)
    _until(lambda: (journal / "interrupted.json").exists(), "the interruption to be written")
    interrupted = json.loads((journal / "interrupted.json").read_text())["outcome"]
    assert interrupted["status"] == "interrupted"
    assert interrupted["results"] == [] and interrupted["curves"] == {}
    _until(lambda: "PENDING" in slurm.job(job) or "RUNNING" in slurm.job(job), "the requeue")
    subprocess.run(["scontrol", "update", f"jobid={job}", "StartTime=now"], capture_output=True, timeout=30)
    assert "Restarts=1" in slurm.job(job)
    _until(lambda: _status(db)["runs"].get("succeeded") == 2, "the requeued task to succeed")
    results = rows(db, "SELECT COUNT(*), COUNT(DISTINCT language || split || metric) FROM results r "
                       "JOIN runs u ON u.id = r.run_id WHERE u.stage = 'none' AND r.split != 'model'")
    assert results == [(3 * 2 * 2, 3 * 2 * 2)]  # one complete set: nothing from the interrupted attempt
    curves = "SELECT losses FROM curves c JOIN runs u ON u.id = c.run_id WHERE u.stage = 'none'"
    assert len(rows(db, curves)) == 1


def test_with_postgresql_the_jobs_write_the_store_themselves(
        slurm, cluster, world: dict[str, str], kdreg_home: Path) -> None:  # type: ignore[no-untyped-def]
    url = cluster.create_database("slurm_direct")
    done = kdreg("run", "--teacher", world["teacher"], "--student", "layers:k=1", "--benchmark",
                 world["benchmark"], "--stage", "none,finetune", "--config", world["grid"], "--db", url,
                 "--executor", "slurm", "--wait")
    assert done.returncode == 0, done.stderr
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as conn:
        statuses = conn.execute(text("SELECT status, COUNT(*) FROM runs GROUP BY status")).all()
        assert statuses == [("succeeded", 3)]
        grid_config = conn.execute(text("SELECT config FROM grids")).scalar_one()
        pids = {pid for (pid,) in conn.execute(text("SELECT pid FROM tasks"))}
    engine.dispose()
    assert "journal" not in grid_config  # no files: each job wrote its own rows
    assert None not in pids and os.getpid() not in pids
