"""From what the user typed to a grid request: command-line options, a grid file, defaults.

A request holds the values given for each key (strings as typed, comma lists split),
the hyper-parameters of each training phase, and the executor to run the grid on. It
is plain data: resolving plugins and expanding combinations is :mod:`kdreg.grid`'s job.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kdreg.errors import ConfigError
from kdreg.hparams import HParams, hparams_from_mapping

STAGES = ("none", "finetune", "pretrain", "both")
"""The students' stages."""
TEACHER_STAGE = "teacher"
"""The fine-tuned teacher's own row: in a grid when asked for, or when a stage distils from it."""
KEYS = ("teacher", "student", "loss", "benchmark", "corpus", "stage", "seed", "lang")
SECTIONS = ("teacher_finetune", "finetune", "pretrain")
"""Hyper-parameter tables of a grid file."""
SETTINGS = ("eval_batch_size", "executor")
"""Top-level grid-file keys that change how a grid runs, never what a run computes."""

DEFAULTS: dict[str, tuple[str, ...]] = {
    "student": ("layers",),
    "loss": ("kl",),
    "benchmark": ("xnli",),
    "corpus": ("wikipedia",),
    "stage": STAGES,
    "seed": ("0",),
    "lang": (),
}
"""What an option left out means once any option is given (`kdreg run --teacher bert-large`)."""

REQUIRED = ("teacher", "student", "benchmark", "stage", "seed")
"""Keys that cannot be empty lists: a grid without them has nothing to run."""
MAX_SEED = 2**32 - 1
"""The largest seed every library takes (NumPy's limit)."""

DEFAULT_GRID = Path(__file__).with_name("default_grid.toml")
"""The offline default study `kdreg run` runs with no options at all."""
DEFAULT_EXECUTOR = "inline"
"""Every task in this process, one after the other (``--executor`` chooses another)."""


def split_values(values: Iterable[str]) -> tuple[str, ...]:
    """Expand repeated options and comma lists, keeping ``name:a=1,b=2`` parameters together.

    A comma-separated piece that starts ``key=`` (a bare parameter name) belongs to the
    specification before it, whatever its value holds (``languages=de+fr``); a piece like
    ``mse+hidden:layers=2`` starts a new one.
    """
    out: list[str] = []
    for value in values:
        for piece in str(value).split(","):
            piece = piece.strip()
            if not piece:
                continue
            key, eq, _value = piece.partition("=")
            if out and eq and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key.strip()):
                out[-1] = f"{out[-1]},{piece}"
            else:
                out.append(piece)
    return tuple(out)


@dataclass(frozen=True)
class GridRequest:
    """What the user asked for: values per key (strings as typed), hyper-parameters, the executor."""

    values: Mapping[str, tuple[str, ...]]
    hparams: HParams = field(default_factory=HParams)
    executor: str = DEFAULT_EXECUTOR
    grid_file: Path | None = None
    """The grid file the values start from: the user's --config, :data:`DEFAULT_GRID`, or None."""
    defaulted: tuple[str, ...] = ()
    """Keys that took :data:`DEFAULTS` because neither an option nor the grid file gave them."""
    implicit_grid: bool = False
    """The default study is the base because neither --teacher nor --config was given."""

    def get(self, key: str) -> tuple[str, ...]:
        return self.values.get(key, ())

    def describe_defaults(self) -> str:
        """Which defaults this grid took, in one line: the rule of :func:`build_request`, made visible.

        ``kdreg run --teacher synthetic`` starts a study of one's own, where the options left
        out mean xnli, wikipedia and so on rather than the rest of the default study; this
        line says so before anything runs.
        """
        where = f"{DEFAULT_GRID.parent.name}/{DEFAULT_GRID.name}"
        if self.implicit_grid:
            return (f"defaults: the default study ({where}: no --teacher or --config); options given replace "
                    "its values")
        if self.grid_file == DEFAULT_GRID:
            return f"defaults: the default study (--config {where}); options given replace its values"
        why = f"--config {self.grid_file}" if self.grid_file is not None else "--teacher given"
        stages = set(self.values.get("stage", ()))
        unused = {"corpus"} if not stages & {"pretrain", "both"} else set()
        unused |= {"loss"} if stages <= {"none"} else set()
        taken = [_default_text(key, self.values.get(key, ())) for key in self.defaulted if key not in unused]
        if not taken:
            return f"defaults: your study ({why}); every key given"
        return f"defaults: your study ({why}): {', '.join(taken)}"


