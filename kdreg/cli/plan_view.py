"""`kdreg run --dry-run`: the plan as a task graph — models to build, runs, what each needs, what is skipped.

Large plans are summarised (counts by stage, teacher and action, then the first rows),
because nobody reads ten thousand table rows in a terminal and drawing them costs more
than planning them; ``--format json`` gives every task.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from rich.markup import escape

from kdreg.cli.output import console, print_json, render_rows

MAX_ROWS = 40
"""Plans with more runs than this are summarised in the table format."""
ARTIFACT_NAMES = {"teacher": "fine-tuned teacher", "student-pretrained": "pretrained student"}
DIMENSIONS = ("teacher", "student", "loss", "benchmark", "corpus", "seed")
"""What a run combines besides its stage: a column each where runs differ, said once where they agree."""


def _spec(plugin: Any) -> str:
    return "—" if plugin is None else str(plugin.spec)


def _missing(job: Any, unavailable: Mapping[tuple[str, str], Any]) -> str:
    """The kinds of ``job``'s plugins that are not available here (``teacher corpus``), or ''."""
    plugins = (("teacher", job.teacher), ("student", job.student), ("benchmark", job.benchmark),
               ("corpus", job.corpus))
    return " ".join(kind for kind, p in plugins if p is not None and (kind, p.spec) in unavailable)


def plan_rows(plan: Any, unavailable: Mapping[tuple[str, str], Any] | None = None
              ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(model rows, run rows) of a plan: each model task with a short id, each run with what it needs
    (and, with ``unavailable`` from the preflight, which of its plugins cannot be had here)."""
    graph = plan.graph
    ids = {task.key: f"M{i}" for i, task in enumerate(graph.artifacts, start=1)}
    needed_by = Counter(key for task in graph.runs for key in task.depends_on)
    models = [{"id": ids[t.key], "kind": ARTIFACT_NAMES.get(t.kind, t.kind), "builds": t.label,
               "needed_by": needed_by[t.key], "key": t.key} for t in graph.artifacts]
    runs = []
    for item in plan.items:
        task = graph.get(item.job.record.config_hash) if item.action == "run" else None
        job = item.job
        runs.append({"action": item.action, "before": item.previous or "new", "stage": job.stage,
                     "combination": job.label,
                     **{dim: _spec(getattr(job, dim)) for dim in DIMENSIONS if dim != "seed"},
                     "seed": str(job.seed),
                     "needs": " ".join(ids[k] for k in task.depends_on) if task else "",
                     "unavailable": _missing(item.job, unavailable or {}),
                     "hash": item.job.record.config_hash})
    return models, runs


def print_plan(plan: Any, *, executor: str, fmt: str = "table", defaults: str = "",
               unavailable: Mapping[tuple[str, str], Any] | None = None,
               first_use: Sequence[tuple[str, str]] = ()) -> None:
    """Print the plan of a dry run (nothing was trained or written).

    ``defaults`` is the line saying which defaults the grid took (GridRequest.describe_defaults);
    ``unavailable`` the preflight's (kind, spec) → error of what cannot be had here (offline:
    hub models and datasets not in the cache), marked in the plan and listed under it;
    ``first_use`` (teacher spec, what its first load does) for teachers built before they
    can be used (:func:`kdreg.execution.plan.first_use_notes`).
    """
    unavailable = unavailable or {}
    models, runs = plan_rows(plan, unavailable)
    to_run = sum(r["action"] == "run" for r in runs)
    if fmt == "json":
        print_json({"executor": executor, "defaults": defaults, "runs": runs, "models": models,
                    "to_run": to_run, "skipped": len(runs) - to_run,
                    "first_use": [{"teacher": spec, "note": note} for spec, note in first_use],
                    "unavailable": [{"kind": kind, "spec": spec, "error": str(error)}
                                    for (kind, spec), error in unavailable.items()]})
        return
    if defaults:
        console.print(defaults, markup=False)
    if models:
        few = models if len(models) <= MAX_ROWS else models[:20]
        first = "" if few is models else f": the first 20 of {len(models)}"
        title = f"models to build (tasks before the runs){first}"
        render_rows(few, ["id", "kind", "builds", "needed_by"], title=title)
    shown = runs if len(runs) <= MAX_ROWS else runs[:20]
    for row in shown:
        row["hash"] = row["hash"][:10]
    title = "runs" if shown is runs else f"runs (the first 20 of {len(runs)})"
    given = {dim: {r[dim] for r in runs} - {"—"} for dim in DIMENSIONS}  # a teacher row has no student
    varying = [dim for dim in DIMENSIONS if len(given[dim]) > 1]
    shared = [f"{dim} {next(iter(given[dim]))}" for dim in DIMENSIONS if len(given[dim]) == 1]
    if shared:
        console.print("every run: " + " · ".join(shared), markup=False, soft_wrap=not console.is_terminal)
    columns = ["action", "before", "stage", *varying, "needs", *(["unavailable"] if unavailable else []),
               "hash"]
    render_rows(shown, columns, title=title, no_wrap=("hash",))
    if shown is not runs:
        _print_counts(runs)
    console.print(f"{to_run} to run, {len(runs) - to_run} skipped; {len(models)} model(s) to build first · "
                  f"executor {executor} (dry run: nothing was trained or written)")
    for spec, note in first_use:
        console.print(f"teacher {spec}: {note}", markup=False)
    if unavailable:
        from kdreg.execution.plan import describe_unavailable

        console.print(f"[bold red]not available here[/] (a run would stop before starting): "
                      f"{escape(describe_unavailable(dict(unavailable)))}")


def _print_counts(runs: list[dict[str, Any]]) -> None:
    """Counts of a large plan: by stage and action, then by previous status."""
    by_stage = Counter((r["stage"], r["action"]) for r in runs)
    rows = [{"stage": stage, "run": by_stage[stage, "run"], "skip": by_stage[stage, "skip"]}
            for stage in dict.fromkeys(r["stage"] for r in runs)]
    render_rows(rows, ["stage", "run", "skip"], title="all runs by stage", no_wrap=("run", "skip"))
    before = Counter(r["before"] for r in runs)
    console.print("before this grid: " + ", ".join(f"{n} {status}" for status, n in before.most_common())
                  + " · `--format json` lists every run")
