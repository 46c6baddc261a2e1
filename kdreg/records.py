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
