"""From options to jobs: a grid request, its expansion, and the canonical config of each run.

A run is identified by its **canonical config**: sorted JSON of everything that changes
its numbers — the plugins (name, validated parameters, distribution and version), the
stage, the seed, the evaluated languages, the hyper-parameters of the phases the stage
uses, and the pipeline's own version — and by the sha256 of that JSON. Combinations
that cannot differ are merged by that hash (a corpus only matters for ``pretrain``/``both``;
the loss does not matter for ``none``), so the grid is the product minus what does not
apply.

Intermediate models have keys of their own, narrower than a run's: the fine-tuned
teacher depends on teacher, benchmark, seed and its fine-tuning phase (not on the
student or the evaluated languages), so every run that needs it shares one.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kdreg.errors import ConfigError
from kdreg.pipeline.hparams import HParams, hparams_from_mapping
from kdreg.store.store import RunRecord

PIPELINE_VERSION = "2"
"""Bumped when the training or evaluation code changes numbers for the same config."""

STAGES = ("none", "finetune", "pretrain", "both")
USES_PRETRAIN = frozenset({"pretrain", "both"})
USES_FINETUNED_TEACHER = frozenset({"finetune", "both"})
KEYS = ("teacher", "student", "loss", "benchmark", "corpus", "stage", "seed", "lang")

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


def canonical_json(data: Any) -> str:
    """Sorted, compact JSON: the same config always serialises to the same text."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def config_hash(data: Any) -> str:
    """sha256 of the canonical JSON."""
    return hashlib.sha256(canonical_json(data).encode()).hexdigest()


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
    """What the user asked for: values per key (strings as typed) and hyper-parameters."""

    values: Mapping[str, tuple[str, ...]]
    hparams: HParams = field(default_factory=HParams)

    def get(self, key: str) -> tuple[str, ...]:
        return self.values.get(key, ())


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
    unknown = set(data) - set(KEYS) - {"teacher_finetune", "finetune", "pretrain", "eval_batch_size"}
    if unknown:
        raise ConfigError(
            f"Grid file {path}: unknown key(s) {', '.join(sorted(unknown))}; "
            f"use {', '.join(KEYS)} and the sections [teacher_finetune], [finetune], [pretrain]."
        )
    return data


def build_request(options: Mapping[str, Sequence[str]], grid_file: Path | None = None) -> GridRequest:
    """Merge the grid file (if any) with command-line options (which win), then apply defaults.

    Without a grid file and without ``--teacher``, the offline default study is the base,
    so ``kdreg run --seed 0,1,2`` is the default study with three seeds; naming a teacher
    starts a study of your own, where options left out take :data:`DEFAULTS`.
    """
    given = {k: split_values(v) for k, v in options.items() if v}
    for key, items in given.items():
        if not items:
            raise ConfigError(f"--{key} was given but names nothing; leave it out for its default.")
    if grid_file is None and "teacher" not in given:
        grid_file = DEFAULT_GRID
    data = load_grid_file(grid_file) if grid_file else {}
    values: dict[str, tuple[str, ...]] = {}
    for key in KEYS:
        if key in given:
            values[key] = given[key]
        elif key in data:
            raw = data[key]
            items = raw if isinstance(raw, list) else [raw]
            values[key] = tuple(str(x) for x in items)
            if not values[key] and key in REQUIRED:
                raise ConfigError(f"Grid file {grid_file}: {key} is empty; list some or leave it out.")
        else:
            values[key] = DEFAULTS.get(key, ())
    if not values.get("teacher"):
        raise ConfigError("No teacher given; pass --teacher NAME (see `kdreg plugins --kind teacher`).")
    bad = [s for s in values["stage"] if s not in STAGES]
    if bad:
        raise ConfigError(f"Unknown stage {bad[0]!r}; use one of: {', '.join(STAGES)}.")
    for seed in values["seed"]:
        if not re.fullmatch(r"[0-9]{1,10}", seed) or int(seed) > MAX_SEED:
            raise ConfigError(f"Seed {seed[:30]!r} is not a whole number from 0 to {MAX_SEED}.")
    return GridRequest(values=values, hparams=hparams_from_mapping(data))


@dataclass
class Job:
    """One run to execute: the resolved plugins, the stage, and its identity."""

    stage: str
    """'teacher' for the fine-tuned teacher's own row, else one of STAGES."""
    seed: int
    teacher: Any
    benchmark: Any
    languages: tuple[str, ...]
    hparams: HParams
    record: RunRecord
    teacher_key: str
    student: Any = None
    loss: Any = None
    corpus: Any = None
    pretrain_key: str | None = None

    @property
    def label(self) -> str:
        """A short human description for progress lines and the plan."""
        if self.stage == "teacher":
            return f"teacher {self.teacher.spec} on {self.benchmark.spec} (seed {self.seed})"
        parts = [self.student.spec, f"stage {self.stage}"]
        if self.loss is not None:
            parts.append(f"loss {self.loss.spec}")
        if self.corpus is not None:
            parts.append(f"corpus {self.corpus.spec}")
        return f"{' · '.join(parts)} ← {self.teacher.spec} on {self.benchmark.spec} (seed {self.seed})"


