"""Report tables and every rendering of them: terminal, Markdown, LaTeX, CSV, HTML, plot."""

from __future__ import annotations

import csv
import io
import re
import statistics
from html.parser import HTMLParser

import pytest

from kdreg.reporting.aggregate import Aggregate, SeedGroup
from kdreg.reporting.report import ReportTable, build_report, build_table
from kdreg.reporting.tables import (
    latex_escape,
    render_csv,
    render_html,
    render_latex,
    render_markdown,
    render_terminal,
)
from kdreg.store.filters import build_filters
from kdreg.store.queries import read_connection


@pytest.fixture(scope="module")
def study(seeded) -> tuple[list[ReportTable], list]:
    """The seed study of one teacher and student: both benchmarks, stages × languages."""
    store, runs = seeded
    with read_connection(store) as conn:
        tables = build_report(
            conn, build_filters(teacher="mbert", student="distil", status="succeeded", keep_unset=True)
        )
    return tables, runs


def test_the_seed_study_is_one_table_per_benchmark_in_study_order(study) -> None:
    tables, runs = study
    assert [t.benchmark for t in tables] == ["sib200", "xnli"]
    xnli = tables[1]
    assert xnli.headers == ("en (source)", "de", "fr", "zh", "zero-shot avg")
    assert xnli.label_columns == ("teacher", "student", "stage", "loss", "corpus")
    assert [r.label[2] for r in xnli.rows] == ["teacher", "none"] + ["finetune"] * 3 + ["pretrain"] * 3 + [
        "both"
    ] * 3
    teacher_row = xnli.rows[0]
    assert teacher_row.label[:2] == ("mbert", "—")
    values = [r.scores()["de"] for r in runs if r.group == ("mbert", None, "teacher", None, "xnli", None)]
    assert teacher_row.cells[1].mean == pytest.approx(100 * statistics.mean(values))
    assert teacher_row.cells[1].std == pytest.approx(100 * statistics.stdev(values), rel=1e-6)
    assert teacher_row.cells[1].n == 3


def test_best_mean_per_column_is_marked(study) -> None:
    tables, _ = study
    for table in tables:
        for column in range(len(table.keys)):
            means = [row.cells[column].mean for row in table.rows]
            assert {table.rows[i].cells[column].mean for i in table.best[column]} == {max(means)}


def test_sib200_languages_are_normalised_into_the_same_columns(study) -> None:
    tables, _ = study
    assert tables[0].headers == tables[1].headers


def test_csv_parses_back_to_the_table(study) -> None:
    tables, _ = study
    parsed = list(csv.DictReader(io.StringIO(render_csv(tables))))
    assert len(parsed) == sum(len(t.rows) for t in tables)
    assert any(r["stage"] == "teacher" for r in parsed)
    for record, (table, row) in zip(parsed, [(t, r) for t in tables for r in t.rows], strict=True):
        assert record["benchmark"] == table.benchmark and record["stage"] == row.label[2]
        if row.label[2] == "teacher":  # a label the row does not have is an empty field, not a dash
            assert record["student"] == "" and record["loss"] == ""
        for key, cell in zip(table.keys, row.cells, strict=True):
            assert float(record[f"{key}_mean"]) == pytest.approx(cell.mean)
            assert float(record[f"{key}_std"]) == pytest.approx(cell.std)
            assert int(record[f"{key}_n"]) == cell.n


def test_markdown_is_one_pipe_table_per_benchmark_with_bold_best(study) -> None:
    tables, _ = study
    text = render_markdown(tables)
    for table in tables:
        assert f"### {table.title}" in text
    lines = [line for line in text.splitlines() if line.startswith("|")]
    assert len(lines) == sum(len(t.rows) + 2 for t in tables)
    assert all(line.count("|") == lines[0].count("|") for line in lines)
    assert text.count("**") == 2 * sum(len(b) for t in tables for b in t.best)


