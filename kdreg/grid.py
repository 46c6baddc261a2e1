"""From a grid request to jobs: the combinations, the canonical config of each run, its artifacts.

A run is identified by its **canonical config**: sorted JSON of everything that changes
its numbers — the plugins (name, validated parameters, distribution and version), the
stage, the seed, the evaluated languages, the hyper-parameters of the phases the stage
uses, and the pipeline's own version — and by the sha256 of that JSON. Its **setup** is
the same config without the seed (:mod:`kdreg.identity`): the runs a report averages
over seeds, and ``kdreg compare`` pairs, share one. Combinations
that cannot differ are merged by that hash (a corpus only matters for ``pretrain``/``both``;
the loss does not matter for ``none``), so the grid is the product minus what does not
apply.

Intermediate models — *artifacts* — have keys of their own, narrower than a run's: the
fine-tuned teacher depends on teacher, benchmark, seed and its fine-tuning phase (not
on the student or the evaluated languages), so every run that needs it shares one; a
student distilled in pretraining depends on teacher, student, loss, corpus, seed and the
pretraining phase. :mod:`kdreg.execution.graph` turns these keys into the tasks a grid
executes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from kdreg.errors import ConfigError
from kdreg.hparams import HParams
from kdreg.identity import canonical_json, config_hash, setup_hash
from kdreg.languages import evaluation_languages, selected_languages
from kdreg.plugins.registry import ResolvedPlugin
from kdreg.plugins.resolve import PluginSet, ResolvedLoss
from kdreg.records import RunRecord
from kdreg.request import TEACHER_STAGE, GridRequest

PIPELINE_VERSION = "2"
"""Bumped when the training or evaluation code changes numbers for the same config."""

USES_PRETRAIN = frozenset({"pretrain", "both"})
USES_FINETUNED_TEACHER = frozenset({"finetune", "both"})

PHASES: dict[str, tuple[str, ...]] = {
    "teacher": ("teacher_finetune",),
    "none": ("finetune",),
    "finetune": ("teacher_finetune", "finetune"),
    "pretrain": ("pretrain", "finetune"),
    "both": ("teacher_finetune", "pretrain", "finetune"),
}
"""The training phases each stage goes through (their hyper-parameters are in its config)."""


@dataclass(frozen=True)
class Job:
    """One run: its resolved plugins, stage and languages, its identity, and the artifacts it shares."""

    stage: str
    """'teacher' for the fine-tuned teacher's own row, else one of the request's stages."""
    seed: int
    teacher: ResolvedPlugin
    benchmark: ResolvedPlugin
    languages: tuple[str, ...]
    """The ``--lang`` selection as its config records it: the benchmark's own codes, () for all."""
    evaluated: tuple[str, ...]
    """What is evaluated: the source language and the selected targets, in the benchmark's order."""
    hparams: HParams
    record: RunRecord
    teacher_key: str
    """Key of the fine-tuned teacher (teacher × benchmark × seed × teacher fine-tuning)."""
    student: ResolvedPlugin | None = None
    loss: ResolvedLoss | None = None
    corpus: ResolvedPlugin | None = None
    pretrain_key: str | None = None
    """Key of the student distilled in pretraining (stages pretrain and both)."""

    @property
    def needs_fine_tuned_teacher(self) -> bool:
        return self.stage == "teacher" or self.stage in USES_FINETUNED_TEACHER

    @property
    def label(self) -> str:
        """A short human description for progress lines and the plan."""
        if self.stage == "teacher" or self.student is None:
            return f"teacher {self.teacher.spec} on {self.benchmark.spec} (seed {self.seed})"
        parts = [self.student.spec, f"stage {self.stage}"]
        if self.loss is not None:
            parts.append(f"loss {self.loss.spec}")
        if self.corpus is not None:
            parts.append(f"corpus {self.corpus.spec}")
        return f"{' · '.join(parts)} ← {self.teacher.spec} on {self.benchmark.spec} (seed {self.seed})"


@lru_cache(maxsize=64)
def _phases(hp: HParams) -> dict[str, Any]:
    """The phases' hyper-parameters as config (one HParams serves every job of a grid: computed once)."""
    return hp.as_config()


