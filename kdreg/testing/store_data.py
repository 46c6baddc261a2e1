"""A synthetic experiment store for tests of query, report and export (no training).

:func:`synthetic_runs` is the ground truth — a deterministic seed study of 2 teachers × 2
benchmarks × 3 seeds × (the teacher's own row + 2 students × stages none / finetune /
pretrain / both × 3 losses), 252 succeeded runs plus a failed and a pending one, with
scores per language for two metrics and two splits. :func:`seed_store` writes exactly that
through the public store API (``create_grid`` → ``plan_run`` → ``start_run`` →
``record_results`` / ``record_curve`` → ``finish_run``), so tests compare what kdreg reads
back against numbers they hold themselves.

XNLI-style results use ISO 639-1 codes (``de``), SIB-200-style ones ``deu_Latn``: the
same languages under two spellings, as real benchmarks do.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kdreg.languages import normalize_language

TEACHERS = ("mbert", "xlmr")
STUDENTS = ("layers:keep=6", "distil")
LOSSES = ("kl:alpha=1,temperature=1", "kl:alpha=0.5,temperature=4", "mse")
BENCHMARK_LANGUAGES = {
    "xnli": ("en", "de", "fr", "zh"),
    "sib200": ("eng_Latn", "deu_Latn", "fra_Latn", "zho_Hans"),
}
SEEDS = (0, 1, 2)
METRICS = ("accuracy", "macro_f1")
SPLITS = ("validation", "test")


@dataclass(frozen=True)
class SyntheticRun:
    """One run as the tests expect to read it back."""

    id: int
    teacher: str
    benchmark: str
    stage: str
    seed: int
    status: str = "succeeded"
    student: str | None = None
    loss: str | None = None
    corpus: str | None = None
    values: dict[tuple[str, str, str], float] = field(default_factory=dict, compare=False)
    """(metric, split, benchmark language code) → value."""
    source: str | None = None

    @property
    def group(self) -> tuple[str | None, ...]:
        """What the seeds of one configuration share."""
        return (self.teacher, self.student, self.stage, self.loss, self.benchmark, self.corpus)

    @property
    def config(self) -> dict[str, object]:
        """Its canonical config: the seeds of one configuration share a setup (all but the seed)."""
        return {
            "teacher": self.teacher,
            "student": self.student,
            "loss": self.loss,
            "benchmark": self.benchmark,
            "corpus": self.corpus,
            "stage": self.stage,
            "seed": self.seed,
        }

    def scores(self, metric: str = "accuracy", split: str = "test") -> dict[str, float]:
        """Normalised language → value for one metric and split."""
        return {
            normalize_language(lang): v
            for (m, s, lang), v in self.values.items()
            if m == metric and s == split
        }


def _name(spec: str | None) -> str | None:
    return None if spec is None else spec.split(":", 1)[0]


def _configurations() -> list[tuple[str, str, str | None, str | None, str | None]]:
    """(benchmark, stage, student, loss, corpus) of one teacher and seed, teacher row first."""
    out: list[tuple[str, str, str | None, str | None, str | None]] = []
    for benchmark in BENCHMARK_LANGUAGES:
        out.append((benchmark, "teacher", None, None, None))
        for student in STUDENTS:
            out.append((benchmark, "none", student, None, None))
            for stage in ("finetune", "pretrain", "both"):
                for loss in LOSSES:
                    out.append(
                        (benchmark, stage, student, loss, "wikipedia" if stage != "finetune" else None)
                    )
    return out


def synthetic_runs() -> list[SyntheticRun]:
    """The deterministic ground truth, in the order :func:`seed_store` plans the runs (ids 1…)."""
    rng = random.Random(20210605)
    runs: list[SyntheticRun] = []
    for teacher in TEACHERS:
        for seed in SEEDS:
            for index, (benchmark, stage, student, loss, corpus) in enumerate(_configurations()):
                languages = BENCHMARK_LANGUAGES[benchmark]
                base = 0.55 + 0.004 * index + (0.05 if teacher == "xlmr" else 0.0)
                values = {}
                for metric in METRICS:
                    for split in SPLITS:
                        for position, lang in enumerate(languages):
                            value = base - 0.03 * position + rng.uniform(-0.02, 0.02)
                            values[(metric, split, lang)] = round(
                                value - (0.05 if metric == "macro_f1" else 0), 6
                            )
                runs.append(
                    SyntheticRun(
                        id=len(runs) + 1,
                        teacher=teacher,
                        benchmark=benchmark,
                        stage=stage,
                        seed=seed,
                        student=student,
                        loss=loss,
                        corpus=corpus,
                        values=values,
                        source=languages[0],
                    )
                )
    runs.append(
        SyntheticRun(
            id=len(runs) + 1,
            teacher="mbert",
            benchmark="xnli",
            stage="finetune",
            seed=7,
            status="failed",
            student="distil",
            loss="mse",
        )
    )
    runs.append(
        SyntheticRun(
            id=len(runs) + 1,
            teacher="mbert",
            benchmark="xnli",
            stage="none",
            seed=8,
            status="pending",
            student="distil",
        )
    )
    return runs


def seed_store(url: str) -> list[SyntheticRun]:
    """Write :func:`synthetic_runs` into the (new) store at ``url`` through the store API."""
    from kdreg.store.store import ResultRecord, RunRecord, open_store

    runs = synthetic_runs()
    store = open_store(url)
    try:
        grid = store.create_grid("kdreg run (synthetic store for tests)", {"synthetic": True})
        for run in runs:
            config = run.config
            record = RunRecord(
                config_hash=hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest(),
                config=config,
                teacher=run.teacher,
                teacher_spec=run.teacher,
                benchmark=run.benchmark,
                benchmark_spec=run.benchmark,
                stage=run.stage,
                seed=run.seed,
                student=_name(run.student),
                student_spec=run.student,
                loss=_name(run.loss),
                loss_spec=run.loss,
                corpus=run.corpus,
                corpus_spec=run.corpus,
            )
            run_id, _ = store.plan_run(grid, record)
            assert run_id == run.id, "seed_store needs a new, empty database"
            if run.status == "pending":
                continue
            store.start_run(run_id, {"python": "3.11", "synthetic": True})
            if run.status == "failed":
                store.record_curve(run_id, "finetune", [1, 2, 3], [2.0, 1.5, float("nan")])
                store.finish_run(
                    run_id,
                    "failed",
                    error="DataError: loss became NaN at step 3",
                    traceback="Traceback (most recent call last):\n  ...\nDataError: loss became NaN",
                )
                continue
            store.record_results(
                run_id,
                [
                    ResultRecord(
                        language=lang,
                        lang=normalize_language(lang),
                        split=split,
                        metric=metric,
                        value=value,
                        is_source=lang == run.source,
                    )
                    for (metric, split, lang), value in run.values.items()
                ],
            )
            if run.seed == 0:
                steps = list(range(10, 210, 10))
                store.record_curve(run_id, "finetune", steps, [1.2 / (1 + s / 50) for s in steps])
            store.finish_run(run_id, "succeeded")
    finally:
        store.close()
    return runs


def seeded_copy(cache_dir: Path, target: Path) -> list[SyntheticRun]:
    """Copy a synthetic store (built once into ``cache_dir``) to ``target``; returns the ground truth.

    Building takes about a second; tests that only read can share one copy per module.
    """
    template = cache_dir / "synthetic-store.db"
    if not template.exists():
        building = cache_dir / "synthetic-store.building.db"
        for stale in cache_dir.glob("synthetic-store.building.db*"):
            stale.unlink()
        seed_store(f"sqlite:///{building}")
        import sqlite3

        conn = sqlite3.connect(building)
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
        building.replace(template)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, target)
    return synthetic_runs()


# --------------------------------------------------------------------------- runs with chosen numbers
def _plugin_identity(spec: str | None) -> dict[str, object] | None:
    """A plugin's identity as a canonical config holds it, from ``name:key=value,…``."""
    if spec is None:
        return None
    name, _, text = spec.partition(":")
    params = dict(item.split("=", 1) for item in text.split(",") if "=" in item)
    return {"distribution": "kdreg", "name": name, "params": params, "version": "0.1.0"}


