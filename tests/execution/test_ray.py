"""The ``ray`` executor on a real local Ray cluster (started by ``kdreg run`` as ``ray.init`` does; no mocks).

A Ray worker killed with ``kill -9`` mid-run loses only its run, which is left interrupted,
and the next ``kdreg run`` runs exactly it. With PostgreSQL the tasks write the store
themselves. (With SQLite the tasks return their outcomes and the driver records them,
equal to ``inline``'s: tests/execution/test_cluster_docs.py, which runs docs/cluster.md.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tiny_world import GRID, rows

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'kdreg[ray]')")

# One worker runs every cluster test (with `pytest -n`): they start engines that claim the
# machine's cores, and the Ray tests count Ray's worker processes machine-wide.
pytestmark = pytest.mark.xdist_group("cluster")

SLOW = GRID.replace("[finetune]\nmax_steps = 6", "[finetune]\nmax_steps = 3000")
EXECUTOR = "ray:cluster_cpus=2"


def kdreg(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "kdreg", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "RAY_ADDRESS": ""})


def _ray_workers() -> list[int]:
    """Pids of the processes running kdreg's Ray task now (Ray titles them ray::run_task)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                title = (entry / "cmdline").read_bytes().split(b"\0")[0]
            except OSError:
                continue
            if title.startswith(b"ray::run_task"):
                found.append(int(entry.name))
    return found


def test_kill_9_of_a_ray_worker_loses_only_its_run(world: dict[str, str], kdreg_home: Path,
                                                    tmp_path: Path) -> None:
    grid = tmp_path / "slow.toml"
    grid.write_text(SLOW)
    db = kdreg_home / "kill.db"
    args = ["run", "--teacher", world["teacher"], "--student", "layers:k=1", "--benchmark",
            world["benchmark"], "--stage", "teacher,none", "--config", str(grid), "--db", str(db),
            "--executor", EXECUTOR]
    proc = kdreg(*args)
    deadline, seen, since = time.monotonic() + 180, None, time.monotonic()
    while True:  # the slow student's task: the one task left running for a while
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        workers = _ray_workers()
        if len(workers) != 1 or workers[0] != seen:
            seen, since = (workers[0] if len(workers) == 1 else None), time.monotonic()
        elif time.monotonic() - since > 2:
            worker = seen
            break
        time.sleep(0.2)
    os.kill(worker, signal.SIGKILL)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    assert dict(rows(db, "SELECT stage, status FROM runs")) == {"teacher": "succeeded", "none": "interrupted"}
    assert "Ray worker died" in rows(db, "SELECT error FROM runs WHERE stage = 'none'")[0][0]
    assert rows(db, "SELECT COUNT(*) FROM runs WHERE status = 'running'") == [(0,)]
    again = kdreg(*args)
    _, stderr = again.communicate(timeout=300)
    assert again.returncode == 0, stderr
    assert "1 to run, 1 skipped" in stderr
    assert dict(rows(db, "SELECT stage, status FROM runs")) == {"teacher": "succeeded", "none": "succeeded"}


def test_with_postgresql_the_ray_tasks_write_the_store_themselves(
        cluster, world: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    url = cluster.create_database("ray_direct")
    proc = kdreg("run", "--teacher", world["teacher"], "--student", "layers:k=1", "--benchmark",
                 world["benchmark"], "--stage", "none,finetune", "--config", world["grid"], "--db", url,
                 "--executor", EXECUTOR)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as conn:
        statuses = conn.execute(text("SELECT status, COUNT(*) FROM runs GROUP BY status")).all()
        pids = {pid for (pid,) in conn.execute(text("SELECT pid FROM tasks"))}
    engine.dispose()
    assert statuses == [("succeeded", 3)]
    assert None not in pids and proc.pid not in pids  # written by the Ray workers, not the driver
