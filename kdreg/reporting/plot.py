"""The report's plot: per-language score of each row (stage / student), one row of panels per benchmark.

Each benchmark gets two panels sharing the score axis: the languages (source first) with
one line per row of the table, and the zero-shot average — the number the study is
about — as its own panel, one point per row, rather than a point on the language axis.
Made to go into a paper:

* rows whose scores coincide stay distinguishable: each has its own marker and line
  style as well as colour, and the points are dodged sideways so that error bars do
  not hide one another;
* legend labels are short: what every row shares (the teacher, a loss…) is said once in
  the panel's title, and a long specification is a short label (``kl#1``) explained
  at the end of the legend;
* the benchmark's chance level, when it gives one, is a dotted line in both panels;
* the teachers' own rows are the references: black, then greys, dashed (each teacher its own).

matplotlib is an optional extra (``pip install 'kdreg[report]'``), imported only here and
only when a plot is drawn, with the non-interactive Agg backend so it works on servers.
Without it, :func:`plot_report` raises a :class:`KdregError` naming the extra.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from typing import Any

from kdreg.errors import KdregError
from kdreg.reporting.report import NO_LABEL, ZERO_SHOT, ReportTable

PLOT_FORMATS = ("png", "svg")
MAX_LINES = 20
"""More rows than this make an unreadable tangle; the plot shows the first ones and says so."""
MARKERS = ("o", "^", "D", "v", "P", "X", "<", ">", "h", "p")
"""Students' markers; teachers' rows have their own (:data:`TEACHER_STYLES`)."""
LINESTYLES = ("-", "--", "-.", ":")
CHANCE_LABEL = "chance"


def matplotlib_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("matplotlib") is not None


def _keep_matplotlib_cache_in_kdreg() -> None:
    """Point matplotlib's config and font cache at kdreg's cache folder unless the user chose one.

    matplotlib otherwise writes ``~/.cache/matplotlib`` (its font list), outside
    ``KDREG_HOME``/``KDREG_CACHE``: a report must leave nothing outside kdreg's folders. Read
    by matplotlib when it is first imported, so set before that.
    """
    import os

    from kdreg.paths import cache_dir

    os.environ.setdefault("MPLCONFIGDIR", str(cache_dir() / "matplotlib"))


def _pyplot() -> Any:
    _keep_matplotlib_cache_in_kdreg()
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise KdregError(
            "Plots need matplotlib: pip install 'kdreg[report]' (tables work without it)."
        ) from None
    return plt


def row_labels(table: ReportTable) -> tuple[list[str], list[str], list[str]]:
    """(legend label per row, what every row shares, explanations of short labels).

    Label columns with one value in every row that has one go to the title; the others
    make the legend label, long specifications shortened (:func:`kdreg.reporting.layout.short_labels`).
    """
    from kdreg.reporting.layout import shared_values, short_labels

    rows = table.rows[:MAX_LINES]
    named = [(name, [row.label[k] for row in rows]) for k, name in enumerate(table.label_columns)]
    shared_names, shared = shared_values(named, len(rows), NO_LABEL)
    parts: list[list[str]] = [[] for _ in rows]
    legend: list[str] = []
    for name, cells in named:
        if name in shared_names:
            continue
        labels, explained = short_labels(cells)
        legend += explained
        for i, cell in enumerate(cells):
            if cell != NO_LABEL:
                parts[i].append(labels.get(cell, cell))
    return [" · ".join(p) or f"row {i + 1}" for i, p in enumerate(parts)], shared, legend


TEACHER_STYLES = (("black", "s", "--"), ("dimgray", "*", "-."), ("darkgray", "8", ":"))
"""Teachers' rows, in order: shades of grey, markers no student uses, their own dashes."""


