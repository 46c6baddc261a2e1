"""``kdreg run``: expand a grid of combinations, train, evaluate every language, log it all."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from kdreg.cli.options import DbOption, check_format
from kdreg.cli.output import err_console


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
    executor: Annotated[str | None, typer.Option(
        "--executor", "-x", show_default=False,
        help="Where the tasks run: inline (this process; the default), local:workers=N,gpus=0+1 "
             "(worker processes on this machine), or an installed executor plugin.")] = None,
    fmt: Annotated[str, typer.Option(
        "--format", "-f", help="Dry-run output: table or json.")] = "table",
    threads: Annotated[int | None, typer.Option(
        "--threads", show_default=False,
        help="CPU threads per task (default: KDREG_THREADS, else the executor's share of the cores)."
    )] = None,
    wait: Annotated[bool, typer.Option(
        "--wait", help="With an executor that returns once the tasks are submitted (slurm): follow them "
                       "to the end.")] = False,
    db: DbOption = None,
) -> None:
    """Run a grid of teacher × student × loss × benchmark × corpus × stage × seed; log every result.

    With no options it runs the offline default study (a synthetic multilingual world). Which
    defaults apply: with --teacher (or --config), options left out take the defaults shown
    below; without either, the default study is the base and options given replace its
    values (kdreg run --seed 0,1,2 is the default study with three seeds).
    """
    from kdreg.execution.signals import handle_termination

    handle_termination()  # SIGTERM while planning stops as cleanly as later (nothing is written yet)
    from kdreg.cli.progress import progress_seconds
    from kdreg.execution.plan import plan_grid, preflight
    from kdreg.grid import expand_grid
    from kdreg.pipeline.training import check_device_name, require_device
    from kdreg.plugins.resolve import PluginSet
    from kdreg.request import build_request
    from kdreg.store.liveness import stale_seconds
    from kdreg.threads import prepare_threads, requested_threads

    check_device_name(device)  # before a dry run too
    stale_seconds()  # a bad KDREG_STALE_SECONDS (or KDREG_PROGRESS_SECONDS) is refused before anything runs
    progress_seconds()
    chosen_threads = requested_threads(threads)
    prepare_threads(chosen_threads)
    check_format(fmt, ("table", "json"))
    _quiet_libraries()
    options = {"teacher": teacher, "student": student, "loss": loss, "benchmark": benchmark, "corpus": corpus,
               "stage": stage, "seed": seed, "lang": lang}
    request = build_request({k: v or [] for k, v in options.items()}, config, executor)
    plugins = PluginSet()  # one instance per plugin for the whole grid, checked once
    chosen = plugins.resolve("executor", request.executor)
    runner = plugins.checked(chosen)
    warm_up = getattr(runner, "warm_up", None)
    if callable(warm_up) and not dry_run:
        warm_up()  # workers start while the grid is planned
    jobs = expand_grid(request, plugins)
    unavailable = preflight(jobs, plugins, gather=dry_run)  # a dry run shows the plan and marks them
    require_device(device)  # a bad --device fails before the database is touched
    label = _describe(runner, chosen.spec)
    if dry_run:
        from kdreg.cli.plan_view import print_plan
        from kdreg.execution.plan import first_use_notes

        plan = plan_grid(_existing_store(db), jobs, retry_failed=retry_failed, force=force)
        print_plan(plan, executor=label, fmt=fmt, defaults=request.describe_defaults(),
                   unavailable=unavailable, first_use=first_use_notes(plan, plugins, unavailable))
        return
    _run_grid(plan_grid, jobs, db=db, retry_failed=retry_failed, force=force, runner=runner,
              executor_spec=chosen.spec, label=label, device=device, fail_fast=fail_fast, wait=wait,
              threads=chosen_threads, defaults=request.describe_defaults(), plugins=plugins)


def _describe(executor: Any, spec: str) -> str:
    describe = getattr(executor, "describe", None)
    return describe() if callable(describe) else spec


def _run_grid(plan_grid: Any, jobs: Any, *, db: str | None, retry_failed: bool, force: bool, runner: Any,
              executor_spec: str, label: str, device: str, fail_fast: bool, wait: bool,
              threads: int | None, defaults: str, plugins: Any) -> None:
    """Record and execute the grid, then print its table, the claims' verdicts and what needs attention."""
    from kdreg.cli.claims import print_claims
    from kdreg.cli.output import print_error
    from kdreg.cli.progress import RichReporter
    from kdreg.cli.summary import print_summary
    from kdreg.execution.coordinator import run_grid
    from kdreg.execution.signals import exit_code, termination_as_interrupt
    from kdreg.store.store import open_store

    store = open_store(db)
    from kdreg.execution.journal import collect

    collect(store)  # outcomes of earlier cluster grids that have arrived since
    plan = plan_grid(store, jobs, retry_failed=retry_failed, force=force)
    command = "kdreg " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    to_run = len(plan.to_run)
    skipped = len(plan.items) - to_run
    err_console.print(f"grid: {len(plan.items)} combinations, {to_run} to run, {skipped} skipped, "
                      f"{len(plan.graph.artifacts)} model(s) to build · {label} · db {store.label}",
                      markup=False)
    from kdreg.execution.plan import first_use_notes

    for spec, note in first_use_notes(plan, plugins):
        err_console.print(f"teacher {spec}: {note}", markup=False)
    err_console.print(defaults, markup=False)
    try:
        with termination_as_interrupt(), RichReporter() as reporter:
            outcome = run_grid(store, plan, runner, executor_spec=executor_spec, command=command,
                               device=device, fail_fast=fail_fast, reporter=reporter, threads=threads)
            if outcome.unfinished and wait:
                from kdreg.execution.follow import follow

                follow(store, outcome, runner, reporter)
    except KeyboardInterrupt as interrupt:
        print_error("Interrupted: any run in progress is marked interrupted (a model being built is not "
                    "kept) and everything finished before is stored; run the same command again to go on.")
        raise typer.Exit(exit_code(interrupt)) from None
    print_summary(store, outcome.grid_id)
    print_claims(store, outcome.grid_id)
    _print_attention(outcome, plan)
    if outcome.failed:
        raise typer.Exit(1)


