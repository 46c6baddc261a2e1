"""CPU workers forked from a server that imported torch and transformers once (kdreg.execution.forkserver).

What is checked: a worker of ``local`` (CPU) starts its first task with those modules
already imported; the server is started with the planner's environment and restarted when
that changed; and the server itself — a process kdreg starts — can be killed (``kill -9``, SIGTERM)
while a grid runs without anything lost: the grid finishes, every run succeeds.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from dataclasses import dataclass
from multiprocessing import forkserver as mp_forkserver
from pathlib import Path
from typing import Any

import pytest

from kdreg.execution import forkserver

pytestmark = pytest.mark.skipif(not forkserver.available(), reason="no forkserver start method here")


@dataclass(frozen=True)
class ModulesAtStart:
    """A task's callable that reports which heavy modules its process had before it did anything."""

    key: str

    def __call__(self) -> Any:
        from kdreg.records import TaskOutcome

        had = [name for name in ("torch", "transformers.modeling_utils") if name in sys.modules]
        return TaskOutcome(self.key, "run", "succeeded", error=",".join(had), pid=os.getpid())


def _graph(keys: list[str]) -> Any:
    from kdreg.execution.graph import RUN, JobSpec, Task, TaskGraph
    from kdreg.hparams import HParams

    class Graph(TaskGraph):
        def call(self, task: Task) -> Any:  # type: ignore[override]
            return ModulesAtStart(task.key)

    spec = JobSpec("none", 0, "probe", "probe", (), (), HParams(), "probe")
    return Graph([Task(RUN, key, spec, key, ()) for key in keys])


def test_cpu_workers_start_their_first_task_with_torch_and_transformers_imported() -> None:
    from kdreg.testing.executor_checks import ProbeMonitor
    from kdreg_plugins.executors.local import LocalExecutor, LocalParams

    monitor = ProbeMonitor()
    LocalExecutor(LocalParams(workers=2, gpus="none")).execute(_graph(["a", "b", "c"]), monitor)
    outcomes = [found[0] for found in monitor.finished_with.values()]
    assert len(outcomes) == 3
    assert {o.error for o in outcomes} == {"torch,transformers.modeling_utils"}
    assert os.getpid() not in {o.pid for o in outcomes}


def test_the_server_is_restarted_when_the_environment_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    def server_pid() -> int | None:
        return mp_forkserver._forkserver._forkserver_pid  # type: ignore[attr-defined]

    monkeypatch.setenv("KDREG_FORKSERVER_PROBE", "one")
    assert forkserver.start()
    first = server_pid()
    assert forkserver.start() and server_pid() == first  # same environment: the same server
    monkeypatch.setenv("KDREG_FORKSERVER_PROBE", "two")  # e.g. HF_HUB_OFFLINE set while planning
    assert forkserver.start()
    assert server_pid() not in (None, first)
    forkserver.wait_until_ready()


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _running(pid: int) -> bool:
    """Alive and not a zombie (a worker whose fork server died is reaped by whoever adopts it, if anyone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the server through /proc")
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "SIGTERM"])
def test_killing_the_fork_server_loses_nothing_and_the_grid_finishes(
        world: dict[str, str], kdreg_home: Path, tmp_path: Path, signum: int) -> None:
    from test_local_executor import _results, _running_tasks, _slow_grid, _start, _wait_for
    from tiny_world import rows

    db, grid = kdreg_home / "f.db", _slow_grid(tmp_path)
    proc = _start(world, db, grid, "--executor", "local:workers=2,gpus=none")
    running = _wait_for(lambda: len(_running_tasks(db)) == 2 and _running_tasks(db), "both workers", proc)
    workers = {pid for _, pid in running}  # type: ignore[union-attr]
    servers = [pid for pid in _children(proc.pid)
               if b"forkserver" in Path(f"/proc/{pid}/cmdline").read_bytes() and pid not in workers]
    assert len(servers) == 1, servers
    os.kill(servers[0], signum)
    _, stderr = proc.communicate(timeout=240)
    # The pool hears of its workers through the server: with it gone, it counts them lost, as if
    # killed — their runs are marked interrupted, the other tasks run on a new server.
    assert proc.returncode == 0, stderr
    assert rows(db, "SELECT COUNT(*) FROM runs WHERE status = 'running'") == [(0,)]
    statuses = dict(rows(db, "SELECT id, status FROM runs"))
    assert set(statuses.values()) <= {"succeeded", "interrupted"}
    kept = _results(db)
    deadline = time.monotonic() + 30  # the workers stop as soon as the planner's pipe tells them
    while any(_running(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_running(pid) for pid in workers)

    again = _start(world, db, grid, "--executor", "local:workers=2,gpus=none")
    _, stderr = again.communicate(timeout=240)
    assert again.returncode == 0, stderr
    assert set(dict(rows(db, "SELECT id, status FROM runs")).values()) == {"succeeded"}
    after = _results(db)
    assert {k: v for k, v in after.items() if k in kept} == kept  # what was stored is untouched
