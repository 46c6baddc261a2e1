"""The ``local`` executor: real worker processes, the same numbers as ``inline``, and killing everything.

Every process kdreg starts here is killed in some test — a worker by ``kill -9``, the planning
process by SIGINT, SIGTERM and ``kill -9`` — and each time nothing stored is lost, no run is
left ``running``, and the next ``kdreg run`` of the grid finishes it.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from tiny_world import GRID, invoke, rows

SLOW = GRID.replace("[finetune]\nmax_steps = 6", "[finetune]\nmax_steps = 1500")
"""Student fine-tuning long enough (a few seconds) to be caught running."""


def _results(db: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every number of every run, by run hash: results and loss curves."""
    out: dict[str, list[tuple[object, ...]]] = {}
    for key, *row in rows(db, "SELECT u.config_hash, r.language, r.split, r.metric, r.value FROM results r "
                              "JOIN runs u ON u.id = r.run_id ORDER BY 1, 2, 3, 4"):
        out.setdefault(key, []).append(tuple(row))
    for key, *row in rows(db, "SELECT u.config_hash, c.phase, c.steps, c.losses FROM curves c "
                              "JOIN runs u ON u.id = c.run_id ORDER BY 1, 2"):
        out.setdefault(key, []).append(tuple(row))
    return out


def test_two_workers_give_the_numbers_of_one_process_and_build_every_model_once(
        world: dict[str, str], kdreg_home: Path) -> None:
    args = ["run", "--teacher", world["teacher"], "--student", "layers:k=1",
            "--student", "small:layers=1,hidden=16,heads=2,intermediate=32", "--loss", "kl",
            "--benchmark", world["benchmark"], "--corpus", world["corpus"], "--config", world["grid"]]
    inline_db, local_db = kdreg_home / "inline.db", kdreg_home / "local.db"
    inline = invoke(*args, "--db", str(inline_db))
    assert inline.exit_code == 0, inline.output
    from kdreg.pipeline import model_cache

    model_cache.clear()  # the workers build every model again, from scratch
    local = invoke(*args, "--db", str(local_db), "--executor", "local:workers=2")
    assert local.exit_code == 0, local.output
    assert "local: 2 workers × 1 thread on CPU" in local.output
    assert len(_results(local_db)) == 9  # the teacher row and 2 students × 4 stages
    assert _results(local_db) == _results(inline_db)
    # three models (a fine-tuned teacher, a distilled student per student), each built once, by a worker
    built = rows(local_db, "SELECT kind, COUNT(*), COUNT(DISTINCT key), MIN(pid) FROM tasks "
                           "WHERE kind != 'run' AND status = 'succeeded' GROUP BY kind ORDER BY kind")
    assert [(kind, n, distinct) for kind, n, distinct, _ in built] == [("student-pretrained", 2, 2),
                                                                       ("teacher", 1, 1)]
    assert all(pid != os.getpid() for *_, pid in built)
    assert local.output.count("fine-tuning teacher") == 1 and local.output.count("distilling ") == 2
    pids = {pid for (pid,) in rows(local_db, "SELECT DISTINCT pid FROM tasks")}
    assert len(pids) == 2 and os.getpid() not in pids  # both workers took tasks
    assert rows(local_db, "SELECT COUNT(*) FROM runs WHERE status != 'succeeded'") == [(0,)]


def _start(world: dict[str, str], db: Path, grid: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "kdreg", "run", "--teacher", world["teacher"], "--student", "layers:k=1",
         "--student", "small:layers=1,hidden=16,heads=2,intermediate=32", "--benchmark", world["benchmark"],
         "--stage", "teacher,none", "--config", str(grid), "--db", str(db), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(condition: Callable[[], object], what: str, proc: subprocess.Popen[str],
              timeout: float = 120) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = condition()
        except sqlite3.Error:
            found = None
        if found:
            return found
        if proc.poll() is not None:
            raise AssertionError(f"kdreg ended before {what}: {proc.communicate()}")
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"timed out waiting for {what}: {proc.communicate()}")


def _running_tasks(db: Path) -> list[tuple[int, int]]:
    """(run id, worker pid) of the students' runs (stage none) running now."""
    return rows(db, "SELECT t.run_id, t.pid FROM tasks t JOIN runs r ON r.id = t.run_id WHERE t.kind = 'run' "
                    "AND r.stage = 'none' AND t.status = 'running' AND r.status = 'running' "
                    "AND t.pid IS NOT NULL")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _slow_grid(tmp_path: Path) -> Path:
    grid = tmp_path / "slow.toml"
    grid.write_text(SLOW)
    return grid