def make_job(stage: str, seed: int, teacher: ResolvedPlugin, benchmark: ResolvedPlugin,
             languages: tuple[str, ...], evaluated: tuple[str, ...], hp: HParams, *,
             student: ResolvedPlugin | None = None, loss: ResolvedLoss | None = None,
             corpus: ResolvedPlugin | None = None, keys: dict[tuple[Any, ...], str] | None = None) -> Job:
    """One job with its canonical config, hash and artifact keys (the same wherever it is built).

    ``keys`` memoises artifact keys across the jobs of one grid (many jobs share each one).
    """
    keys = {} if keys is None else keys
    phases = _phases(hp)
    base = {"teacher": teacher.identity(), "benchmark": benchmark.identity(), "seed": seed,
            "pipeline": PIPELINE_VERSION}
    teacher_id = ("teacher", teacher.spec, benchmark.spec, seed, hp)
    if teacher_id not in keys:
        keys[teacher_id] = config_hash({**base, "hparams": {"teacher_finetune": phases["teacher_finetune"]}})
    config: dict[str, Any] = dict(base)
    config["stage"] = stage
    if stage != "teacher":
        config["student"] = student.identity() if student is not None else None
        config["loss"] = loss.identity() if loss is not None else None
        config["corpus"] = corpus.identity() if corpus is not None else None
    config["languages"] = list(languages)
    config["hparams"] = {name: phases[name] for name in PHASES[stage]}
    pretrain_key = None
    if corpus is not None and student is not None and loss is not None:
        pretrain_id = ("pretrain", teacher.spec, student.spec, loss.spec, corpus.spec, seed, hp)
        if pretrain_id not in keys:
            keys[pretrain_id] = config_hash({
                "teacher": teacher.identity(), "student": student.identity(), "loss": loss.identity(),
                "corpus": corpus.identity(), "seed": seed, "hparams": {"pretrain": phases["pretrain"]},
                "pipeline": PIPELINE_VERSION,
            })
        pretrain_key = keys[pretrain_id]
    text = canonical_json(config)
    stored = json.loads(text)  # what the store keeps, and the setup is hashed from
    record = RunRecord(
        config_hash=hashlib.sha256(text.encode()).hexdigest(), config=stored, setup_hash=setup_hash(stored),
        teacher=teacher.name, teacher_spec=teacher.spec, benchmark=benchmark.name,
        benchmark_spec=benchmark.spec, stage=stage, seed=seed,
        student=student.name if student is not None else None,
        student_spec=student.spec if student is not None else None,
        loss=loss.name if loss is not None else None, loss_spec=loss.spec if loss is not None else None,
        corpus=corpus.name if corpus is not None else None,
        corpus_spec=corpus.spec if corpus is not None else None,
    )
    return Job(stage, seed, teacher, benchmark, languages, evaluated, hp, record, keys[teacher_id],
               student, loss, corpus, pretrain_key)


def with_teacher_row(stages: list[str]) -> bool:
    """Whether a grid of ``stages`` includes the fine-tuned teacher's own row.

    It does when a stage distils from the fine-tuned teacher (finetune, both) — its row is
    the reference those students are read against, and the model is trained anyway — or
    when ``--stage teacher`` asks for it; a grid of stages none and pretrain never trains a
    fine-tuned teacher, so it gets no teacher row unless asked.
    """
    return TEACHER_STAGE in stages or bool(USES_FINETUNED_TEACHER & set(stages))


def expand_grid(request: GridRequest, plugins: PluginSet) -> list[Job]:
    """The jobs of a grid, each teacher row first, duplicates merged by config hash.

    Every plugin is resolved (and validated) through ``plugins``; ``--lang`` codes are
    matched against each benchmark here, once (an unknown one is a ConfigError before
    anything is written), so a run's config records the benchmark's own codes and equal
    selections are one run however they were spelled.
    """
    v = request.values
    hp = request.hparams
    stages = list(dict.fromkeys(v["stage"]))
    teacher_row = with_teacher_row(stages)
    stages = [stage for stage in stages if stage != TEACHER_STAGE]
    teachers = [plugins.resolve("teacher", t) for t in v["teacher"]]
    students = [plugins.resolve("student", s) for s in v["student"]] if stages else []
    losses = [plugins.resolve_loss(text) for text in v["loss"]]
    benchmarks = [plugins.resolve("benchmark", b) for b in v["benchmark"]]
    corpora = [plugins.resolve("corpus", c) for c in v["corpus"]] if USES_PRETRAIN & set(stages) else []
    if USES_PRETRAIN & set(stages) and not corpora:
        raise ConfigError(
            "Stages pretrain/both need a corpus; pass --corpus NAME (see `kdreg plugins --kind corpus`)."
        )
    if (USES_FINETUNED_TEACHER | USES_PRETRAIN) & set(stages) and not losses:
        raise ConfigError("Stages finetune/pretrain/both need a loss; pass --loss NAME.")
    seeds = [int(s) for s in dict.fromkeys(v["seed"])]
    requested = tuple(dict.fromkeys(v["lang"]))

    jobs: dict[str, Job] = {}
    keys: dict[tuple[Any, ...], str] = {}

    def add(job: Job) -> None:
        jobs.setdefault(job.record.config_hash, job)

    selections: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
    for benchmark in benchmarks:
        instance = plugins.instance(benchmark)
        languages = selected_languages(instance, requested, benchmark.spec) if requested else ()
        evaluated = tuple(evaluation_languages(instance, languages, benchmark.spec))
        selections[benchmark.spec] = (languages, evaluated)
    for teacher in teachers:
        for benchmark in benchmarks:
            languages, evaluated = selections[benchmark.spec]
            for seed in seeds:
                if teacher_row:
                    add(make_job("teacher", seed, teacher, benchmark, languages, evaluated, hp, keys=keys))
                for student in students:
                    for stage in stages:
                        for loss in (losses if stage != "none" else [None]):
                            for corpus in (corpora if stage in USES_PRETRAIN else [None]):
                                add(make_job(stage, seed, teacher, benchmark, languages, evaluated, hp,
                                             student=student, loss=loss, corpus=corpus, keys=keys))
    return list(jobs.values())