def _print_attention(outcome: Any, plan: Any) -> None:
    """What did not run here: runs held by another process, tasks still with an engine, failures."""
    held = [i.job.label for i in plan.items if i.previous in ("running", "queued")]
    held += [t.label for t in outcome.runs_with("skipped")]
    if held:
        err_console.print(
            f"[yellow]{len(held)} run(s) skipped: another kdreg process is running them[/] "
            "(`kdreg status`); a run whose process died counts as stale once its heartbeat is older than "
            "KDREG_STALE_SECONDS (120 s), and `kdreg run` then runs it again:")
        for text in held[:10]:
            err_console.print(f"  {text}", markup=False)
    if outcome.unfinished:
        err_console.print(f"{len(outcome.unfinished)} task(s) submitted (grid {outcome.grid_id}); "
                          "`kdreg status` follows them and records their results as they arrive.")
    if outcome.failed:
        err_console.print(
            f"[red]{len(outcome.failed)} combination(s) failed[/]; `kdreg query --status failed` lists them, "
            "`kdreg show RUN` gives the traceback, `--retry-failed` runs them again."
        )


def _existing_store(db: str | None) -> Any:
    """The store if its database exists already (a dry run creates nothing)."""
    from kdreg.paths import resolve_db_url
    from kdreg.store.engine import sqlite_path
    from kdreg.store.store import open_store

    path = sqlite_path(resolve_db_url(db)[0])
    return None if path is not None and not path.exists() else open_store(db, read_only=True)


def _quiet_libraries() -> None:
    """kdreg draws its own progress: silence transformers' and datasets' bars and load reports.

    Environment variables cover libraries not imported yet (a dry run need not import
    them at all, and workers inherit them); the libraries already imported are told directly.
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


def register(app: typer.Typer) -> None:
    app.command("run")(run)
