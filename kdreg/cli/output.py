"""The one place the CLI prints: rich tables for people, JSON/CSV/Markdown for machines.

Tables go to stdout; errors and progress go to stderr, so ``kdreg query --format csv >
out.csv`` captures data only.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from collections.abc import Sequence
from operator import itemgetter
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

# soft_wrap: lines are never folded by rich (a spec or path broken mid-word at 80 columns
# in a log is unreadable); a terminal wraps long lines itself. Tables lay themselves out.
console = Console(highlight=False, soft_wrap=True, emoji=False)  # ":smile:" in a name stays text
err_console = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)

FORMATS = ("table", "json", "csv", "markdown")


def print_error(message: str) -> None:
    """One red line on stderr (the message is text, never markup: '[/x]' in a path stays as it is)."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", markup=True, highlight=False, soft_wrap=True)


def print_hints(lines: Sequence[str]) -> None:
    """Lines saying why nothing matched (e.g. the languages the store has), on stderr."""
    for line in lines:
        err_console.print(escape(line), highlight=False, soft_wrap=True)


def number(value: float) -> str:
    """A score to four decimals; a count stored as a float (a model's parameters) as a whole number."""
    if value.is_integer() and abs(value) >= 1000:
        return str(int(value))
    return f"{value:.4f}"


def cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return number(value)
    return str(value)


def render_rows(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str],
    *,
    fmt: str = "table",
    title: str | None = None,
    no_wrap: Sequence[str] = (),
) -> None:
    """Print ``rows`` (dicts keyed by ``columns``; for CSV also tuples in column order) in the chosen format.

    ``no_wrap`` names table columns kept on one line (numbers), the others fold.
    """
    if fmt == "json":
        print_json([{c: r.get(c) for c in columns} for r in rows])
    elif fmt == "csv":
        sys.stdout.write(csv_text(rows, columns))
    elif fmt == "markdown":
        lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
        for r in rows:
            lines.append("| " + " | ".join(cell_text(r.get(c)).replace("|", "\\|") for c in columns) + " |")
        sys.stdout.write("\n".join(lines) + "\n")
    else:
        table = Table(title=title, show_lines=False)
        for c in columns:
            if c in no_wrap:
                table.add_column(c, no_wrap=True, justify="right")
            else:
                table.add_column(c, overflow="fold")
        for r in rows:
            table.add_row(*(escape(cell_text(r.get(c))) for c in columns))
        print_table(table)


def csv_text(rows: Sequence[Any], columns: Sequence[str]) -> str:
    """CSV of ``rows``: dicts keyed by ``columns`` (a missing key or None is an empty cell), or
    tuples already in column order. Written in bulk (``writerows`` over C-level getters):
    ``kdreg query -f csv`` on 100,000 runs spends less time here than in the SQL.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    if rows and isinstance(rows[0], tuple):
        writer.writerows(rows)
        return buffer.getvalue()
    try:
        pick = itemgetter(*columns) if len(columns) > 1 else (lambda r: (r[columns[0]],))
        writer.writerows(map(pick, rows))  # csv writes None as ""
    except KeyError:  # rows that lack some columns: cell by cell
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(columns)
        writer.writerows([r.get(c) for c in columns] for r in rows)
    return buffer.getvalue()


def print_table(table: Table) -> None:
    """Print a rich table; piped or captured output gets it at its natural width.

    With no terminal, rich assumes 80 columns and folds every cell to fit, which turns
    ``kdreg plugins | less`` or a CI log into a column of word fragments. There is no
    width to respect then, so the table is measured and printed unsqueezed (up to 240).
    """
    if console.is_terminal:
        console.print(table)
        return
    width = _plain_width(table)
    if width is None:  # cells that are not plain text: let rich measure them (a second full pass)
        width = Console(width=240, emoji=False).measure(table).maximum
    Console(width=min(max(width, 40), 240), highlight=False, soft_wrap=False, emoji=False).print(table)


def _plain_width(table: Table) -> int | None:
    """An upper bound of the table's natural width when every cell is a string; None otherwise.

    A bound is enough — the table is printed at its natural width within it — and reading
    the strings is far cheaper than rich's measuring of every cell (a third of `kdreg query`).
    """
    from rich.cells import cell_len

    total = 1  # the left border
    for column in table.columns:
        cells = [column.header, *column.cells]
        if not all(isinstance(cell, str) for cell in cells):
            return None
        total += max(cell_len(cell) for cell in cells) + 3  # padding on both sides and a border
    return total


def print_json(data: Any) -> None:
    """Machine-readable output on stdout: strict JSON, so NaN and infinities (a std of one seed, a
    diverged loss) are written as null rather than as bare tokens that JSON parsers refuse."""
    sys.stdout.write(json.dumps(_finite(data), indent=2, default=str, allow_nan=False) + "\n")


def _finite(data: Any) -> Any:
    """``data`` with every non-finite float replaced by None (dicts, lists and tuples walked)."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {key: _finite(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [_finite(value) for value in data]
    return data
