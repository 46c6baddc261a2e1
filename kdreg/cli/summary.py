"""The table that ends `kdreg run`: this grid's test scores per language, as `kdreg report` shows them.

One row per configuration (teacher, student, stage, loss, corpus) with its seeds pooled
— mean ± std and the number of seeds (n), like ``kdreg report`` — and one table per
benchmark, in the first metric the benchmark records (accuracy when it has it), ×100.
The teacher's own row is the reference, never marked best; the benchmark's chance
level, when it gives one, is the last row. In a terminal every line fits its width
(shared labels above the table, short labels with a legend, languages in pages); piped
output gets the whole table at its natural width (:mod:`kdreg.reporting.layout`).
"""

from __future__ import annotations

from typing import Any

from kdreg.cli.output import console


def table_metric(metrics: list[str]) -> str:
    """The metric a grid's table shows from those recorded (in order): accuracy if there, else the first."""
    return "accuracy" if "accuracy" in metrics else metrics[0]


def summary_tables(store: Any, grid_id: int) -> list[Any]:
    """The report tables of grid ``grid_id``'s test results, one per benchmark."""
    from kdreg.reporting.chance import chance_from
    from kdreg.reporting.report import build_report
    from kdreg.store.filters import Filters

    runs = store.grid_runs(grid_id)
    results = store.test_results([r.id for r in runs])
    benchmark_of = {run.id: run.benchmark_spec for run in runs}
    metrics: dict[str, list[str]] = {}
    for r in results:
        found = metrics.setdefault(benchmark_of[r.run_id], [])
        if r.metric not in found:
            found.append(r.metric)
    chosen = {b: table_metric(found) for b, found in metrics.items()}
    tables = []
    for metric in dict.fromkeys(chosen.values()):
        filters = Filters(grid=(grid_id,), metric=(metric,), split=("test",))
        built = build_report(store, filters, chance=chance_from(store))
        tables += [t for t in built if chosen.get(t.benchmark) == metric]
    return tables


def source_and_average(table: Any) -> Any:
    """``table`` with its language columns left out: the source and the zero-shot average only."""
    import dataclasses

    keep = [0, len(table.keys) - 1]
    rows = tuple(dataclasses.replace(row, cells=tuple(row.cells[j] for j in keep)) for row in table.rows)
    return dataclasses.replace(table, keys=tuple(table.keys[j] for j in keep),
                               headers=tuple(table.headers[j] for j in keep), rows=rows,
                               best=tuple(table.best[j] for j in keep))


def print_summary(store: Any, grid_id: int) -> None:
    """Print this grid's tables on stdout (fitted to the terminal's width when there is one)."""
    from kdreg.reporting.tables import render_terminal

    tables = summary_tables(store, grid_id)
    if not tables:
        return
    many = [t for t in tables if len(t.keys) - 2 > MAX_LANGUAGE_COLUMNS]
    tables = [source_and_average(t) if t in many else t for t in tables]
    width = console.width if console.is_terminal else None
    color = console.is_terminal and not console.no_color
    console.file.write(f"\ngrid {grid_id} (`kdreg report --grid {grid_id}` shows it again)\n")
    console.file.write(render_terminal(tables, color=color, width=width))
    if many:
        console.file.write(f"{len(many[0].keys) - 2} zero-shot languages: `kdreg report --grid {grid_id}` "
                           "shows each.\n")
    console.file.flush()


MAX_LANGUAGE_COLUMNS = 12
"""Beyond this many languages the summary shows the source and the zero-shot average only."""
