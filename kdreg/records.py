"""The values that cross from one layer of kdreg to the next: a run's identity and its numbers.

The grid builds a :class:`RunRecord` for every combination, a task produces
:class:`ResultRecord` and :class:`CurveRecord` values, and the store writes them. Keeping
them here, in a module that imports nothing, lets each layer depend on the values
rather than on the layer that made them (the grid never imports the store, a worker on
another machine can hand its numbers back without a database).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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
    setup_hash: str = ""
    """sha256 of the config without its seed (:func:`kdreg.identity.setup_hash`); the grid sets it,
    and the store derives it from ``config`` the same way for a record that leaves it empty."""


MODEL_SPLIT = "model"
PARAMETERS_METRIC = "parameters"
"""A run's model size is stored as one result: split ``model``, metric ``parameters`` (the number of
parameters of the model it evaluated), on its source language. The teacher rows' counts are how
kdreg knows which teacher is larger (``kdreg claims``)."""

CHANCE_SPLIT = "chance"
"""The benchmark's chance level of each metric a run scored is stored as a result too: split
``chance``, that metric, on its source language (:meth:`kdreg.plugins.spec.Benchmark.chance_level`).
A report draws its chance line from the store, so it needs neither the plugin's import nor the
plugin at all (an archived study read elsewhere)."""


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
class CurveRecord:
    """One training phase's loss per optimiser step."""

    steps: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)


@dataclass
class TaskOutcome:
    """How a task ended, as a value: what the task recorded, or carries to the planner to record.

    A task recorded in the store as it ran when it could reach the database; otherwise
    (a cluster node that must not write a shared SQLite file) this value — from a journal
    file or returned by the engine — is all the planning side needs to record it.
    """

    key: str
    kind: str
    status: str
    """'succeeded', 'failed', 'interrupted', or 'skipped' (another process held the run)."""
    seconds: float = 0.0
    error: str | None = None
    traceback: str | None = None
    results: list[ResultRecord] = field(default_factory=list)
    curves: dict[str, CurveRecord] = field(default_factory=dict)
    host: str = ""
    pid: int | None = None
    device: str = ""
    environment: dict[str, Any] | None = None
    started_at: float | None = None
    """Epoch seconds when it started (the clock of the machine that ran it), None if it never did."""
    finished_at: float | None = None
    busy_seconds: float = 0.0
    """Time inside the stage (training and evaluation); the rest is the executor's and the store's."""
    train_seconds: float = 0.0
    """Time inside training loops (a run's cost outside training is ``seconds`` minus this)."""

    @property
    def where(self) -> str:
        """host, pid and device of the process that executed it."""
        return " · ".join(p for p in (self.host and f"{self.host} pid {self.pid}", self.device) if p)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON data (a journal file)."""
        data = dict(self.__dict__)
        data["results"] = [r.__dict__ for r in self.results]
        data["curves"] = {phase: c.__dict__ for phase, c in self.curves.items()}
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TaskOutcome:
        values = dict(data)
        values["results"] = [ResultRecord(**r) for r in data.get("results", [])]
        values["curves"] = {p: CurveRecord(**c) for p, c in data.get("curves", {}).items()}
        return cls(**values)
