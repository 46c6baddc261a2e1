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
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from kdreg.records import ResultRecord
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

    def claim_run(self, run_id: int, seen_status: str, seen_attempts: int) -> bool:
        """Mark the run running if it is still as this grid planned it; False when another process has it.

        ``seen_status``/``seen_attempts`` are what the plan read ('stale' for a running run
        whose heartbeat stopped; 'pending', 0 for a new one). Every claim increments
        ``attempts``, so of several processes that planned the same run only the first
        claim matches — also when the run had succeeded and every grid asked for --force
        — and a running run is taken over only while its heartbeat is still stale.
        """
        status = "running" if seen_status == "stale" else seen_status
        with self.session() as s:
            now = db_now(s)
            alive = or_(Run.status != "running", Run.heartbeat_at.is_(None),
                        Run.heartbeat_at < stale_cutoff(now))
            result = s.execute(
                update(Run)
                .where(Run.id == run_id, Run.status == status, Run.attempts == seen_attempts, alive)
                .values(status="running", heartbeat_at=now, attempts=Run.attempts + 1)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def start_run(self, run_id: int, environment: dict[str, Any]) -> KeptRun | None:
        """Mark a run running; returns what to put back if it already has results (a forced re-run).

        Earlier results stay until :meth:`complete_run` replaces them, so a re-run that fails
        or is interrupted loses nothing (see :meth:`finish_run`).
        """
        with self.session() as s:
            run = self._get(s, run_id)
            has_results = s.scalars(select(Result.id).where(Result.run_id == run_id).limit(1)).first()
            kept = (KeptRun(run.started_at, run.finished_at, run.duration_s, run.environment)
                    if has_results is not None else None)
            now = db_now(s)
            run.status, run.started_at, run.heartbeat_at = "running", now, now
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

    def complete_run(self, run_id: int, results: Iterable[ResultRecord], curves: Curves) -> None:
        """Store a run's results and curves and mark it succeeded, all in one transaction.

        Results and curves of an earlier attempt are replaced only here, together with the
        status, so the store never shows a succeeded run with half its numbers.
        """
        rows = list(results)
        for r in rows:
            check_lengths(Result, r.__dict__, "result")
        for phase in curves:
            check_lengths(Curve, {"phase": phase}, "curve")
        with self.session() as s:
            s.execute(delete(Result).where(Result.run_id == run_id))
            s.execute(delete(Curve).where(Curve.run_id == run_id))
            s.add_all(Result(run_id=run_id, **r.__dict__) for r in rows)
            s.add_all(Curve(run_id=run_id, phase=phase, steps=steps, losses=[round(x, 6) for x in losses])
                      for phase, (steps, losses) in curves.items())
            self._close(s, run_id, "succeeded")

    def finish_run(
        self, run_id: int, status: str, *, error: str | None = None, traceback: str | None = None,
        kept: KeptRun | None = None,
    ) -> None:
        """Close a run as succeeded, failed or interrupted.

        With ``kept`` (a re-run of a run that had succeeded, from :meth:`start_run`), a
        failed or interrupted attempt puts the earlier record back: the run stays succeeded
        with its results, and the error says the re-run was discarded.
        """
        with self.session() as s:
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
            self._close(s, run_id, status, error, traceback)

    def _close(self, s: Session, run_id: int, status: str, error: str | None = None,
               traceback: str | None = None) -> None:
        run = self._get(s, run_id)
        now = db_now(s)
        run.status, run.finished_at, run.heartbeat_at = status, now, now
        run.error, run.traceback = error, traceback
        started = aware(run.started_at)
        if started is not None:
            run.duration_s = (now - started).total_seconds()