def study_config(stage: str, seed: int, *, teacher: str = "mbert", student: str | None = "distil",
                 loss: str | None = "kl", benchmark: str = "xnli", corpus: str | None = None,
                 hparams: dict[str, dict[str, object]] | None = None) -> dict[str, object]:
    """A canonical config of the shape the grid writes (plugins as identities, phases by stage)."""
    phases = {"teacher": ("teacher_finetune",), "none": ("finetune",),
              "finetune": ("teacher_finetune", "finetune"), "pretrain": ("pretrain", "finetune"),
              "both": ("teacher_finetune", "pretrain", "finetune")}[stage]
    given = hparams or {}
    config: dict[str, object] = {
        "teacher": _plugin_identity(teacher), "benchmark": _plugin_identity(benchmark), "seed": seed,
        "pipeline": "2", "stage": stage, "languages": [],
        "hparams": {phase: {"learning_rate": 5e-5, **given.get(phase, {})} for phase in phases},
    }
    if stage != "teacher":
        config["student"] = _plugin_identity(student)
        config["loss"] = _plugin_identity(loss) if stage != "none" else None
        config["corpus"] = _plugin_identity(corpus) if stage in ("pretrain", "both") else None
    return config


def write_run(store: Any, config: dict[str, object], scores: dict[str, float], *, source: str = "en",
              metric: str = "accuracy", split: str = "test", status: str = "succeeded",
              grid: int | None = None, extra: tuple[tuple[str, str, float], ...] = ()) -> int:
    """Plan, run and finish one run of ``config`` with ``scores`` (language → value) through the store API.

    ``extra``: further (metric, split, value) results on the source language (e.g. a parameter count).
    Returns the run's id.
    """
    from kdreg.identity import config_hash
    from kdreg.store.store import ResultRecord, RunRecord

    def spec(kind: str) -> str | None:
        identity = config.get(kind)
        if not isinstance(identity, dict):
            return None
        params = ",".join(f"{k}={v}" for k, v in identity["params"].items())
        return f"{identity['name']}:{params}" if params else str(identity["name"])

    def name(kind: str) -> str | None:
        identity = config.get(kind)
        return str(identity["name"]) if isinstance(identity, dict) else None

    record = RunRecord(
        config_hash=config_hash(config), config=config,
        teacher=name("teacher") or "", teacher_spec=spec("teacher") or "",
        benchmark=name("benchmark") or "", benchmark_spec=spec("benchmark") or "",
        stage=str(config["stage"]), seed=int(config["seed"]),  # type: ignore[call-overload]
        student=name("student"), student_spec=spec("student"), loss=name("loss"), loss_spec=spec("loss"),
        corpus=name("corpus"), corpus_spec=spec("corpus"),
    )
    run_id, _ = store.plan_run(grid, record)
    if status == "pending":
        return run_id
    store.start_run(run_id, {"synthetic": True})
    results = [ResultRecord(lang, normalize_language(lang), split, metric, value, lang == source)
               for lang, value in scores.items()]
    results += [ResultRecord(source, normalize_language(source), s, m, v, True) for m, s, v in extra]
    store.record_results(run_id, results)
    store.finish_run(run_id, status)
    return run_id
