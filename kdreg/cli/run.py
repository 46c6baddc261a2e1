"""``kdreg run``: expand a grid of combinations, train, evaluate every language, log it all."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from kdreg.cli.options import DbOption
from kdreg.cli.output import console, err_console, print_table, render_rows


def _multi(help_text: str, *names: str) -> Any:
    return typer.Option(*names, help=help_text + " Repeat the option or give a comma list.",
                        show_default=False)


Many = list[str] | None
Teachers = Annotated[Many, _multi("Teacher plugin(s), e.g. bert-large or hf:path=/models/t.",
                                  "--teacher", "-t")]
Students = Annotated[Many, _multi("Student plugin(s) (default: layers, half the teacher's layers).",
                                  "--student", "-s")]
Losses = Annotated[Many, _multi("KD loss(es), e.g. kl:temperature=2 or kl+0.5*hidden (default: kl).",
                                "--loss", "-l")]
Benchmarks = Annotated[Many, _multi("Benchmark(s) (default: xnli).", "--benchmark", "-b")]
Corpora = Annotated[Many, _multi("Corpus plugin(s) for stages pretrain/both (default: wikipedia).",
                                 "--corpus", "-c")]
Stages = Annotated[Many, _multi("Stage(s): none, finetune, pretrain, both (default: all four).", "--stage")]
Seeds = Annotated[Many, _multi("Seed(s) (default: 0).", "--seed")]
Langs = Annotated[Many, _multi("Target language(s) to evaluate besides the source, as the benchmark spells "
                               "them or ISO 639 codes (default: all).", "--lang")]


class RichReporter:
    """Grid progress (done/total, ETA) and the current phase's steps, on stderr."""

    def __init__(self) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TimeRemainingColumn(), console=err_console, transient=False,
            disable=not err_console.is_terminal,
        )
        self.grid_task: Any = None
        self.step_task: Any = None
        self.phase = ""

    def __enter__(self) -> RichReporter:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def log(self, message: str) -> None:
        err_console.print(f"  [dim]{message}[/]")

    def job_started(self, index: int, total: int, job: Any) -> None:
        if self.grid_task is None:
            self.grid_task = self.progress.add_task("grid", total=total)
        err_console.print(f"[bold]\\[{index}/{total}][/] {job.label}")

    def step(self, phase: str, step: int, total: int, loss: float) -> None:
        if self.step_task is None or phase != self.phase or step == 1:
            if self.step_task is not None:
                self.progress.remove_task(self.step_task)
            self.step_task = self.progress.add_task(phase, total=total)
            self.phase = phase
        self.progress.update(self.step_task, completed=step, description=f"{phase} loss {loss:.3f}")

    def job_finished(self, job: Any, status: str, seconds: float, error: str | None) -> None:
        if self.step_task is not None:
            self.progress.remove_task(self.step_task)
            self.step_task = None
        if self.grid_task is not None:
            self.progress.advance(self.grid_task)
        colour = {"succeeded": "green", "failed": "red"}.get(status, "yellow")
        detail = f": {error}" if error else ""
        err_console.print(f"  [{colour}]{status}[/] in {seconds:.1f}s{detail}")
        if not err_console.is_terminal:
            sys.stderr.flush()


