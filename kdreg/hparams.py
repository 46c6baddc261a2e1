"""Hyper-parameters of the three training phases, with documented defaults.

* ``teacher_finetune`` — the teacher on the source-language task (hard labels);
* ``finetune`` — the student on the source-language task (hard labels for stages
  ``none``/``pretrain``, the KD loss against the fine-tuned teacher for ``finetune``/``both``);
* ``pretrain`` — the student distilled from the pre-trained teacher on corpus text
  (masked-LM batches) for stages ``pretrain``/``both``.

A grid file sets them per phase (``[finetune] learning_rate = 3e-5``); every value that
changes a result is part of a run's canonical config.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from kdreg.errors import ConfigError


@dataclass(frozen=True)
class TrainHParams:
    """One training phase on labelled data."""

    max_steps: int = 0
    """Optimiser steps; 0 means train for ``epochs``."""
    epochs: float = 3.0
    learning_rate: float = 5e-5
    batch_size: int = 32
    max_length: int = 128
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01


@dataclass(frozen=True)
class PretrainHParams(TrainHParams):
    """Distillation during pretraining on unlabeled corpus text.

    Measured in steps by default; ``epochs`` (with ``max_steps = 0``) counts passes over the
    corpus's lines as its ``sizes()`` reports them, so it needs a corpus that knows its size.
    """

    max_steps: int = 1000
    epochs: float = 0.0
    learning_rate: float = 1e-4
    warmup_ratio: float = 0.05
    mlm_probability: float = 0.15
    language_alpha: float = 0.7
    """α of the language sampling p(l) ∝ n_l^α (multilingual BERT / XLM practice)."""


@dataclass(frozen=True)
class HParams:
    """All phases; ``eval_batch_size`` only changes speed, so it is not part of a run's identity."""

    teacher_finetune: TrainHParams = field(default_factory=TrainHParams)
    finetune: TrainHParams = field(default_factory=TrainHParams)
    pretrain: PretrainHParams = field(default_factory=PretrainHParams)
    eval_batch_size: int = 128

    def as_config(self) -> dict[str, Any]:
        """The phases as plain dicts (for canonical configs)."""
        return {
            "teacher_finetune": dataclasses.asdict(self.teacher_finetune),
            "finetune": dataclasses.asdict(self.finetune),
            "pretrain": dataclasses.asdict(self.pretrain),
        }


SECTIONS: dict[str, type] = {
    "teacher_finetune": TrainHParams,
    "finetune": TrainHParams,
    "pretrain": PretrainHParams,
}


def _coerce(section: str, key: str, value: Any, expected: type) -> Any:
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, expected) and not (expected is int and isinstance(value, bool)):
        return value
    raise ConfigError(f"[{section}] {key} must be {expected.__name__}, got {value!r}.")


def hparams_from_mapping(data: dict[str, Any], base: HParams | None = None) -> HParams:
    """Build HParams from grid-file sections, on top of ``base`` (defaults when None)."""
    base = base or HParams()
    updates: dict[str, Any] = {}
    for section, cls in SECTIONS.items():
        given = data.get(section)
        if given is None:
            continue
        if not isinstance(given, dict):
            raise ConfigError(f"[{section}] must be a table of hyper-parameters.")
        known = {f.name: f.type for f in dataclasses.fields(cls)}
        types = {name: {"int": int, "float": float}[str(t)] for name, t in known.items()}
        values = {}
        for key, value in given.items():
            if key not in types:
                raise ConfigError(
                    f"Unknown hyper-parameter [{section}] {key}; known: {', '.join(sorted(types))}."
                )
            values[key] = _coerce(section, key, value, types[key])
        updates[section] = dataclasses.replace(getattr(base, section), **values)
    if "eval_batch_size" in data:
        updates["eval_batch_size"] = _coerce("grid", "eval_batch_size", data["eval_batch_size"], int)
    result = dataclasses.replace(base, **updates)
    _validate(result)
    return result


LIMITS: dict[str, tuple[float, float, str]] = {
    "max_steps": (0, 10**9, "0 means train for epochs"),
    "epochs": (0, 10_000, "0 with max_steps > 0 counts steps"),
    "learning_rate": (0, 1, "AdamW; fine-tuning uses about 1e-5 to 1e-3, and more diverges"),
    "batch_size": (1, 65_536, ""),
    "max_length": (8, 65_536, "tokens per example"),
    "warmup_ratio": (0, 1, "share of the steps"),
    "weight_decay": (0, 1, "AdamW's decoupled decay, usually 0.01"),
    "mlm_probability": (0, 1, "BERT masks 0.15 of the tokens"),
    "language_alpha": (0, 10, "0 samples languages uniformly, 1 by size"),
}
"""Inclusive bounds of each hyper-parameter (and why): values outside them are refused before a grid
writes anything, instead of training into NaN or overflowing as a failed run. The open ends
(learning_rate > 0, warmup_ratio < 1, 0 < mlm_probability < 1) are checked below."""


def _check_limits(section: str, values: dict[str, Any]) -> None:
    for name, value in values.items():
        if name not in LIMITS:
            continue
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"[{section}] {name} must be a finite number, not {value}.")
        low, high, why = LIMITS[name]
        if not low <= value <= high:
            note = f" ({why})" if why else ""
            raise ConfigError(f"[{section}] {name} = {_shown(value)} is out of range: "
                              f"give {_shown(low)} to {_shown(high)}{note}.")


def _shown(number: float) -> str:
    return f"{number:,}" if isinstance(number, int) else f"{number:g}"


def _validate(hp: HParams) -> None:
    for section in SECTIONS:
        phase = getattr(hp, section)
        _check_limits(section, dataclasses.asdict(phase))
        if phase.batch_size < 1 or phase.max_length < 8:
            raise ConfigError(f"[{section}] needs batch_size ≥ 1 and max_length ≥ 8.")
        if phase.max_steps == 0 and phase.epochs == 0:
            raise ConfigError(f"[{section}] needs max_steps > 0 or epochs > 0.")
        if phase.warmup_ratio >= 1 or phase.learning_rate <= 0:
            raise ConfigError(f"[{section}] needs 0 ≤ warmup_ratio < 1 and learning_rate > 0.")
    if not 0 < hp.pretrain.mlm_probability < 1:
        raise ConfigError("[pretrain] needs 0 < mlm_probability < 1 (BERT masks 0.15 of the tokens).")
    if not 1 <= hp.eval_batch_size <= LIMITS["batch_size"][1]:
        raise ConfigError(f"eval_batch_size must be 1 to {LIMITS['batch_size'][1]:,}.")
