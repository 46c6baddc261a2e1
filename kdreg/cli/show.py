"""``kdreg show RUN``: everything the store knows about one run.

Canonical config, environment, per-language results (source first), the error and
traceback of a failed run, and each training curve as a sparkline with its first,
lowest and last loss — enough to judge a run without opening the database. ``--json``
gives the same record with each curve's ``steps`` and ``losses`` arrays, to plot.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from kdreg.cli.options import DbOption, JsonOption
from kdreg.cli.output import console, number, print_json, render_rows


def _print_record(record: dict[str, Any]) -> None:
    from kdreg.store.liveness import describe_age

    status_style = {"succeeded": "green", "failed": "red", "interrupted": "yellow", "stale": "red"}.get(
        record["status"], "cyan"
    )
    status = record["status"]
    if record.get("heartbeat_age") is not None:
        limit = "" if status == "running" else " (its process died; `kdreg run` runs it again)"
        status += f", last heartbeat {describe_age(record['heartbeat_age'])} ago{limit}"
    console.print(f"[bold]run {record['id']}[/] · [{status_style}]{_escape(status)}[/]")
    for label, key in (
        ("hash", "config_hash"),
        ("setup", "setup_hash"),
        ("teacher", "teacher_spec"),
        ("student", "student_spec"),
        ("stage", "stage"),
        ("loss", "loss_spec"),
        ("benchmark", "benchmark_spec"),
        ("corpus", "corpus_spec"),
        ("seed", "seed"),
        ("created", "created_at"),
        ("finished", "finished_at"),
        ("duration", "duration_s"),
    ):
        if record[key] is not None:
            value = f"{record[key]:.1f} s" if key == "duration_s" else record[key]
            console.print(f"  {label:<10} {value}", markup=False)
    for key, entry in record["summary"].items():
        parts = []
        if entry["source"] is not None:
            parts.append(f"source {number(entry['source'])} ({entry['source_lang']})")
        if entry["zero_shot"] is not None:
            parts.append(f"zero-shot avg {number(entry['zero_shot'])}")
        console.print(f"  {key:<10} {'  '.join(parts)}".rstrip(), markup=False)
    if record["results"]:
        rows = [{**r, "source": "yes" if r["is_source"] else ""} for r in record["results"]]
        # `lang` (the normalised code) only when some benchmark spelling differs from it
        codes = ["lang"] if any(r["lang"] != r["language"] for r in rows) else []
        render_rows(
            rows,
            ["language", *codes, "split", "metric", "value", "source"],
            title="results",
            no_wrap=("value",),
        )
    for curve in record["curves"]:
        if not curve["points"]:
            continue
        lowest = "" if curve["min"] is None else f" (min {curve['min']:.4g} at step {curve['min_step']})"
        console.print(
            f"  curve {curve['phase']}: {curve['sparkline']}  {curve['points']} points, "
            f"steps {curve['step_range']}, loss {curve['first']:.4g} → {curve['last']:.4g}{lowest}",
            markup=False,
        )
    if record["error"]:
        console.print(f"[bold red]error:[/] {_escape(record['error'])}")
    if record["traceback"]:
        console.print(record["traceback"].rstrip(), markup=False, highlight=False)
    console.print("[bold]config[/]")
    console.print(json.dumps(record["config"], indent=2, sort_keys=True, default=str), markup=False)
    environment = dict(record["environment"] or {})
    loads = environment.pop("loads", None)
    if loads:
        from kdreg.pipeline.loads import describe

        console.print("[bold]weights loaded[/] (transformers' loading report)")
        for entry in loads:
            console.print(f"  {describe(entry)}", markup=False, highlight=False)
    if environment:
        console.print("[bold]environment[/]")
        console.print(json.dumps(environment, indent=2, sort_keys=True, default=str), markup=False)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def show(
    run: Annotated[str, typer.Argument(help="Run id, or at least 6 characters of its config hash.")],
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """The full record of one run: config, environment, results, error, training curves.

    --json gives it all as data, each training curve with its steps and losses arrays.
    """
    from kdreg.store.filters import check_text
    from kdreg.store.store import open_store

    reference = check_text("RUN", run)
    store = open_store(db, read_only=True)
    try:
        from kdreg.reporting.runs import run_record

        record = run_record(store.find_run(reference))
        record["status"], record["heartbeat_age"] = store.liveness(record["status"], record["heartbeat_at"])
    finally:
        store.close()
    if as_json:
        print_json(record)
    else:
        _print_record(record)


def register(app: typer.Typer) -> None:
    app.command("show")(show)