def _style(index: int, teacher: bool, colors: Sequence[Any]) -> dict[str, Any]:
    """Row ``index`` among the students, or among the teachers when ``teacher``."""
    if teacher:
        color, marker, dashes = TEACHER_STYLES[index % len(TEACHER_STYLES)]
        return {"color": color, "linestyle": dashes, "marker": marker, "linewidth": 1.4}
    return {"color": colors[index % len(colors)], "marker": MARKERS[index % len(MARKERS)],
            "linestyle": LINESTYLES[(index // len(MARKERS)) % len(LINESTYLES)], "linewidth": 1.0}


def _draw(plt: Any, row_axes: Sequence[Any], table: ReportTable) -> None:
    """One benchmark: languages on the left, the zero-shot average on the right."""
    lang_ax, avg_ax = row_axes
    rows = table.rows[:MAX_LINES]
    languages = [j for j, key in enumerate(table.keys) if key != ZERO_SHOT]
    average = table.keys.index(ZERO_SHOT)
    labels, shared, explained = row_labels(table)
    colors = plt.get_cmap("tab10").colors
    stage = table.label_columns.index("stage") if "stage" in table.label_columns else None
    step = min(0.06, 0.4 / max(1, len(rows)))  # sideways dodge: coinciding points stay apart
    students = teachers = 0
    for index, row in enumerate(rows):
        teacher = stage is not None and row.label[stage] == "teacher"
        style = _style(teachers if teacher else students, teacher, colors)
        teachers, students = teachers + teacher, students + (not teacher)
        offset = (index - (len(rows) - 1) / 2) * step
        points = [(x + offset, row.cells[j].mean, row.cells[j].std or 0.0)
                  for x, j in enumerate(languages) if row.cells[j] is not None]
        if points:
            xs, ys, errs = zip(*points, strict=True)
            lang_ax.errorbar(xs, ys, yerr=errs, markersize=4, capsize=2, label=labels[index], **style)
        cell = row.cells[average]
        if cell is not None:
            avg_ax.errorbar([index], [cell.mean], yerr=[cell.std or 0.0], markersize=5, capsize=2,
                            **{**style, "linestyle": "none"})
    if table.chance is not None:
        for ax in (lang_ax, avg_ax):
            ax.axhline(table.chance, color="grey", linestyle=":", linewidth=1.2,
                       label=CHANCE_LABEL if ax is lang_ax else None)
    crowded = len(languages) > 8
    lang_ax.set_xticks(range(len(languages)), labels=[table.headers[j] for j in languages],
                       rotation=45 if crowded else 0, ha="right" if crowded else "center")
    lang_ax.set_ylabel(f"{table.metric}" + (f" ×{table.scale:g}" if table.scale != 1 else ""))
    more = "" if len(table.rows) <= MAX_LINES else f" (first {MAX_LINES} of {len(table.rows)} rows)"
    title = " · ".join([f"{table.benchmark} — {table.split}", *shared])
    lang_ax.set_title(f"{title}{more}", loc="left", fontsize=10)
    avg_ax.set_title(table.headers[average], fontsize=10)
    avg_ax.set_xticks([])
    avg_ax.set_xlim(-0.8, len(rows) - 0.2)
    for ax in (lang_ax, avg_ax):
        ax.grid(axis="y", alpha=0.3)
    handles, names = lang_ax.get_legend_handles_labels()
    for line in explained:  # what the short labels stand for, at the end of the legend
        handles.append(plt.Line2D([], [], linestyle="none"))
        names.append(line)
    avg_ax.legend(handles, names, fontsize=7, loc="center left", bbox_to_anchor=(1.04, 0.5), frameon=False)


def build_figure(tables: Sequence[ReportTable]) -> Any:
    """The matplotlib Figure of ``tables`` (the caller closes it)."""
    if not tables:
        raise KdregError("Nothing to plot: the filters select no results.")
    plt = _pyplot()
    fig, axes = plt.subplots(len(tables), 2, figsize=(12, 4.2 * len(tables)), squeeze=False, sharey="row",
                             gridspec_kw={"width_ratios": [4, 1]})
    for row_axes, table in zip(axes, tables, strict=True):
        _draw(plt, row_axes, table)
    with warnings.catch_warnings():  # a very wide legend cannot be laid out tightly: fine,
        warnings.simplefilter("ignore", UserWarning)  # savefig's bbox_inches="tight" still fits it
        fig.tight_layout()
    return fig


def plot_report(tables: Sequence[ReportTable], fmt: str = "png") -> bytes:
    """PNG or SVG bytes of :func:`build_figure`."""
    if fmt not in PLOT_FORMATS:
        raise KdregError(f"Unknown plot format {fmt[:20]!r}; use one of: {', '.join(PLOT_FORMATS)}.")
    fig = build_figure(tables)
    try:
        buffer = io.BytesIO()
        fig.savefig(
            buffer, format=fmt, bbox_inches="tight", metadata={"Date": None} if fmt == "svg" else None
        )
        return buffer.getvalue()
    finally:
        _pyplot().close(fig)
