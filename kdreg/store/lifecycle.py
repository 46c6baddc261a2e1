"""A run's life in the store: claimed, started, alive, then succeeded, failed or interrupted.

Every step is one short transaction written by the process that executes the run, so a
crash loses at most the run in progress and never what is stored:

* :meth:`RunLifecycle.claim_run` — one conditional UPDATE that only the first of several
  processes can win (see its docstring);
* :meth:`~RunLifecycle.start_run` — the environment is recorded; a forced re-run keeps the
  earlier record aside (:class:`KeptRun`) until the new one succeeds;
* :meth:`~RunLifecycle.heartbeat` — the run (and its task row) is alive;
* :meth:`~RunLifecycle.complete_run` — results, curves and status land together;
* :meth:`~RunLifecycle.finish_run` — failed or interrupted (a discarded forced re-run puts
  the earlier record back).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from kdreg.records import ResultRecord, TaskOutcome
from kdreg.store.limits import check_lengths
from kdreg.store.liveness import aware, db_now, stale_cutoff
from kdreg.store.schema import Curve, Result, Run, Task

Curves = Mapping[str, tuple[list[int], list[float]]]
"""Phase → (steps, losses)."""


@dataclass(frozen=True)
class KeptRun:
    """A succeeded run's record while it is re-run (``--force``): put back if the re-run does not succeed."""

    started_at: Any
    finished_at: Any
    duration_s: float | None
    environment: dict[str, Any] | None


