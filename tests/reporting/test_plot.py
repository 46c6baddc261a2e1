"""The report's plot, read back from the figure's artists: every series visible, short legend labels,
the zero-shot average in its own panel, a chance line when the benchmark knows its chance level."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from kdreg.reporting.aggregate import Aggregate
from kdreg.reporting.report import ReportTable, build_report
from kdreg.store.filters import build_filters
from kdreg.store.queries import read_connection

pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def tables(seeded) -> list[ReportTable]:  # type: ignore[no-untyped-def]
    """One teacher, one student, one loss: five rows (teacher, none, finetune, pretrain, both)."""
    store, _ = seeded
    with read_connection(store) as conn:
        return build_report(conn, build_filters(teacher="mbert", student="distil", loss="mse",
                                                status="succeeded", keep_unset=True),
                            chance=lambda benchmark, metric: {"xnli": 1 / 3}.get(benchmark))


@pytest.fixture
def figure(tables: list[ReportTable]) -> Iterator[Any]:
    from kdreg.reporting.plot import _pyplot, build_figure

    xnli = next(t for t in tables if t.benchmark == "xnli")
    # rows that coincide exactly: the same numbers for 'none' and 'finetune'
    rows = list(xnli.rows)
    rows[2] = dataclasses.replace(rows[2], cells=rows[1].cells)
    fig = build_figure([dataclasses.replace(xnli, rows=tuple(rows))])
    yield fig
    _pyplot().close(fig)


def series(ax: Any) -> list[Any]:
    """The data line of each series (an errorbar's line with its markers; caps and bars aside)."""
    from matplotlib.container import ErrorbarContainer

    return [c.lines[0] for c in ax.containers if isinstance(c, ErrorbarContainer)]


def test_coinciding_series_stay_distinguishable(figure: Any) -> None:
    lang_ax = figure.axes[0]
    lines = series(lang_ax)
    assert len(lines) == 5
    assert len({line.get_marker() for line in lines}) == 5  # each its own marker
    # the two identical rows are dodged sideways: no point of one hides a point of the other
    none, finetune = lines[1], lines[2]
    assert list(none.get_ydata()) == list(finetune.get_ydata())
    assert all(a != b for a, b in zip(none.get_xdata(), finetune.get_xdata(), strict=True))


def test_legend_labels_are_short_and_the_shared_part_is_the_title(figure: Any) -> None:
    lang_ax, avg_ax = figure.axes[:2]
    texts = [t.get_text() for t in avg_ax.get_legend().get_texts()]
    assert texts == ["chance", "teacher", "none", "finetune", "pretrain", "both"]
    title = lang_ax.get_title(loc="left")
    assert "teacher mbert" in title and "student distil" in title and "loss mse" in title


def test_the_zero_shot_average_is_its_own_panel_and_the_chance_line_is_drawn(
        figure: Any, tables: list[ReportTable]) -> None:
    lang_ax, avg_ax = figure.axes[:2]
    ticks = [t.get_text() for t in lang_ax.get_xticklabels()]
    assert ticks == ["en (source)", "de", "fr", "zh"] and "zero-shot avg" not in ticks
    assert avg_ax.get_title() == "zero-shot avg" and len(series(avg_ax)) == 5
    xnli = next(t for t in tables if t.benchmark == "xnli")
    means = sorted(line.get_ydata()[0] for line in series(avg_ax))
    expected = [r.cells[-1].mean for r in xnli.rows]
    expected[2] = expected[1]  # the fixture copied row 1 onto row 2
    assert means == pytest.approx(sorted(expected))
    for ax in (lang_ax, avg_ax):
        chance = [line for line in ax.get_lines() if list(line.get_ydata()) == pytest.approx([100 / 3] * 2)]
        assert len(chance) == 1 and chance[0].get_linestyle() == ":"


def test_no_chance_line_when_the_benchmark_does_not_say(tables: list[ReportTable]) -> None:
    from kdreg.reporting.plot import _pyplot, build_figure

    sib = next(t for t in tables if t.benchmark == "sib200")
    assert sib.chance is None
    fig = build_figure([sib])
    try:
        assert not [t.get_text() for t in fig.axes[1].get_legend().get_texts() if t.get_text() == "chance"]
    finally:
        _pyplot().close(fig)


def test_long_specs_get_short_legend_labels_with_their_meaning() -> None:
    from kdreg.reporting.plot import _pyplot, build_figure, row_labels
    from kdreg.reporting.report import ReportRow

    cell = Aggregate(50.0, 1.0, 3)
    rows = tuple(ReportRow(("mbert", "distil", "finetune", loss), (cell, cell, cell), 3, 3)
                 for loss in ("kl:alpha=0.5,temperature=4", "kl:alpha=1,temperature=1"))
    table = ReportTable("xnli", "accuracy", "test", ("teacher", "student", "stage", "loss"),
                        ("source", "de", "zero_shot"), ("en (source)", "de", "zero-shot avg"), rows,
                        (frozenset({0}),) * 3, 100.0, 1)
    labels, shared, legend = row_labels(table)
    assert labels == ["kl#1", "kl#2"] and shared == ["teacher mbert", "student distil", "stage finetune"]
    assert legend == ["kl#1 = kl:alpha=0.5,temperature=4", "kl#2 = kl:alpha=1,temperature=1"]
    fig = build_figure([table])
    try:
        texts = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
        assert texts == ["kl#1", "kl#2", *legend]
    finally:
        _pyplot().close(fig)


def test_each_teacher_row_has_its_own_style() -> None:
    """The default study has two teachers: their reference rows must not look alike."""
    from kdreg.reporting.plot import _pyplot, build_figure
    from kdreg.reporting.report import ReportRow

    cell = Aggregate(50.0, 1.0, 3)
    rows = tuple(ReportRow((teacher, "synthetic", stage, "kl"), (cell, cell, cell), 3, 3)
                 for teacher in ("synthetic", "synthetic:size=large") for stage in ("teacher", "none"))
    table = ReportTable("synthetic", "accuracy", "test", ("teacher", "student", "stage", "loss"),
                        ("source", "l1", "zero_shot"), ("l0 (source)", "l1", "zero-shot avg"), rows,
                        (frozenset({0}),) * 3, 100.0, 1)
    fig = build_figure([table])
    try:
        lines = series(fig.axes[0])
        teachers = [lines[0], lines[2]]
        assert teachers[0].get_marker() != teachers[1].get_marker()
        assert teachers[0].get_color() != teachers[1].get_color()
        assert teachers[0].get_linestyle() != teachers[1].get_linestyle()
        assert len({line.get_marker() for line in lines}) == 4  # and every row its own marker
    finally:
        _pyplot().close(fig)
