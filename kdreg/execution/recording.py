"""Where a task writes what happens to it: the store itself, a journal of files, or nowhere but its outcome.

* :class:`StoreRecorder` — the task claims its run, beats and records its results in the
  database as it goes (this machine, local workers, any node of a cluster with a server
  database such as PostgreSQL);
* :class:`JournalRecorder` — on a cluster whose store is an SQLite file, which nodes must
  not write (SQLite over NFS corrupts, WAL needs one host): the task writes small files
  into the grid's journal folder on the shared file system — started, alive (its mtime is
  the heartbeat), and its outcome, each atomically — and the planning side records them
  (:mod:`kdreg.execution.journal`);
* :class:`ReturnRecorder` — the outcome travels back as a value (a Ray task's return), and
  the planning side records it.

Whichever it is, the planning side ends with the same rows, because it records a
journal's or a returned outcome with the same claim and steps (``Store.record_outcome``).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Protocol

from kdreg.execution.graph import RUN, Task
from kdreg.records import TaskOutcome

STORE, JOURNAL, RETURN = "store", "journal", "return"
"""How tasks record their outcome (``TaskContext.recording``)."""


class Recorder(Protocol):
    def claim(self, task: Task) -> bool:
        """Take the task's run (False: another process holds it; the task is then skipped)."""

    def started(self, task: Task, outcome: TaskOutcome) -> None:
        """The task began where ``outcome`` says (host, pid, device, environment)."""

    def heartbeat(self, task: Task) -> None:
        """The task is alive."""

    def finished(self, task: Task, outcome: TaskOutcome) -> None:
        """The task ended with ``outcome`` (succeeded, failed or interrupted)."""

    def artifact_failure(self, key: str) -> str | None:
        """Why the artifact ``key`` could not be built, when known."""


class StoreRecorder:
    """Writes straight into the store (the database is reachable and safe to write from here)."""

    def __init__(self, store: Any, grid_id: int) -> None:
        self.store, self.grid_id = store, grid_id
        self._kept: dict[str, Any] = {}

    def claim(self, task: Task) -> bool:
        if task.kind != RUN:
            return True
        assert task.run_id is not None
        if self.store.claim_run(task.run_id, task.seen_status, task.seen_attempts, (self.grid_id, task.key)):
            return True
        self.store.task_finished(self.grid_id, task.key, "skipped", "another kdreg process is running it")
        return False

    def started(self, task: Task, outcome: TaskOutcome) -> None:
        self.store.task_started(self.grid_id, task.key, host=outcome.host, pid=outcome.pid or 0,
                                device=outcome.device)
        if task.kind == RUN and task.run_id is not None:
            self._kept[task.key] = self.store.start_run(task.run_id, outcome.environment or {})

    def heartbeat(self, task: Task) -> None:
        self.store.heartbeat(task.run_id if task.kind == RUN else None, (self.grid_id, task.key))

    def finished(self, task: Task, outcome: TaskOutcome) -> None:
        kept = self._kept.pop(task.key, None)
        if task.kind == RUN and task.run_id is not None:
            if outcome.status == "succeeded":
                self.store.complete_run(task.run_id, outcome.results,
                                        {p: (c.steps, c.losses) for p, c in outcome.curves.items()},
                                        environment=outcome.environment)
            else:
                self.store.finish_run(task.run_id, outcome.status, error=outcome.error,
                                      traceback=outcome.traceback, kept=kept, environment=outcome.environment)
        self.store.task_finished(self.grid_id, task.key, outcome.status, outcome.error)

    def artifact_failure(self, key: str) -> str | None:
        return self.store.artifact_failure(key)  # type: ignore[no-any-return]


def write_atomically(path: Path, data: dict[str, Any]) -> None:
    """Write JSON so that a reader sees the whole file or none (a temporary file, then a rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(data, out, default=str)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class JournalRecorder:
    """Writes a task's story as files in ``<folder>/<key>/``; nothing touches the database."""

    STARTED, ALIVE, OUTCOME, INTERRUPTED = "started.json", "alive", "outcome.json", "interrupted.json"

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _entry(self, task: Task, outcome: TaskOutcome) -> dict[str, Any]:
        return {"outcome": outcome.to_json(), "run_id": task.run_id, "seen_status": task.seen_status,
                "seen_attempts": task.seen_attempts, "written_at": time.time()}

    def claim(self, task: Task) -> bool:
        return True  # the planning side claims when it records the outcome

    def started(self, task: Task, outcome: TaskOutcome) -> None:
        write_atomically(self.folder / task.key / self.STARTED, self._entry(task, outcome))
        self.heartbeat(task)

    def heartbeat(self, task: Task) -> None:
        alive = self.folder / task.key / self.ALIVE
        alive.touch()
        os.utime(alive)

    def finished(self, task: Task, outcome: TaskOutcome) -> None:
        name = self.INTERRUPTED if outcome.status == "interrupted" else self.OUTCOME
        write_atomically(self.folder / task.key / name, self._entry(task, outcome))

    def artifact_failure(self, key: str) -> str | None:
        path = self.folder / key / self.OUTCOME
        if not path.exists():
            return None
        outcome = json.loads(path.read_text(encoding="utf-8"))["outcome"]
        return outcome.get("error") if outcome.get("status") != "succeeded" else None


class ReturnRecorder:
    """Records nothing where the task runs: its outcome, returned to the planner, is recorded there."""

    def claim(self, task: Task) -> bool:
        return True

    def started(self, task: Task, outcome: TaskOutcome) -> None:
        pass

    def heartbeat(self, task: Task) -> None:
        pass

    def finished(self, task: Task, outcome: TaskOutcome) -> None:
        pass

    def artifact_failure(self, key: str) -> str | None:
        return None