def test_kill_9_of_a_worker_loses_only_its_run_and_the_next_run_finishes_the_grid(
        world: dict[str, str], kdreg_home: Path, tmp_path: Path) -> None:
    db, grid = kdreg_home / "k.db", _slow_grid(tmp_path)
    proc = _start(world, db, grid, "--executor", "local:workers=2")
    run_id, pid = _wait_for(lambda: _running_tasks(db)[:1], "a run to start", proc)[0]  # type: ignore[index]
    os.kill(pid, signal.SIGKILL)
    _, stderr = proc.communicate(timeout=180)
    assert proc.returncode == 0, stderr  # nothing failed: one run was lost, the others completed
    statuses = dict(rows(db, "SELECT id, status FROM runs"))
    assert statuses.pop(run_id) == "interrupted"
    assert set(statuses.values()) == {"succeeded"} and len(statuses) == 2
    assert "worker process running it died" in rows(db, f"SELECT error FROM runs WHERE id = {run_id}")[0][0]
    kept = _results(db)

    again = _start(world, db, grid, "--executor", "local:workers=2")
    _, stderr = again.communicate(timeout=180)
    assert again.returncode == 0, stderr
    assert "1 to run, 2 skipped" in stderr
    assert set(dict(rows(db, "SELECT id, status FROM runs")).values()) == {"succeeded"}
    after = _results(db)
    assert {k: v for k, v in after.items() if k in kept} == kept  # what was stored is untouched


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupting_the_planner_stops_the_workers_and_marks_their_runs(
        world: dict[str, str], kdreg_home: Path, tmp_path: Path, signum: int, code: int) -> None:
    db, grid = kdreg_home / "i.db", _slow_grid(tmp_path)
    proc = _start(world, db, grid, "--executor", "local:workers=2")
    running = _wait_for(lambda: len(_running_tasks(db)) == 2 and _running_tasks(db), "both workers", proc)
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == code, stderr
    assert "interrupted" in stderr.lower()
    for _, pid in running:  # type: ignore[union-attr]
        assert not _alive(pid)
    assert rows(db, "SELECT status FROM runs WHERE stage = 'none'") == [("interrupted",)] * 2
    assert rows(db, "SELECT COUNT(*) FROM runs WHERE status = 'running'") == [(0,)]
    assert rows(db, "SELECT status FROM runs WHERE stage = 'teacher'") == [("succeeded",)]
    teacher_results = "SELECT COUNT(*) FROM results r JOIN runs u ON u.id = r.run_id WHERE stage = 'teacher'"
    assert rows(db, teacher_results)[0][0] > 0


def test_kill_9_of_the_planner_stops_its_workers_and_the_next_run_finishes(
        world: dict[str, str], kdreg_home: Path, tmp_path: Path) -> None:
    db, grid = kdreg_home / "p.db", _slow_grid(tmp_path)
    proc = _start(world, db, grid, "--executor", "local:workers=2")
    running = _wait_for(lambda: len(_running_tasks(db)) == 2 and _running_tasks(db), "both workers", proc)
    proc.kill()
    proc.communicate(timeout=30)
    deadline = time.monotonic() + 30  # the workers notice within a second and stop
    while any(_alive(pid) for _, pid in running) and time.monotonic() < deadline:  # type: ignore[union-attr]
        time.sleep(0.1)
    assert not any(_alive(pid) for _, pid in running)  # type: ignore[union-attr]
    assert rows(db, "SELECT COUNT(*) FROM runs WHERE status = 'running'") == [(0,)]
    assert {s for (s,) in rows(db, "SELECT status FROM runs WHERE stage = 'none'")} == {"interrupted"}

    again = _start(world, db, grid, "--executor", "local:workers=2")
    _, stderr = again.communicate(timeout=180)
    assert again.returncode == 0, stderr
    assert set(dict(rows(db, "SELECT id, status FROM runs")).values()) == {"succeeded"}


CLAIM_THEN_SIGNAL = """
import os, signal, sys
from kdreg.execution import recording

claim = recording.StoreRecorder.claim

def claim_then_signal(self, task):  # SIGTERM arriving the instant a run is claimed, once
    claimed = claim(self, task)
    if task.kind == "run" and not os.path.exists(os.environ["SIGNALLED"]):
        open(os.environ["SIGNALLED"], "w").close()
        os.kill(os.getpid(), signal.SIGTERM)
    return claimed

recording.StoreRecorder.claim = claim_then_signal  # also in local workers, which import this module

if __name__ == "__main__":
    from kdreg.cli.main import main

    sys.argv[0] = "kdreg"
    main()
"""


@pytest.mark.parametrize("executor", ["inline", "local:workers=2"])
def test_a_signal_right_after_a_claim_leaves_the_run_interrupted_never_running(
        world: dict[str, str], kdreg_home: Path, tmp_path: Path, executor: str) -> None:
    script = tmp_path / "signal_after_claim.py"
    script.write_text(CLAIM_THEN_SIGNAL)
    db, grid = kdreg_home / "c.db", tmp_path / "grid.toml"
    grid.write_text(GRID)
    argv = ["run", "--teacher", world["teacher"], "--student", "layers:k=1",
            "--benchmark", world["benchmark"], "--stage", "teacher,none", "--config", str(grid),
            "--db", str(db), "--executor", executor]
    first = subprocess.run([sys.executable, str(script), *argv], capture_output=True, text=True, timeout=300,
                           env={**os.environ, "SIGNALLED": str(tmp_path / "signalled")})
    assert (tmp_path / "signalled").exists()  # the signal came the instant a run was claimed
    statuses = [status for (status,) in rows(db, "SELECT status FROM runs")]
    assert "running" not in statuses, (statuses, first.stderr)
    if executor == "inline":  # the planner itself was signalled: it stopped, its run interrupted
        assert first.returncode == 143 and "interrupted" in statuses, (statuses, first.stderr)
    else:  # a worker was: its task recorded itself interrupted and went again on a new worker
        assert first.returncode == 0 and set(statuses) == {"succeeded"}, (statuses, first.stderr)
    again = subprocess.run([sys.executable, "-m", "kdreg", *argv], capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stderr
    assert {status for (status,) in rows(db, "SELECT status FROM runs")} == {"succeeded"}
