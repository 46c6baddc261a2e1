"""The experiment store: opening a database and the write path of a grid.

A grid's life in the store: ``create_grid`` → ``plan_run`` for each combination
(pending, or found already) → ``start_run`` (running, heartbeat) → ``record_results``
/ ``record_curve`` → ``finish_run`` (succeeded | failed | interrupted). Every write is
its own short transaction, so a crash or Ctrl-C loses at most the run in progress and
never what is already stored; parallel writers wait on SQLite's busy timeout.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from kdreg.errors import RunNotFoundError, StoreError
from kdreg.paths import resolve_db_url
from kdreg.store.engine import make_engine, sqlite_path
from kdreg.store.migrate import check_readable, ensure_schema
from kdreg.store.schema import Base, Curve, Grid, GridRun, Result, Run, utcnow


def check_lengths(model: type[Base], values: dict[str, Any], what: str) -> None:
    """Refuse a text longer than its column, the same way on every back-end.

    SQLite ignores ``VARCHAR(n)`` and keeps any length, PostgreSQL refuses it with
    "value too long for type character varying(50)", naming no column. Checking here
    gives one message that names the field on both, and keeps an SQLite store
    copyable to PostgreSQL.
    """
    columns = model.__table__.c  # type: ignore[attr-defined]
    for name, value in values.items():
        length = getattr(columns[name].type, "length", None) if name in columns else None
        if length is not None and isinstance(value, str) and len(value) > length:
            raise StoreError(
                f"The {what}'s {name} is {len(value)} characters ({value[:40]!r}...); the store keeps "
                f"at most {length}. Shorten it (a plugin's name, spec, language, split or metric)."
            )


@dataclass(frozen=True)
class RunRecord:
    """What identifies and describes a run before it starts (built by :mod:`kdreg.grid`)."""

    config_hash: str
    config: dict[str, Any]
    teacher: str
    teacher_spec: str
    benchmark: str
    benchmark_spec: str
    stage: str
    seed: int
    student: str | None = None
    student_spec: str | None = None
    loss: str | None = None
    loss_spec: str | None = None
    corpus: str | None = None
    corpus_spec: str | None = None


@dataclass(frozen=True)
class ResultRecord:
    """One number to store for a run."""

    language: str
    lang: str
    split: str
    metric: str
    value: float
    is_source: bool


@dataclass(frozen=True)
class KeptRun:
    """A succeeded run's record while it is re-run (``--force``): put back if the re-run does not succeed."""

    started_at: Any
    finished_at: Any
    duration_s: float | None
    environment: dict[str, Any] | None


class Store:
    """An opened, schema-checked experiment database."""

    def __init__(self, url: str | None = None, *, create: bool = True, read_only: bool = False) -> None:
        """``read_only``: for reads (``kdreg show``); never creates, upgrades or writes anything."""
        self.url, self.is_default = resolve_db_url(url)
        path = sqlite_path(self.url)
        if (not create or read_only) and path is not None and not path.exists():
            raise StoreError(f"No database at {path}; run `kdreg run` first or pass --db.")
        self.engine = make_engine(self.url, read_only=read_only)
        try:
            self.revision = (check_readable(self.engine, is_default=self.is_default) if read_only
                             else ensure_schema(self.engine, auto_upgrade=self.is_default))
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
                run = Run(**record.__dict__, status="pending")
                s.add(run)
                try:
                    s.flush()
                except IntegrityError:  # another process planned it first
                    s.rollback()
                    run = s.scalars(select(Run).where(Run.config_hash == record.config_hash)).one()
            if grid_id is not None and s.get(GridRun, (grid_id, run.id)) is None:
                s.add(GridRun(grid_id=grid_id, run_id=run.id))
            return run.id, run.status

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
            now = utcnow()
            run.status, run.started_at, run.heartbeat_at = "running", now, now
            run.finished_at = run.error = run.traceback = run.duration_s = None
            run.environment = environment
            return kept

    def heartbeat(self, run_id: int) -> None:
        """Show the run is alive (a stale heartbeat means the process died)."""
        with self.session() as s:
            self._get(s, run_id).heartbeat_at = utcnow()

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

    def complete_run(self, run_id: int, results: Iterable[ResultRecord],
                     curves: dict[str, tuple[list[int], list[float]]]) -> None:
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
                run.status, run.heartbeat_at = "succeeded", utcnow()
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
        now = utcnow()
        run.status, run.finished_at, run.heartbeat_at = status, now, now
        run.error, run.traceback = error, traceback
        if run.started_at is not None:
            started = run.started_at
            if started.tzinfo is None:  # SQLite hands back naive datetimes (stored as UTC)
                started = started.replace(tzinfo=now.tzinfo)
            run.duration_s = (now - started).total_seconds()

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

    def _get(self, s: Session, run_id: int) -> Run:
        run = s.get(Run, run_id)
        if run is None:
            raise RunNotFoundError(f"No run with id {run_id}.")
        return run


def open_store(url: str | None = None, *, create: bool = True, read_only: bool = False) -> Store:
    """Open (creating or upgrading the default database when needed) the experiment store.

    ``read_only`` opens an existing database for reading only (see :class:`Store`).
    """
    return Store(url, create=create, read_only=read_only)
