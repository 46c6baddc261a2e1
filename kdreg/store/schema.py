"""The experiment store's data model (SQLAlchemy 2 typed ORM).

* a **grid** is one invocation of ``kdreg run`` (its command line and time);
* a **run** is one combination, identified by the sha256 of its canonical config; its
  ``setup_hash`` (the config without the seed) names the runs that differ only by seed.
  What people filter on (teacher, student, loss, benchmark, corpus, stage, seed)
  are typed, indexed columns; the ``*_spec`` columns keep the full
  ``name:key=value`` form for display;
* a **result** is one number: (run, language, split, metric) → value, with the
  benchmark's own language code, its normalised ISO 639-1 form, and whether it is
  the source (training) language;
* a **task** is one unit of a grid's execution: a run to execute, or an intermediate model
  (an *artifact*: a fine-tuned teacher, a student distilled in pretraining) to build
  first. Its row says what this grid's execution of it did and where (host, pid,
  device, an engine's job id and log), so ``kdreg status`` can show a grid in progress;
  a run's own status stays on the run;
* a **curve** is one training phase's losses, stored compactly as JSON arrays (a
  non-finite loss as the string ``"NaN"`` / ``"Infinity"`` / ``"-Infinity"``, see
  :class:`FiniteJSONList`).

Every constraint and index has a stable name (naming convention on the MetaData), so
Alembic migrations can refer to them on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

RUN_STATUSES = ("pending", "running", "succeeded", "failed", "interrupted")
TASK_STATUSES = ("pending", "submitted", "running", "succeeded", "failed", "interrupted", "skipped")
"""'submitted': handed to an engine that has not started it; 'skipped': another process held the run."""
STAGES = ("teacher", "none", "finetune", "pretrain", "both")

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """Timezone-aware now; stored as UTC."""
    return datetime.now(timezone.utc)


NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
"""How a non-finite number is spelled inside a JSON array (JavaScript's and JSON5's names)."""


def _spell_non_finite(x: Any) -> Any:
    if not isinstance(x, float) or math.isfinite(x):
        return x
    return "NaN" if math.isnan(x) else ("Infinity" if x > 0 else "-Infinity")


class FiniteJSONList(TypeDecorator[list]):
    """A JSON array of numbers whose NaN and ±infinity survive every back-end.

    Standard JSON has no NaN: Python's ``json`` writes a bare ``NaN`` token, which SQLite
    keeps but PostgreSQL refuses (``invalid input syntax for type json``), so a diverged
    loss could not be stored there. Non-finite values are written as the strings of
    :data:`NON_FINITE` and read back as floats; bare ``NaN`` tokens that older SQLite
    databases hold still read back as NaN. The column is plain JSON in the database
    (migrations create it with ``sa.JSON``).
    """

    impl = JSON
    cache_ok = True

    def process_bind_param(self, value: list | None, dialect: Any) -> list | None:
        if value is None:
            return None
        return [_spell_non_finite(x) for x in value]

    def process_result_value(self, value: list | None, dialect: Any) -> list | None:
        if value is None:
            return None
        return [NON_FINITE.get(x, x) if isinstance(x, str) else x for x in value]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Grid(Base):
    """One `kdreg run` invocation, grouping the runs it planned."""

    __tablename__ = "grids"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    command: Mapped[str] = mapped_column(Text, default="")
    config: Mapped[dict | None] = mapped_column(JSON, nullable=True)


class GridRun(Base):
    """Membership of a run in a grid (a run planned again by a later grid belongs to both)."""

    __tablename__ = "grid_runs"

    grid_id: Mapped[int] = mapped_column(ForeignKey("grids.id", ondelete="CASCADE"), primary_key=True)
    run_id: Mapped[int] = mapped_column(
        ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Run(Base):
    """One combination of teacher, student, loss, benchmark, corpus, stage and seed."""

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    config_hash: Mapped[str] = mapped_column(String(64), unique=True)
    config: Mapped[dict] = mapped_column(JSON)

    teacher: Mapped[str] = mapped_column(String(200), index=True)
    teacher_spec: Mapped[str] = mapped_column(String(1000))
    student: Mapped[str | None] = mapped_column(String(200), index=True)
    student_spec: Mapped[str | None] = mapped_column(String(1000))
    loss: Mapped[str | None] = mapped_column(String(200), index=True)
    loss_spec: Mapped[str | None] = mapped_column(String(1000))
    benchmark: Mapped[str] = mapped_column(String(200), index=True)
    benchmark_spec: Mapped[str] = mapped_column(String(1000))
    corpus: Mapped[str | None] = mapped_column(String(200), index=True)
    corpus_spec: Mapped[str | None] = mapped_column(String(1000))
    stage: Mapped[str] = mapped_column(String(20), index=True)
    seed: Mapped[int] = mapped_column(Integer, index=True)
    setup_hash: Mapped[str] = mapped_column(String(64), index=True, server_default="")
    """sha256 of the config without the seed: the runs of one setup differ only by seed
    (:mod:`kdreg.identity`). Reports group, and ``kdreg compare`` pairs, by it."""

    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    duration_s: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    traceback: Mapped[str | None] = mapped_column(Text)
    environment: Mapped[dict | None] = mapped_column(JSON)
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    """How many times the run was claimed: a claim names the count it planned with, so a run is
    claimed once per plan (two grids planning it, even with --force, cannot both train it)."""

    results: Mapped[list[Result]] = relationship(
        back_populates="run", cascade="all, delete-orphan", passive_deletes=True
    )
    curves: Mapped[list[Curve]] = relationship(
        back_populates="run", cascade="all, delete-orphan", passive_deletes=True
    )


class Result(Base):
    """One number: a metric of a run on one language and split."""

    __tablename__ = "results"
    __table_args__ = (
        UniqueConstraint("run_id", "language", "split", "metric"),
        Index("ix_results_lang_run_id", "lang", "run_id"),
        # Covering index of reports: one metric/split's values in run order, read from the index alone.
        Index("ix_results_metric_split_run_id_lang_is_source_value",
              "metric", "split", "run_id", "lang", "is_source", "value"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    language: Mapped[str] = mapped_column(String(50))
    lang: Mapped[str] = mapped_column(String(20))
    split: Mapped[str] = mapped_column(String(20))
    metric: Mapped[str] = mapped_column(String(50))
    value: Mapped[float] = mapped_column(Float)
    is_source: Mapped[bool] = mapped_column(Boolean, default=False)

    run: Mapped[Run] = relationship(back_populates="results")


class Curve(Base):
    """A training phase's loss curve: parallel JSON arrays of steps and losses."""

    __tablename__ = "curves"
    __table_args__ = (UniqueConstraint("run_id", "phase"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    phase: Mapped[str] = mapped_column(String(50))
    steps: Mapped[list] = mapped_column(JSON)
    losses: Mapped[list] = mapped_column(FiniteJSONList)

    run: Mapped[Run] = relationship(back_populates="curves")


class Task(Base):
    """One task of one grid: a run to execute or an artifact to build, and where it ran."""

    __tablename__ = "tasks"
    __table_args__ = (UniqueConstraint("grid_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    grid_id: Mapped[int] = mapped_column(ForeignKey("grids.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(64), index=True)
    """The run's config hash, or the artifact's cache key."""
    kind: Mapped[str] = mapped_column(String(30))
    """'run', 'teacher' (a fine-tuned teacher) or 'student-pretrained' (distilled in pretraining)."""
    label: Mapped[str] = mapped_column(Text, default="")
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"), index=True)
    depends_on: Mapped[list] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    executor: Mapped[str] = mapped_column(String(200), default="")
    external_id: Mapped[str | None] = mapped_column(String(200))
    """The engine's id for the task (a Slurm job id, a Ray task id) when it has one."""
    log_path: Mapped[str | None] = mapped_column(Text)
    host: Mapped[str | None] = mapped_column(String(255))
    pid: Mapped[int | None] = mapped_column(Integer)
    device: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(Text)