def _phases(stage: str, hp: HParams) -> dict[str, Any]:
    config = hp.as_config()
    wanted = {
        "teacher": ("teacher_finetune",),
        "none": ("finetune",),
        "finetune": ("teacher_finetune", "finetune"),
        "pretrain": ("pretrain", "finetune"),
        "both": ("teacher_finetune", "pretrain", "finetune"),
    }[stage]
    return {name: config[name] for name in wanted}


def expand_grid(request: GridRequest, resolve: Any, resolve_loss: Any,
                select_languages: Any = None) -> list[Job]:
    """The jobs of a grid, teachers first, duplicates merged by config hash.

    ``resolve(kind, text)`` returns a ResolvedPlugin; ``resolve_loss(text)`` a resolved
    (possibly combined) loss with ``spec``, ``name`` and ``identity()``;
    ``select_languages(benchmark, codes)`` the benchmark's own codes that ``--lang`` selects
    (() for all; it raises ConfigError for a code the benchmark lacks). Without it, the
    codes are recorded normalised and sorted.
    """
    v = request.values
    hp = request.hparams
    teachers = [resolve("teacher", t) for t in v["teacher"]]
    students = [resolve("student", s) for s in v["student"]]
    losses = [resolve_loss(text) for text in v["loss"]]
    benchmarks = [resolve("benchmark", b) for b in v["benchmark"]]
    stages = list(dict.fromkeys(v["stage"]))
    corpora = [resolve("corpus", c) for c in v["corpus"]] if USES_PRETRAIN & set(stages) else []
    if USES_PRETRAIN & set(stages) and not corpora:
        raise ConfigError(
            "Stages pretrain/both need a corpus; pass --corpus NAME (see `kdreg plugins --kind corpus`)."
        )
    seeds = [int(s) for s in dict.fromkeys(v["seed"])]
    requested = tuple(dict.fromkeys(v["lang"]))
    if (USES_FINETUNED_TEACHER | USES_PRETRAIN) & set(stages) and not losses:
        raise ConfigError("Stages finetune/pretrain/both need a loss; pass --loss NAME.")

    jobs: dict[str, Job] = {}
    for teacher in teachers:
        for benchmark in benchmarks:
            languages = _languages(benchmark, requested, select_languages)
            for seed in seeds:
                base = {
                    "teacher": teacher.identity(),
                    "benchmark": benchmark.identity(),
                    "seed": seed,
                    "pipeline": PIPELINE_VERSION,
                }
                teacher_key = config_hash({**base, "hparams": _phases("teacher", hp)})
                config = {**base, "stage": "teacher", "languages": list(languages),
                          "hparams": _phases("teacher", hp)}
                _add(jobs, Job("teacher", seed, teacher, benchmark, languages, hp,
                               _record(config, teacher, benchmark, "teacher", seed), teacher_key))
                for student in students:
                    for stage in stages:
                        stage_losses = losses if stage != "none" else [None]
                        stage_corpora = corpora if stage in USES_PRETRAIN else [None]
                        for loss in stage_losses:
                            for corpus in stage_corpora:
                                pretrain_key = None
                                if corpus is not None:
                                    pretrain_key = config_hash({
                                        "teacher": teacher.identity(), "student": student.identity(),
                                        "loss": loss.identity(), "corpus": corpus.identity(), "seed": seed,
                                        "hparams": {"pretrain": hp.as_config()["pretrain"]},
                                        "pipeline": PIPELINE_VERSION,
                                    })
                                config = {
                                    **base,
                                    "stage": stage,
                                    "student": student.identity(),
                                    "loss": loss.identity() if loss is not None else None,
                                    "corpus": corpus.identity() if corpus is not None else None,
                                    "languages": list(languages),
                                    "hparams": _phases(stage, hp),
                                }
                                record = _record(config, teacher, benchmark, stage, seed, student, loss,
                                                 corpus)
                                _add(jobs, Job(stage, seed, teacher, benchmark, languages, hp, record,
                                               teacher_key, student, loss, corpus, pretrain_key))
    return list(jobs.values())


def _languages(benchmark: Any, requested: tuple[str, ...], select: Any) -> tuple[str, ...]:
    if not requested:
        return ()
    if select is not None:
        return tuple(select(benchmark, requested))
    from kdreg.languages import normalize_language

    return tuple(sorted({normalize_language(code) for code in requested}))


def _add(jobs: dict[str, Job], job: Job) -> None:
    jobs.setdefault(job.record.config_hash, job)


def _record(config: dict[str, Any], teacher: Any, benchmark: Any, stage: str, seed: int,
            student: Any = None, loss: Any = None, corpus: Any = None) -> RunRecord:
    return RunRecord(
        config_hash=config_hash(config),
        config=json.loads(canonical_json(config)),
        teacher=teacher.name,
        teacher_spec=teacher.spec,
        benchmark=benchmark.name,
        benchmark_spec=benchmark.spec,
        stage=stage,
        seed=seed,
        student=student.name if student is not None else None,
        student_spec=student.spec if student is not None else None,
        loss=loss.name if loss is not None else None,
        loss_spec=loss.spec if loss is not None else None,
        corpus=corpus.name if corpus is not None else None,
        corpus_spec=corpus.spec if corpus is not None else None,
    )
