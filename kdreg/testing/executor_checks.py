"""Behaviour checks of an executor: a probe graph whose tasks record when and where they ran.

An executor is judged by what it does with a task graph, not by training anything: the
probe graph has five tasks in a diamond with a tail (``a``, ``b``; ``c`` after ``a``; ``d``
after ``a`` and ``b``; ``e`` after ``c`` and ``d``). Each task's callable (:class:`ProbeCall`,
picklable, so it runs in another process or on another machine like a real task) sleeps a
moment, leaves a marker file with its start, end and process, and returns its outcome.
The checks then ask: did every task run exactly once, after the tasks it depends on, and
did the executor tell the monitor each outcome (or, for an engine that runs them after
``execute`` returns, that it submitted them)?
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kdreg.testing.checks import CheckContext, CheckFailed

EDGES: dict[str, tuple[str, ...]] = {"a": (), "b": (), "c": ("a",), "d": ("a", "b"), "e": ("c", "d")}
SLEEP_SECONDS = 0.05
WAIT_SECONDS = 300.0
"""How long submitted tasks may take to leave their markers (an engine queues them)."""


@dataclass(frozen=True)
class ProbeCall:
    """A task's callable in the probe graph: sleep, leave a marker, return a succeeded outcome."""

    key: str
    folder: str

    def __call__(self) -> Any:
        from kdreg.records import TaskOutcome

        started = time.time()
        time.sleep(SLEEP_SECONDS)
        ended = time.time()
        marker = Path(self.folder, f"{self.key}.{uuid.uuid4().hex}.json")
        marker.write_text(json.dumps({"start": started, "end": ended, "pid": os.getpid()}))
        return TaskOutcome(self.key, "run", "succeeded", seconds=ended - started,
                           host=socket.gethostname(), pid=os.getpid(), started_at=started, finished_at=ended)


def probe_graph(folder: Path) -> Any:
    """The probe tasks, as a TaskGraph whose ``call`` gives :class:`ProbeCall`s."""
    from kdreg.execution.graph import RUN, JobSpec, Task, TaskGraph
    from kdreg.hparams import HParams

    class ProbeGraph(TaskGraph):
        def call(self, task: Task) -> Any:  # type: ignore[override]
            return ProbeCall(task.key, str(folder))

    spec = JobSpec("none", 0, "probe", "probe", (), (), HParams(), "probe")
    tasks = [Task(RUN, key, spec, f"probe {key}", deps) for key, deps in EDGES.items()]
    return ProbeGraph(tasks)


@dataclass
class ProbeMonitor:
    """Records what an executor tells (the monitor kdreg gives a real grid keeps the store up to date)."""

    finished_with: dict[str, list[Any]] = field(default_factory=dict)
    submitted_with: dict[str, str | None] = field(default_factory=dict)
    events: list[Any] = field(default_factory=list)

    def event(self, event: Any) -> None:
        self.events.append(event)

    def finished(self, task: Any, outcome: Any) -> None:
        self.finished_with.setdefault(task.key, []).append(outcome)

    def submitted(self, task: Any, external_id: str | None = None, log_path: str | None = None) -> None:
        self.submitted_with[task.key] = external_id

    def lost(self, task: Any) -> Any:
        return task


def _markers(folder: Path) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for path in folder.glob("*.json"):
        found.setdefault(path.name.split(".")[0], []).append(json.loads(path.read_text()))
    return found


def check_executor(ctx: CheckContext) -> None:
    """Run the probe graph through the executor and check once-only, order and reporting."""
    folder = Path(tempfile.mkdtemp(prefix="kdreg-executor-check-"))
    monitor = ProbeMonitor()
    with ctx.row("execute: probe graph") as note:
        started = time.monotonic()
        ctx.instance.execute(probe_graph(folder), monitor)
        pending = set(EDGES) - set(monitor.finished_with)
        unexplained = pending - set(monitor.submitted_with)
        if unexplained:
            raise CheckFailed(f"execute() returned without finishing or submitting {sorted(unexplained)}")
        deadline = time.monotonic() + WAIT_SECONDS
        while pending - set(_markers(folder)) and time.monotonic() < deadline:
            time.sleep(0.2)
        note[0] = f"{len(EDGES)} tasks in {time.monotonic() - started:.1f}s" + (
            f" ({len(pending)} submitted to an engine)" if pending else "")
    markers = _markers(folder)
    with ctx.row("execute: every task once") as note:
        counts = {key: len(markers.get(key, [])) for key in EDGES}
        wrong = {key: n for key, n in counts.items() if n != 1}
        if wrong:
            ran = ", ".join(f"{k} {n}×" for k, n in wrong.items())
            raise CheckFailed(f"tasks must run exactly once; ran {ran}")
        twice = [k for k, outcomes in monitor.finished_with.items() if len(outcomes) > 1]
        if twice:
            raise CheckFailed(f"monitor.finished() called more than once for {twice}")
        processes = len({m[0]["pid"] for m in markers.values()})
        note[0] = f"each of {len(EDGES)} tasks ran once, in {processes} process(es)"
    with ctx.row("execute: dependencies first") as note:
        for key, deps in EDGES.items():
            for dep in deps:
                if markers[key][0]["start"] < markers[dep][0]["end"]:
                    raise CheckFailed(f"task {key} started before {dep}, which it depends on, had finished")
        note[0] = "every task started after the tasks it depends on had finished"
    with ctx.row("execute: outcomes reported") as note:
        for key, outcomes in monitor.finished_with.items():
            first = outcomes[0]
            if getattr(first, "status", None) != "succeeded" or getattr(first, "key", None) != key:
                raise CheckFailed(f"monitor.finished() for {key} did not get the outcome its task returned")
        note[0] = f"{len(monitor.finished_with)} finished, {len(monitor.submitted_with)} submitted"