def _default_text(key: str, values: tuple[str, ...]) -> str:
    if key == "lang":
        return "every language"
    if key == "stage" and values == STAGES:
        return "all four stages"
    return f"{key} {'+'.join(values)}"


def load_grid_file(path: Path) -> dict[str, Any]:
    """Read a TOML grid file; errors name the file."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"Grid file {path} does not exist.") from None
    except OSError as exc:  # a folder, no permission
        raise ConfigError(f"Cannot read grid file {path}: {exc.strerror or exc}.") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Grid file {path} is not valid TOML: {exc}.") from None
    unknown = set(data) - set(KEYS) - set(SECTIONS) - set(SETTINGS)
    if unknown:
        raise ConfigError(
            f"Grid file {path}: unknown key(s) {', '.join(sorted(unknown))}; use "
            f"{', '.join(KEYS + SETTINGS)} and the sections [teacher_finetune], [finetune], [pretrain]."
        )
    if "executor" in data and not (isinstance(data["executor"], str) and data["executor"].strip()):
        raise ConfigError(
            f"Grid file {path}: executor must be a plugin specification such as \"local:workers=2\"."
        )
    return data


def build_request(options: Mapping[str, Sequence[str]], grid_file: Path | None = None,
                  executor: str | None = None) -> GridRequest:
    """Merge the grid file (if any) with command-line options (which win), then apply defaults.

    Without a grid file and without ``--teacher``, the offline default study is the base,
    so ``kdreg run --seed 0,1,2`` is the default study with three seeds; naming a teacher
    starts a study of your own, where options left out take :data:`DEFAULTS`.
    """
    given = {k: split_values(v) for k, v in options.items() if v}
    for key, items in given.items():
        if not items:
            raise ConfigError(f"--{key} was given but names nothing; leave it out for its default.")
    implicit = grid_file is None and "teacher" not in given
    if implicit:
        grid_file = DEFAULT_GRID
    data = load_grid_file(grid_file) if grid_file else {}
    values: dict[str, tuple[str, ...]] = {}
    defaulted: list[str] = []
    for key in KEYS:
        if key in given:
            values[key] = given[key]
        elif key in data:
            raw = data[key]
            values[key] = tuple(str(x) for x in (raw if isinstance(raw, list) else [raw]))
            if not values[key] and key in REQUIRED:
                raise ConfigError(f"Grid file {grid_file}: {key} is empty; list some or leave it out.")
        else:
            values[key] = DEFAULTS.get(key, ())
            defaulted += [key] if key in DEFAULTS else []
    if not values.get("teacher"):
        raise ConfigError("No teacher given; pass --teacher NAME (see `kdreg plugins --kind teacher`).")
    bad = [s for s in values["stage"] if s not in (TEACHER_STAGE, *STAGES)]
    if bad:
        raise ConfigError(f"Unknown stage {bad[0]!r}; use one of: {', '.join((TEACHER_STAGE, *STAGES))}.")
    for seed in values["seed"]:
        if not re.fullmatch(r"[0-9]{1,10}", seed) or int(seed) > MAX_SEED:
            raise ConfigError(f"Seed {seed[:30]!r} is not a whole number from 0 to {MAX_SEED}.")
    chosen = (executor or "").strip() or str(data.get("executor", "")).strip() or DEFAULT_EXECUTOR
    return GridRequest(values=values, hparams=hparams_from_mapping(data), executor=chosen,
                       grid_file=grid_file, defaulted=tuple(defaulted), implicit_grid=implicit)
