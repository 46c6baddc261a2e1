"""The experiment store: opening a database, and a grid's writes.

A grid's life in the store: ``create_grid`` → ``plan_runs`` (each combination pending,
or found already) → ``add_tasks`` (:mod:`kdreg.store.tasks`) → for each run, in the
process that executes it, ``claim_run`` → ``start_run`` → ``heartbeat`` →
``complete_run`` or ``finish_run`` (:mod:`kdreg.store.lifecycle`). Status questions are
answered in :mod:`kdreg.store.status`. Every write is its own short transaction, so a
crash or Ctrl-C loses at most the run in progress and never what is already stored;
parallel writers wait on SQLite's busy timeout.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from kdreg.errors import RunNotFoundError, StoreError
from kdreg.identity import setup_hash
from kdreg.paths import resolve_db_url
from kdreg.records import ResultRecord, RunRecord
from kdreg.store.engine import make_engine, sqlite_path
from kdreg.store.lifecycle import KeptRun, RunLifecycle
from kdreg.store.limits import check_lengths
from kdreg.store.migrate import ensure_schema, open_for_reading
from kdreg.store.schema import Curve, Grid, GridRun, Result, Run
from kdreg.store.status import CHUNK, RunState, StatusReads
from kdreg.store.tasks import TaskRecords, TaskRow

__all__ = ["KeptRun", "ResultRecord", "RunRecord", "RunState", "Store", "TaskRow", "open_store"]


class Store(RunLifecycle, TaskRecords, StatusReads):
    """An opened, schema-checked experiment database."""

    def __init__(self, url: str | None = None, *, create: bool = True, read_only: bool = False) -> None:
        """``read_only``: for reads (``kdreg show``); never creates, upgrades or writes anything."""
        self.url, self.is_default = resolve_db_url(url)
        path = sqlite_path(self.url)
        if (not create or read_only) and path is not None and not path.exists():
            raise StoreError(f"No database at {path}; run `kdreg run` first or pass --db.")
        if read_only:
            self.engine, self.revision = open_for_reading(self.url, is_default=self.is_default)
        else:
            self.engine = make_engine(self.url)
            try:
                self.revision = ensure_schema(self.engine, auto_upgrade=self.is_default)
            except BaseException:
                self.engine.dispose()
                raise
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def label(self) -> str:
        """The database as shown to people: a file path, or the URL without password."""
        path = sqlite_path(self.url)
        return str(path) if path else self.engine.url.render_as_string(hide_password=True)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on any error."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except SQLAlchemyError as exc:
            session.rollback()
            orig = getattr(exc, "orig", None) or exc
            raise StoreError(f"Database error on {self.label}: {str(orig).splitlines()[0][:200]}") from exc
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def close(self) -> None:
        self.engine.dispose()

    # ------------------------------------------------------------- grid writes
    def create_grid(self, command: str, config: dict[str, Any] | None = None) -> int:
        """Record one invocation; returns its id."""
        with self.session() as s:
            grid = Grid(command=command, config=config)
            s.add(grid)
            s.flush()
            return grid.id

    def plan_run(self, grid_id: int | None, record: RunRecord) -> tuple[int, str]:
        """The run for ``record`` (created pending if new) and its status; links it to the grid."""
        check_lengths(Run, record.__dict__, "run")
        with self.session() as s:
            run = s.scalars(select(Run).where(Run.config_hash == record.config_hash)).first()
            if run is None:
                run = Run(**run_row(record), status="pending")
                s.add(run)
                try:
                    s.flush()
                except IntegrityError:  # another process planned it first
                    s.rollback()
                    run = s.scalars(select(Run).where(Run.config_hash == record.config_hash)).one()
            if grid_id is not None and s.get(GridRun, (grid_id, run.id)) is None:
                s.add(GridRun(grid_id=grid_id, run_id=run.id))
            return run.id, run.status

    def plan_runs(self, grid_id: int, records: Sequence[RunRecord]) -> dict[str, RunState]:
        """Every run of a grid (new ones created pending) linked to it, in a few bulk statements.

        Returns each run's state as planned: a claim later names it, so a run that another
        process took or finished meanwhile is not run twice (see ``claim_run``).
        """
        for record in records:
            check_lengths(Run, record.__dict__, "run")
        hashes = [r.config_hash for r in records]
        states = self.run_states(hashes)
        new = [r for r in records if r.config_hash not in states]
        if new:
            try:
                with self.session() as s:
                    for start in range(0, len(new), CHUNK):
                        s.execute(insert(Run), [{**run_row(r), "status": "pending", "attempts": 0}
                                                for r in new[start : start + CHUNK]])
            except StoreError:  # another process planned some of them first: one by one, as they are
                for record in new:
                    self.plan_run(None, record)
            states = self.run_states(hashes)
        with self.session() as s:
            linked: set[int] = set()
            ids = [state.run_id for state in states.values()]
            for start in range(0, len(ids), CHUNK):
                linked.update(s.scalars(select(GridRun.run_id).where(
                    GridRun.grid_id == grid_id, GridRun.run_id.in_(ids[start : start + CHUNK]))))
            missing = sorted(set(ids) - linked)
            for start in range(0, len(missing), CHUNK):
                s.execute(insert(GridRun), [{"grid_id": grid_id, "run_id": run_id}
                                            for run_id in missing[start : start + CHUNK]])
        return states

    def record_results(self, run_id: int, results: Iterable[ResultRecord]) -> None:
        """Store numbers of a run (replacing the same language/split/metric)."""
        rows = list(results)
        for r in rows:
            check_lengths(Result, r.__dict__, "result")
        with self.session() as s:
            for r in rows:
                s.execute(
                    delete(Result).where(
                        Result.run_id == run_id,
                        Result.language == r.language,
                        Result.split == r.split,
                        Result.metric == r.metric,
                    )
                )
            s.add_all(Result(run_id=run_id, **r.__dict__) for r in rows)

    def record_curve(self, run_id: int, phase: str, steps: list[int], losses: list[float]) -> None:
        """Store one training phase's loss curve (replacing an earlier one)."""
        check_lengths(Curve, {"phase": phase}, "curve")
        with self.session() as s:
            s.execute(delete(Curve).where(Curve.run_id == run_id, Curve.phase == phase))
            s.add(Curve(run_id=run_id, phase=phase, steps=steps, losses=[round(x, 6) for x in losses]))

    # ------------------------------------------------------------- reads
    def find_run(self, ref: str | int) -> Run:
        """A run by id or by (a prefix of at least 6 characters of) its config hash, with results loaded."""
        with self.session() as s:
            run: Run | None = None
            text = str(ref).strip()
            if text.isascii() and text.isdigit() and len(text) <= 18:  # ids fit SQL's 64-bit integers
                run = s.get(Run, int(text))
            if run is None and len(text) >= 6 and all(c in "0123456789abcdef" for c in text.lower()):
                matches = s.scalars(select(Run).where(Run.config_hash.startswith(text.lower()))).all()
                if len(matches) > 1:
                    raise RunNotFoundError(
                        f"Hash prefix {text!r} matches {len(matches)} runs; give more characters."
                    )
                run = matches[0] if matches else None
            if run is None:
                short = (" (a hash prefix needs at least 6 characters)"
                         if 0 < len(text) < 6 and not text.isdigit() else "")
                raise RunNotFoundError(
                    f"No run {text[:70]!r}{short}; `kdreg query` lists runs with their ids."
                )
            _ = run.results, run.curves  # load before the session closes
            return run

    def grid_runs(self, grid_id: int) -> list[Run]:
        """The runs of one grid, in id order (detached, without their results)."""
        with self.session() as s:
            return list(s.scalars(select(Run).join(GridRun, GridRun.run_id == Run.id)
                                  .where(GridRun.grid_id == grid_id).order_by(Run.id)).all())

    def test_results(self, run_ids: Sequence[int]) -> list[Any]:
        """(run_id, language, metric, value, is_source) of the test split for ``run_ids``."""
        rows: list[Any] = []
        with self.session() as s:
            for start in range(0, len(run_ids), CHUNK):
                chunk = list(run_ids[start : start + CHUNK])
                rows.extend(s.execute(select(Result.run_id, Result.language, Result.metric, Result.value,
                                             Result.is_source)
                                      .where(Result.run_id.in_(chunk), Result.split == "test")
                                      .order_by(Result.id)).all())
        return rows

    def _get(self, s: Session, run_id: int) -> Run:
        run = s.get(Run, run_id)
        if run is None:
            raise RunNotFoundError(f"No run with id {run_id}.")
        return run


def run_row(record: RunRecord) -> dict[str, Any]:
    """The columns of a new run: the record's fields, with its setup derived from the config if unset."""
    return {**record.__dict__, "setup_hash": record.setup_hash or setup_hash(record.config)}


def open_store(url: str | None = None, *, create: bool = True, read_only: bool = False) -> Store:
    """Open (creating or upgrading the default database when needed) the experiment store.

    ``read_only`` opens an existing database for reading only (see :class:`Store`).
    """
    return Store(url, create=create, read_only=read_only)
