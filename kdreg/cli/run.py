"""``kdreg run``: expand a grid of combinations, train, evaluate every language, log it all."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from kdreg.cli.options import DbOption
from kdreg.cli.output import console, err_console, render_rows


def _multi(help_text: str, *names: str) -> Any:
    return typer.Option(*names, help=help_text + " Repeat the option or give a comma list.", show_default=False)


Teachers = Annotated[list[str] | None, _multi("Teacher plugin(s), e.g. bert-large or hf:path=/models/t.", "--teacher", "-t")]
Students = Annotated[list[str] | None, _multi("Student plugin(s) (default: layers, half the teacher's layers).", "--student", "-s")]
Losses = Annotated[list[str] | None, _multi("KD loss(es), e.g. kl:temperature=2 or kl+0.5*hidden (default: kl).", "--loss", "-l")]
Benchmarks = Annotated[list[str] | None, _multi("Benchmark(s) (default: xnli).", "--benchmark", "-b")]
Corpora = Annotated[list[str] | None, _multi("Corpus plugin(s) for stages pretrain/both (default: wikipedia).", "--corpus", "-c")]
Stages = Annotated[list[str] | None, _multi("Stage(s): none, finetune, pretrain, both (default: all four).", "--stage")]
Seeds = Annotated[list[str] | None, _multi("Seed(s) (default: 0).", "--seed")]
Langs = Annotated[list[str] | None, _multi("Target language(s) to evaluate besides the source (default: all).", "--lang")]


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
    config: Annotated[
        Path | None, typer.Option("--config", help="TOML grid file with the same keys and [phase] hyper-parameters.")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan; train and write nothing.")] = False,
    retry_failed: Annotated[bool, typer.Option("--retry-failed", help="Run combinations that failed before.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Run every combination again, even succeeded ones.")] = False,
    fail_fast: Annotated[bool, typer.Option("--fail-fast", help="Stop at the first failing combination.")] = False,
    device: Annotated[str, typer.Option("--device", help="auto (CUDA with bf16 when available), cpu or cuda.")] = "auto",
    db: DbOption = None,
) -> None:
    """Run a grid of teacher × student × loss × benchmark × corpus × stage × seed; log every result.

    With no options it runs the offline default study (a synthetic multilingual world).
    """
    from kdreg.grid import build_request
    from kdreg.pipeline.runner import plan, preflight, resolve_jobs, run_grid
    from kdreg.plugins.registry import registry
    from kdreg.store.store import open_store

    options = {"teacher": teacher, "student": student, "loss": loss, "benchmark": benchmark, "corpus": corpus,
               "stage": stage, "seed": seed, "lang": lang}
    request = build_request({k: v or [] for k, v in options.items()}, config)
    jobs = resolve_jobs(request, registry())
    preflight(jobs)
    if dry_run:
        _print_plan(plan(_existing_store(db), jobs, retry_failed=retry_failed, force=force))
        return
    store = open_store(db)
    items = plan(store, jobs, retry_failed=retry_failed, force=force)
    _quiet_libraries()
    command = "kdreg " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    to_run = sum(i.action == "run" for i in items)
    err_console.print(f"grid: {len(items)} combinations, {to_run} to run, {len(items) - to_run} skipped · db {store.label}")
    try:
        with RichReporter() as reporter:
            outcome = run_grid(store, items, command=command, device=device, fail_fast=fail_fast, reporter=reporter)
    except KeyboardInterrupt:
        from kdreg.errors import KdregError

        raise KdregError("Interrupted: the current run is marked interrupted; run the same command to go on.") from None
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
    """kdreg draws its own progress: silence transformers' and datasets' bars and load reports."""
    import os

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    try:
        import datasets

        datasets.disable_progress_bars()
        datasets.logging.set_verbosity_error()
    except ImportError:  # pragma: no cover - datasets is a dependency
        pass


def _print_plan(items: list[Any]) -> None:
    rows = []
    for i in items:
        state = i.previous or "new"
        rows.append({"action": i.action, "before": state, "stage": i.job.stage, "combination": i.job.label,
                     "hash": i.job.record.config_hash[:10]})
    render_rows(rows, ["action", "before", "stage", "combination", "hash"], title="plan")
    run_count = sum(i.action == "run" for i in items)
    console.print(f"{run_count} to run, {len(items) - run_count} skipped (dry run: nothing was trained or written)")


def _print_summary(store: Any, grid_id: int | None) -> None:
    """This grid's test scores per language (first metric), one row per run."""
    from sqlalchemy import select

    from kdreg.store.schema import GridRun, Result, Run

    with store.session() as s:
        runs = s.scalars(select(Run).join(GridRun, GridRun.run_id == Run.id).where(GridRun.grid_id == grid_id)
                         .order_by(Run.id)).all()
        ids = [r.id for r in runs]
        results = s.scalars(select(Result).where(Result.run_id.in_(ids), Result.split == "test")).all() if ids else []
    metric = "accuracy" if any(r.metric == "accuracy" for r in results) else (results[0].metric if results else "")
    by_run: dict[int, dict[str, float]] = {}
    source: dict[int, str] = {}
    languages: list[str] = []
    for r in results:
        if r.metric != metric:
            continue
        by_run.setdefault(r.run_id, {})[r.language] = r.value
        if r.is_source:
            source[r.run_id] = r.language
        if r.language not in languages:
            languages.append(r.language)
    rows = []
    for run in runs:
        scores = by_run.get(run.id, {})
        targets = [v for k, v in scores.items() if k != source.get(run.id)]
        row: dict[str, Any] = {"id": run.id, "stage": run.stage, "student": run.student_spec or "(teacher)",
                               "loss": run.loss_spec or "", "seed": run.seed, "status": run.status}
        row.update({lang: scores.get(lang) for lang in languages})
        row["zero-shot avg"] = sum(targets) / len(targets) if targets else None
        rows.append(row)
    if rows:
        render_rows(rows, ["id", "stage", "student", "loss", "seed", "status", *languages, "zero-shot avg"],
                    title=f"grid {grid_id}: test {metric} per language")


def register(app: typer.Typer) -> None:
    app.command("run")(run)
