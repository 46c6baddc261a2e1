"""The report's plot: per-language score of each row (stage / student), one panel per benchmark.

matplotlib is an optional extra (``pip install 'kdreg[report]'``), imported only here and
only when a plot is drawn, with the non-interactive Agg backend so it works on servers.
Without it, :func:`plot_report` raises a :class:`KdregError` naming the extra.
"""

from __future__ import annotations

import io
import textwrap
import warnings
from collections.abc import Sequence

from kdreg.errors import KdregError
from kdreg.reporting.report import NO_LABEL, ReportTable

PLOT_FORMATS = ("png", "svg")
MAX_LINES = 20
"""More rows than this make an unreadable tangle; the plot shows the first ones and says so."""


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


def plot_report(tables: Sequence[ReportTable], fmt: str = "png") -> bytes:
    """PNG or SVG bytes: x = languages (source first, zero-shot average last), y = mean, bars = std."""
    if fmt not in PLOT_FORMATS:
        raise KdregError(f"Unknown plot format {fmt[:20]!r}; use one of: {', '.join(PLOT_FORMATS)}.")
    if not tables:
        raise KdregError("Nothing to plot: the filters select no results.")
    _keep_matplotlib_cache_in_kdreg()
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise KdregError(
            "Plots need matplotlib: pip install 'kdreg[report]' (tables work without it)."
        ) from None

    fig, axes = plt.subplots(len(tables), 1, figsize=(11, 4.2 * len(tables)), squeeze=False)
    try:
        for ax, table in zip(axes[:, 0], tables, strict=True):
            positions = list(range(len(table.keys)))
            colors = plt.get_cmap("tab20").colors  # 20 distinct colours: MAX_LINES rows never share one
            stage = table.label_columns.index("stage")
            for index, row in enumerate(table.rows[:MAX_LINES]):
                points = [
                    (x, c.mean, c.std or 0.0)
                    for x, c in zip(positions, row.cells, strict=True)
                    if c is not None
                ]
                if not points:
                    continue
                xs, ys, errs = zip(*points, strict=True)
                # long plugin specs would make the legend wider than the plot: fold them
                label = textwrap.fill(" · ".join(v for v in row.label if v != NO_LABEL), 60)
                teacher = row.label[stage] == "teacher"  # the reference: black and dashed
                ax.errorbar(
                    xs,
                    ys,
                    yerr=errs,
                    marker="o",
                    markersize=3,
                    capsize=2,
                    linewidth=1.4 if teacher else 1,
                    linestyle="--" if teacher else "-",
                    color="black" if teacher else colors[index % 20],
                    label=label,
                )
            ax.set_xticks(positions, labels=list(table.headers), rotation=45, ha="right")
            ax.set_ylabel(f"{table.metric}" + (f" ×{table.scale:g}" if table.scale != 1 else ""))
            shown = "" if len(table.rows) <= MAX_LINES else f" (first {MAX_LINES} of {len(table.rows)} rows)"
            ax.set_title(f"{table.benchmark} — {table.split}{shown}", loc="left", fontsize=10)
            ax.grid(axis="y", alpha=0.3)
            ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
        with warnings.catch_warnings():  # a very wide legend cannot be laid out tightly: fine,
            warnings.simplefilter("ignore", UserWarning)  # savefig's bbox_inches="tight" still fits it
            fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(
            buffer, format=fmt, bbox_inches="tight", metadata={"Date": None} if fmt == "svg" else None
        )
        return buffer.getvalue()
    finally:
        plt.close(fig)