def run(
    teacher: Teachers = None,
    student: Students = None,
    loss: Losses = None,
    benchmark: Benchmarks = None,
    corpus: Corpora = None,
    stage: Stages = None,
    seed: Seeds = None,
    lang: Langs = None,
    config: Annotated[Path | None, typer.Option(
        "--config", help="TOML grid file with the same keys and [phase] hyper-parameters.")] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Print the plan; train and write nothing.")] = False,
    retry_failed: Annotated[bool, typer.Option(
        "--retry-failed", help="Run combinations that failed before.")] = False,
    force: Annotated[bool, typer.Option(
        "--force", help="Run every combination again, even succeeded ones.")] = False,
    fail_fast: Annotated[bool, typer.Option(
        "--fail-fast", help="Stop at the first failing combination (it is still stored).")] = False,
    device: Annotated[str, typer.Option(
        "--device", help="auto (CUDA with bf16 when available), cpu or cuda.")] = "auto",
    db: DbOption = None,
) -> None:
    """Run a grid of teacher × student × loss × benchmark × corpus × stage × seed; log every result.

    With no options it runs the offline default study (a synthetic multilingual world). Which
    defaults apply: with --teacher (or --config), options left out take the defaults shown
    below; without either, the default study is the base and options given replace its
    values (kdreg run --seed 0,1,2 is the default study with three seeds).
    """
    from kdreg.grid import build_request
    from kdreg.pipeline.instances import PluginInstances
    from kdreg.pipeline.runner import plan, preflight, resolve_jobs, run_grid
    from kdreg.pipeline.training import check_device_name
    from kdreg.plugins.registry import registry
    from kdreg.store.store import open_store

    check_device_name(device)  # before a dry run too
    _quiet_libraries()
    options = {"teacher": teacher, "student": student, "loss": loss, "benchmark": benchmark, "corpus": corpus,
               "stage": stage, "seed": seed, "lang": lang}
    request = build_request({k: v or [] for k, v in options.items()}, config)
    instances = PluginInstances()  # one instance per plugin for the whole grid, checked once
    jobs = resolve_jobs(request, registry(), instances)
    preflight(jobs, instances)
    if dry_run:
        _print_plan(plan(_existing_store(db), jobs, retry_failed=retry_failed, force=force))
        return
    from kdreg.pipeline.training import Device

    torch_device = Device(device)  # a bad --device fails before the database is touched
    store = open_store(db)
    items = plan(store, jobs, retry_failed=retry_failed, force=force)
    command = "kdreg " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    to_run = sum(i.action == "run" for i in items)
    err_console.print(f"grid: {len(items)} combinations, {to_run} to run, {len(items) - to_run} skipped · "
                      f"{torch_device.describe()} · db {store.label}")
    try:
        with RichReporter() as reporter:
            outcome = run_grid(store, items, command=command, device=torch_device, fail_fast=fail_fast,
                               reporter=reporter, instances=instances)
    except KeyboardInterrupt:
        from kdreg.cli.output import print_error

        print_error("Interrupted: the run in progress is marked interrupted and everything finished before "
                    "it is stored; run the same command again to go on.")
        raise typer.Exit(130) from None  # the shell's convention for Ctrl-C
    _print_summary(store, outcome.grid_id)
    if outcome.failed:
        err_console.print(
            f"[red]{len(outcome.failed)} combination(s) failed[/]; `kdreg query --status failed` lists them, "
            "`kdreg show RUN` gives the traceback, `--retry-failed` runs them again."
        )
        raise typer.Exit(1)


def _existing_store(db: str | None) -> Any:
    """The store if its database exists already (a dry run creates nothing)."""
    from kdreg.paths import resolve_db_url
    from kdreg.store.engine import sqlite_path
    from kdreg.store.store import open_store

    path = sqlite_path(resolve_db_url(db)[0])
    return None if path is not None and not path.exists() else open_store(db)


def _quiet_libraries() -> None:
    """kdreg draws its own progress: silence transformers' and datasets' bars and load reports.

    Environment variables cover libraries not imported yet (a dry run need not import
    them at all); the libraries already imported are told directly.
    """
    import importlib
    import os

    for name, value in (("TOKENIZERS_PARALLELISM", "false"), ("TRANSFORMERS_VERBOSITY", "error"),
                        ("DATASETS_VERBOSITY", "error"), ("HF_HUB_DISABLE_PROGRESS_BARS", "1")):
        os.environ.setdefault(name, value)
    if "huggingface_hub" in sys.modules:
        importlib.import_module("huggingface_hub.utils").disable_progress_bars()
    if "transformers" in sys.modules:
        logging = importlib.import_module("transformers.utils.logging")
        logging.set_verbosity_error()
        logging.disable_progress_bar()
    if "datasets" in sys.modules:
        importlib.import_module("datasets.utils").disable_progress_bars()
        importlib.import_module("datasets.utils.logging").set_verbosity_error()


