"""Tables at normal terminal widths: short labels with a legend, pages of languages, every line fits."""

from __future__ import annotations

import re

import pytest
from rich.cells import cell_len

from kdreg.reporting.layout import TextColumn, pages, render_text_table, short_labels
from kdreg.reporting.report import build_report
from kdreg.reporting.tables import render_terminal
from kdreg.store.filters import build_filters
from kdreg.store.queries import read_connection

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def widest(text: str) -> int:
    return max(cell_len(ANSI.sub("", line)) for line in text.splitlines())


@pytest.fixture(scope="module")
def tables(seeded):  # type: ignore[no-untyped-def]
    """Both teachers and students, three losses, two benchmarks: every label column varies."""
    store, _ = seeded
    with read_connection(store) as conn:
        return build_report(conn, build_filters(status="succeeded", keep_unset=True),
                            chance=lambda benchmark, metric: {"xnli": 1 / 3}.get(benchmark))


def test_short_labels_are_canonical_and_explained() -> None:
    specs = ["kl:alpha=1,temperature=1", "mse", "kl:alpha=0.5,temperature=4", None,
             "kl:alpha=1,temperature=1"]
    labels, legend = short_labels(specs)
    assert labels == {"mse": "mse", "kl:alpha=0.5,temperature=4": "kl#1", "kl:alpha=1,temperature=1": "kl#2"}
    assert legend == ["kl#1 = kl:alpha=0.5,temperature=4", "kl#2 = kl:alpha=1,temperature=1"]
    assert short_labels(list(reversed(specs))) == (labels, legend)  # the same set, the same labels
    # a short spec that happens to read like a label is not reused
    clash, _ = short_labels(["kl#1", "kl:alpha=0.5,temperature=4"])
    assert clash["kl:alpha=0.5,temperature=4"] == "kl#2"


@pytest.mark.parametrize("width", [80, 100])
def test_report_fits_the_terminal_and_keeps_every_label(tables, width: int) -> None:
    text = render_terminal(tables, width=width)
    assert widest(text) <= width
    natural = render_terminal(tables)
    assert widest(natural) > 150  # what a terminal used to get
    # no label is cut: every stage and student of the table appears whole on a row line
    for stage in ("teacher", "none", "finetune", "pretrain", "both"):
        assert re.search(rf"\b{stage}\b", text)
    assert "layers:keep=6" in text and "distil" in text
    # long loss specs are short labels with a legend, never fragments like 'kl:' / 'alp'
    assert "loss kl#1 = kl:alpha=0.5,temperature=4" in text
    assert "kl#1" in text and not re.search(r"^\S*\s+kl:alp", text, re.M)
    # the languages are folded into pages, each repeating the identifying columns
    assert re.search(r"^\(2/\d\) ", text, re.M)


def test_fitted_table_shows_seeds_once_per_row_chance_and_no_best_teacher(tables) -> None:
    xnli = next(t for t in tables if t.benchmark == "xnli")
    text = render_terminal([xnli], width=100)
    rows = [line for line in text.splitlines() if " teacher " in f" {line} " and "±" in line]
    assert rows and not any("*" in line for line in rows)  # the reference is never "best"
    assert any(re.search(r"\b3\s+\d+\.\d ± \d+\.\d \*", line) for line in text.splitlines())
    assert "(3)" not in text  # n once per row (column n), not in every cell
    chance_rows = [line for line in text.splitlines() if line.startswith("chance ")]
    assert len(chance_rows) == len(re.findall(r"^\(\d/\d\)", text, re.M)) and "33.3" in chance_rows[0]
    sib = next(t for t in tables if t.benchmark == "sib200")
    assert sib.chance is None and not re.search(r"^chance ", render_terminal([sib], width=100), re.M)


def test_piped_output_is_the_whole_table_at_its_natural_width(tables) -> None:
    """No terminal, no width: nothing folded or abbreviated (a file or `grep` sees whole names)."""
    text = render_terminal(tables)
    assert "kl#1" not in text and "(1/" not in text
    assert any(re.search(r"\bfinetune\s+kl:alpha=0\.5,temperature=4\s", line) for line in text.splitlines())
    assert "75.0 ± 0.5 (3)" in text  # every cell with its n, as before


def test_pages_hold_every_key_column_and_fit() -> None:
    keys = [TextColumn("stage", ("teacher", "finetune"), key=True),
            TextColumn("loss", ("—", "kl#1"), key=True)]
    values = [TextColumn(f"l{i}", ("38.3 ± 4.1", "40.0 ± 1.0"), numeric=True) for i in range(7)]
    laid = pages([*keys, *values], 74)  # room for 5 values beside the keys
    assert len(laid) == 2 and all(page[:2] == keys for page in laid)
    assert [len(page) - 2 for page in laid] == [4, 3]  # spread evenly, not 5 + 2
    text = render_text_table("t", [*keys, *values], width=74)
    assert widest(text) <= 74


def test_identifying_columns_too_wide_for_values_get_a_page_and_row_numbers() -> None:
    """When the labels leave no room for a number, they get the first page; later pages are keyed
    by the row number (or a run id), so nothing is squeezed and rows can still be told apart."""
    keys = [TextColumn(name, ("x" * 15, "y" * 15), key=True) for name in ("a", "b", "c", "d")]
    values = [TextColumn("score", ("0.5000", "0.6000"), numeric=True)]
    text = render_text_table("t", [*keys, *values], width=70)
    assert widest(text) <= 70
    assert "x" * 15 in text and text.count("#") == 2  # '#' heads the first column of both pages
    second = text.split("(2/2)")[1]
    assert "x" * 15 not in second and re.search(r"^\s*1\s+0\.5000$", second, re.M)