class RunLifecycle:
    """The write path of one run (mixed into :class:`kdreg.store.store.Store`)."""

    if TYPE_CHECKING:
        def session(self) -> AbstractContextManager[Session]: ...
        def _get(self, s: Session, run_id: int) -> Run: ...

    def claim_run(self, run_id: int, seen_status: str, seen_attempts: int,
                  task: tuple[int, str] | None = None) -> bool:
        """Mark the run running if it is still as this grid planned it; False when another process has it.

        ``seen_status``/``seen_attempts`` are what the plan read ('stale' for a running run
        whose heartbeat stopped; 'pending', 0 for a new one). Every claim increments
        ``attempts``, so of several processes that planned the same run only the first
        claim matches — also when the run had succeeded and every grid asked for --force
        — and a running run is taken over only while its heartbeat is still stale.

        ``task`` (``(grid_id, key)``) is the task claiming it: a task may take back a run that
        it left interrupted or stale itself, whatever the plan saw — the same task requeued
        after a preemption, or resubmitted after its worker died.
        """
        with self.session() as s:
            return self._claim(s, run_id, seen_status, seen_attempts, task)

    def _claim(self, s: Session, run_id: int, seen_status: str, seen_attempts: int,
               task: tuple[int, str] | None) -> bool:
        now = db_now(s)
        dead = or_(Run.status != "running", Run.heartbeat_at.is_(None), Run.heartbeat_at < stale_cutoff(now))
        status = "running" if seen_status == "stale" else seen_status
        claimed = s.execute(
            update(Run).where(Run.id == run_id, Run.status == status, Run.attempts == seen_attempts, dead)
            .values(status="running", heartbeat_at=now, attempts=Run.attempts + 1)
        ).rowcount  # type: ignore[attr-defined]
        if claimed or task is None:
            return bool(claimed)
        mine = s.scalar(select(Task.status).where(Task.grid_id == task[0], Task.key == task[1]))
        current = s.execute(select(Run.status, Run.attempts).where(Run.id == run_id)).first()
        if mine not in ("interrupted", "running") or current is None or current.status not in (
                "interrupted", "running"):
            return False
        return bool(s.execute(
            update(Run).where(Run.id == run_id, Run.status == current.status,
                              Run.attempts == current.attempts, dead)
            .values(status="running", heartbeat_at=now, attempts=Run.attempts + 1)
        ).rowcount)  # type: ignore[attr-defined]

    def start_run(self, run_id: int, environment: dict[str, Any]) -> KeptRun | None:
        """Mark a run running; returns what to put back if it already has results (a forced re-run).

        Earlier results stay until :meth:`complete_run` replaces them, so a re-run that fails
        or is interrupted loses nothing (see :meth:`finish_run`).
        """
        with self.session() as s:
            return self._start(s, run_id, environment)

    def _start(self, s: Session, run_id: int, environment: dict[str, Any] | None,
               started: datetime | None = None) -> KeptRun | None:
        run = self._get(s, run_id)
        has_results = s.scalars(select(Result.id).where(Result.run_id == run_id).limit(1)).first()
        kept = (KeptRun(run.started_at, run.finished_at, run.duration_s, run.environment)
                if has_results is not None else None)
        now = db_now(s)
        run.status, run.started_at, run.heartbeat_at = "running", started or now, now
        run.finished_at = run.error = run.traceback = run.duration_s = None
        run.environment = environment
        return kept

    def heartbeat(self, run_id: int | None, task: tuple[int, str] | None = None) -> None:
        """Show the run (and this grid's task for it, ``(grid_id, key)``) is alive."""
        with self.session() as s:
            now = db_now(s)
            if run_id is not None:
                s.execute(update(Run).where(Run.id == run_id).values(heartbeat_at=now))
            if task is not None:
                s.execute(update(Task).where(Task.grid_id == task[0], Task.key == task[1])
                          .values(heartbeat_at=now))

    def complete_run(self, run_id: int, results: Iterable[ResultRecord], curves: Curves,
                     environment: dict[str, Any] | None = None) -> None:
        """Store a run's results and curves and mark it succeeded, all in one transaction.

        Results and curves of an earlier attempt are replaced only here, together with the
        status, so the store never shows a succeeded run with half its numbers.
        ``environment``, when given, replaces the one recorded at the start (it now says
        what the run loaded).
        """
        rows = list(results)
        self._check(rows, curves)
        with self.session() as s:
            if environment is not None:
                self._get(s, run_id).environment = environment
            self._complete(s, run_id, rows, curves)

    @staticmethod
    def _check(rows: list[ResultRecord], curves: Curves) -> None:
        for r in rows:
            check_lengths(Result, r.__dict__, "result")
        for phase in curves:
            check_lengths(Curve, {"phase": phase}, "curve")

    def _complete(self, s: Session, run_id: int, rows: list[ResultRecord], curves: Curves,
                  finished: datetime | None = None) -> None:
        s.execute(delete(Result).where(Result.run_id == run_id))
        s.execute(delete(Curve).where(Curve.run_id == run_id))
        s.add_all(Result(run_id=run_id, **r.__dict__) for r in rows)
        s.add_all(Curve(run_id=run_id, phase=phase, steps=steps, losses=[round(x, 6) for x in losses])
                  for phase, (steps, losses) in curves.items())
        self._close(s, run_id, "succeeded", finished=finished)

    def finish_run(
        self, run_id: int, status: str, *, error: str | None = None, traceback: str | None = None,
        kept: KeptRun | None = None, environment: dict[str, Any] | None = None,
    ) -> None:
        """Close a run as succeeded, failed or interrupted.

        With ``kept`` (a re-run of a run that had succeeded, from :meth:`start_run`), a
        failed or interrupted attempt puts the earlier record back: the run stays succeeded
        with its results, and the error says the re-run was discarded. ``environment``, when
        given, replaces the one recorded at the start (unless the earlier record is put back).
        """
        with self.session() as s:
            if environment is not None:
                self._get(s, run_id).environment = environment
            self._finish(s, run_id, status, error, traceback, kept)

    def _finish(self, s: Session, run_id: int, status: str, error: str | None, traceback: str | None,
                kept: KeptRun | None, finished: datetime | None = None) -> None:
        if kept is None and status != "succeeded":
            run = self._get(s, run_id)
            has_results = s.scalars(select(Result.id).where(Result.run_id == run_id).limit(1)).first()
            if run.finished_at is not None and has_results is not None:
                # a succeeded run claimed for a re-run that stopped before it started: it is as it was
                kept = KeptRun(run.started_at, run.finished_at, run.duration_s, run.environment)
        if kept is not None and status != "succeeded":
            run = self._get(s, run_id)
            run.status, run.heartbeat_at = "succeeded", db_now(s)
            run.started_at, run.finished_at = kept.started_at, kept.finished_at
            run.duration_s, run.environment = kept.duration_s, kept.environment
            run.error = f"A re-run ({status}) was discarded; these are the earlier results. {error or ''}"
            run.traceback = traceback
            return
        if status != "succeeded":  # a run that did not succeed has no numbers (its curves may help)
            s.execute(delete(Result).where(Result.run_id == run_id))
        self._close(s, run_id, status, error, traceback, finished=finished)

    def _close(self, s: Session, run_id: int, status: str, error: str | None = None,
               traceback: str | None = None, finished: datetime | None = None) -> None:
        run = self._get(s, run_id)
        now = db_now(s)
        run.status, run.finished_at, run.heartbeat_at = status, finished or now, now
        run.error, run.traceback = error, traceback
        started = aware(run.started_at)
        if started is not None:
            run.duration_s = ((finished or now) - started).total_seconds()

    def record_outcome(self, grid_id: int, outcome: TaskOutcome, run_id: int | None = None,
                       seen_status: str = "pending", seen_attempts: int = 0) -> str:
        """Record what a task did elsewhere (a journal file, a value an engine returned), in one transaction.

        The same steps as a task that writes the store itself — claim, start, results and
        curves, status — so the same guarantees hold: a run another process ran meanwhile is
        not overwritten (the outcome is recorded as 'skipped'), and an outcome recorded
        already is not recorded twice. Returns what was recorded.
        """
        rows = list(outcome.results)
        curves = {phase: (c.steps, c.losses) for phase, c in outcome.curves.items()}
        self._check(rows, curves)
        started = _moment(outcome.started_at)
        finished = _moment(outcome.finished_at)
        with self.session() as s:
            row = s.scalars(select(Task).where(Task.grid_id == grid_id, Task.key == outcome.key)).first()
            if row is not None and row.status in ("succeeded", "failed", "skipped"):
                return "recorded before"
            status = outcome.status
            if run_id is not None and status != "skipped":
                if not self._claim(s, run_id, seen_status, seen_attempts, (grid_id, outcome.key)):
                    status = "skipped"
                else:
                    kept = self._start(s, run_id, outcome.environment, started)
                    if status == "succeeded":
                        self._complete(s, run_id, rows, curves, finished)
                    else:
                        self._finish(s, run_id, status, outcome.error, outcome.traceback, kept, finished)
            if row is not None:
                row.status = status
                row.error = outcome.error or ("another kdreg process ran it" if status == "skipped" else None)
                row.host, row.pid = outcome.host or row.host, outcome.pid or row.pid
                row.device = outcome.device or row.device
                row.started_at, row.finished_at = started or row.started_at, finished or db_now(s)
            return status


def _moment(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, timezone.utc)