def _print_plan(items: list[Any]) -> None:
    rows = []
    for i in items:
        state = i.previous or "new"
        rows.append({"action": i.action, "before": state, "stage": i.job.stage, "combination": i.job.label,
                     "hash": i.job.record.config_hash[:10]})
    render_rows(rows, ["action", "before", "stage", "combination", "hash"], title="plan")
    run_count = sum(i.action == "run" for i in items)
    console.print(f"{run_count} to run, {len(items) - run_count} skipped "
                  "(dry run: nothing was trained or written)")


MAX_LANGUAGE_COLUMNS = 12
"""Beyond this many languages the summary shows the source and the zero-shot average only."""


def _print_summary(store: Any, grid_id: int | None) -> None:
    """This grid's test scores per language, one table per benchmark, one row per run.

    The first metric the benchmark records (accuracy when it has it); the source language
    first, marked with *, then the zero-shot languages and their average.
    """
    from sqlalchemy import select

    from kdreg.store.schema import GridRun, Result, Run

    with store.session() as s:
        runs = s.scalars(select(Run).join(GridRun, GridRun.run_id == Run.id).where(GridRun.grid_id == grid_id)
                         .order_by(Run.id)).all()
        ids = [r.id for r in runs]
        results = s.scalars(select(Result).where(Result.run_id.in_(ids), Result.split == "test")
                            .order_by(Result.id)).all() if ids else []
    by_benchmark: dict[str, list[Any]] = {}
    for run in runs:
        by_benchmark.setdefault(run.benchmark_spec, []).append(run)
    for benchmark, group in by_benchmark.items():
        members = {run.id for run in group}
        _print_benchmark_summary(grid_id, benchmark, group, [r for r in results if r.run_id in members])


def _label_cells(run: Any, with_corpus: bool) -> list[str]:
    """The describing cells of a run's summary row."""
    return [str(run.id), run.stage, run.student_spec or "(teacher)", run.loss_spec or "",
            *([run.corpus_spec or ""] if with_corpus else []), str(run.seed), run.status]


def _print_benchmark_summary(grid_id: int | None, benchmark: str, runs: list[Any],
                             results: list[Any]) -> None:
    from rich.markup import escape
    from rich.table import Table

    metrics = list(dict.fromkeys(r.metric for r in results))
    metric = "accuracy" if "accuracy" in metrics else (metrics[0] if metrics else "accuracy")
    scores: dict[int, dict[str, float]] = {}
    sources: list[str] = []
    targets: list[str] = []
    for r in results:
        if r.metric != metric:
            continue
        scores.setdefault(r.run_id, {})[r.language] = r.value
        (sources if r.is_source else targets).append(r.language)
    sources = list(dict.fromkeys(sources))
    targets = [lang for lang in dict.fromkeys(targets) if lang not in sources]
    shown = targets if len(targets) <= MAX_LANGUAGE_COLUMNS else []
    with_corpus = any(run.corpus_spec for run in runs)
    table = Table(title=f"grid {grid_id}: test {metric} per language (* source)",
                  caption=f"benchmark {escape(benchmark)}")
    all_succeeded = all(run.status == "succeeded" for run in runs)
    labels = ("id", "stage", "student", "loss", *(["corpus"] if with_corpus else []), "seed",
              *([] if all_succeeded else ["status"]))
    for name in labels:
        table.add_column(name, overflow="fold")
    for name in [f"{lang}*" for lang in sources] + shown + ["zero-shot avg"]:
        table.add_column(escape(name), justify="right", no_wrap=True)
    for run in runs:
        mine = scores.get(run.id, {})
        zero_shot = [mine[lang] for lang in targets if lang in mine]
        cells = _label_cells(run, with_corpus)[: len(labels)]
        numbers = [mine.get(lang) for lang in (*sources, *shown)]
        numbers.append(sum(zero_shot) / len(zero_shot) if zero_shot else None)
        table.add_row(*(escape(c) for c in cells), *("" if v is None else f"{v:.3f}" for v in numbers))
    print_table(table)
    if targets and not shown:
        console.print(f"{len(targets)} zero-shot languages: `kdreg report --grid {grid_id}` shows each.")


def register(app: typer.Typer) -> None:
    app.command("run")(run)
