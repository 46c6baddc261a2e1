"""The table that ends `kdreg run`: this grid's test scores per language, one row per run."""

from __future__ import annotations

from typing import Any

from kdreg.cli.output import console, print_table

MAX_LANGUAGE_COLUMNS = 12
"""Beyond this many languages the summary shows the source and the zero-shot average only."""


def print_summary(store: Any, grid_id: int) -> None:
    """This grid's test scores per language, one table per benchmark, one row per run.

    The first metric the benchmark records (accuracy when it has it); the source language
    first, marked with *, then the zero-shot languages and their average.
    """
    runs = store.grid_runs(grid_id)
    results = store.test_results([r.id for r in runs])
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