def tricky_table() -> ReportTable:
    groups = [
        SeedGroup(
            key={
                "teacher": "my_teacher",
                "student": "s_1%",
                "stage": "finetune",
                "loss": "kl:alpha=1&x",
                "benchmark": "bench_v2",
                "corpus": None,
            },
            metric="macro_f1",
            split="test",
            runs=2,
            seeds=2,
            source_lang="en",
            source=Aggregate(0.8, 0.01, 2),
            languages={"de": Aggregate(0.7, 0.02, 2)},
            zero_shot=Aggregate(0.7, 0.02, 2),
        ),
        SeedGroup(
            key={
                "teacher": "my_teacher",
                "student": None,
                "stage": "teacher",
                "loss": None,
                "benchmark": "bench_v2",
                "corpus": None,
            },
            metric="macro_f1",
            split="test",
            runs=1,
            seeds=1,
            source_lang="en",
            source=Aggregate(0.9, None, 1),
            languages={"de": Aggregate(0.6, None, 1)},
            zero_shot=Aggregate(0.6, None, 1),
        ),
    ]
    return build_table(groups)


def test_latex_compiles_structurally_and_escapes_names(study) -> None:
    text = render_latex([*study[0], tricky_table()])
    assert text.count(r"\begin{tabular}") == text.count(r"\end{tabular}") == 3
    assert text.count(r"\begin{table}") == text.count(r"\end{table}") == 3
    for rule in (r"\toprule", r"\midrule", r"\bottomrule"):
        assert text.count(rule) == 3
    assert r"my\_teacher" in text and r"s\_1\%" in text and r"kl:alpha=1\&x" in text and r"bench\_v2" in text
    assert "my_teacher" not in text and "1%" not in text
    body = re.sub(r"\\[{}%&_$#]", "", text)  # escaped characters do not count
    assert body.count("{") == body.count("}")
    # every row of a table has as many cells as its header: 5 labels + 5 values, or 4 + 3 (tricky)
    separators = {line.count("&") - line.count(r"\&") for line in text.splitlines() if line.endswith(r"\\")}
    assert separators == {9, 6}
    # the teacher's source score (90.0) is the highest, but the teacher is the reference, not a
    # contender: the best of the column is the student's
    assert r"\textbf{80.0 $\pm$ 1.0 (2)}" in text and r"\textbf{90.0 (1)}" not in text


def test_latex_escape() -> None:
    assert latex_escape("a_b%c&d$e#f{g}h~i^j\\k") == (
        r"a\_b\%c\&d\$e\#f\{g\}h\textasciitilde{}i\textasciicircum{}j\textbackslash{}k"
    )
    assert latex_escape("71.2 ± 0.8 — ×100") == r"71.2 $\pm$ 0.8 --- $\times$100"


class _Balance(HTMLParser):
    VOID = frozenset({"meta", "img", "br", "hr", "link", "input"})

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_html_page_is_balanced_escaped_and_embeds_the_plot(study) -> None:
    page = render_html([*study[0], tricky_table()], plot=b"\x89PNG fake bytes", plot_format="png")
    parser = _Balance()
    parser.feed(page)
    assert parser.errors == [] and parser.stack == []
    assert page.count("<table>") == 3 and "data:image/png;base64," in page
    assert "kl:alpha=1&amp;x" in page


def test_terminal_text_marks_best_cells(study) -> None:
    tables, _ = study
    text = render_terminal(tables)
    assert text.count(") *") == sum(len(b) for t in tables for b in t.best)
    assert "\033[" not in text and "\033[1m" in render_terminal(tables, color=True)


@pytest.mark.parametrize("fmt", ["png", "svg"])
def test_plot_file_is_written(study, fmt: str, tmp_path) -> None:
    pytest.importorskip("matplotlib")
    from kdreg.reporting.plot import plot_report

    data = plot_report(study[0], fmt)
    target = tmp_path / f"report.{fmt}"
    target.write_bytes(data)
    assert target.stat().st_size > 1000
    assert data.startswith(b"\x89PNG") if fmt == "png" else b"<svg" in data
