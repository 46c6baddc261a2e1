"""Plain-text tables that fit a terminal: short labels with a legend, value columns in pages.

A terminal of 80 or 100 columns cannot hold a study's table at its natural width
(specs like ``kl:alpha=0.5,temperature=4``, a dozen languages of ``71.2 ± 0.8``), and
squeezing every column to fit turns names into ``bot``/``h`` fragments. Instead:

* the identifying columns (stage, student, loss, …) are never dropped or squeezed: a
  value shared by every row moves to a line above the table, and a long specification
  is shown by a canonical short label (``kl#1``) explained in a legend under it;
* the value columns (languages, averages) are folded into pages: each page repeats the
  identifying columns and takes as many value columns as the width allows.

Every line is at most ``width`` characters (measured in terminal cells), unless the
identifying columns and one value column alone are wider, where nothing sensible fits.
Without a width (output piped to a file or another program) the table is one page at its
natural width and nothing is abbreviated, so ``grep`` and scripts see whole names.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

from rich.cells import cell_len

GAP = "  "
BOLD, RESET = "\033[1m", "\033[0m"
LABEL_LIMIT = 14
"""Specifications up to this many characters are shown as they are; longer ones get a short label."""


@dataclass(frozen=True)
class TextColumn:
    """One column: its header, its cells (text), and how it behaves in a page."""

    header: str
    cells: tuple[str, ...]
    numeric: bool = False
    """Right-aligned (numbers); labels are left-aligned."""
    key: bool = False
    """Identifying: repeated on every page, never dropped."""
    bold: tuple[bool, ...] = ()
    """Cells shown in bold (with colour only)."""
    unique: bool = False
    """Its cells tell rows apart (a run id)."""

    @property
    def width(self) -> int:
        return max([cell_len(self.header), *(cell_len(c) for c in self.cells)])


def short_labels(values: Sequence[str | None], limit: int = LABEL_LIMIT) -> tuple[dict[str, str], list[str]]:
    """Canonical short labels for long specifications, and the legend that explains them.

    A value of at most ``limit`` characters stays as it is. A longer one becomes its plugin
    name (the text before ``:``, shortened if need be) and a number, ``kl#1``, ``kl#2``,
    numbered in sorted order of the full specifications, so the same set of values always
    gets the same labels. Returns (value → label, legend lines ``kl#1 = kl:alpha=…``).
    """
    distinct = sorted({v for v in values if v})
    long = [v for v in distinct if cell_len(v) > limit]
    labels = {v: v for v in distinct if v not in long}
    counts: dict[str, int] = {}
    legend = []
    for value in long:
        name = value.split(":", 1)[0][: max(1, limit - 3)]
        counts[name] = counts.get(name, 0) + 1
        label = f"{name}#{counts[name]}"
        while label in labels.values():  # a short value spelled like a label: keep counting
            counts[name] += 1
            label = f"{name}#{counts[name]}"
        labels[value] = label
        legend.append(f"{label} = {value}")
    return labels, legend


def pages(columns: Sequence[TextColumn], width: int | None) -> list[list[TextColumn]]:
    """The columns in pages of at most ``width`` cells.

    Each page has every key column and as many value columns as fit. When the key columns
    leave no room for a value column, the first page has all of them and the later pages
    only the first, which must then tell rows apart (a run id, or the row numbers that
    :func:`render_text_table` adds).
    """
    keys = [c for c in columns if c.key]
    values = [c for c in columns if not c.key]
    if width is None or not values:
        return [list(columns)]
    if keys and _span(keys) + len(GAP) + max(c.width for c in values) > width:
        first, rest = _fill(keys, values, width, balance=False)[0], []
        remaining = [c for c in values if c not in first]
        if remaining:
            rest = [[keys[0], *page] for page in _fill(keys[:1], remaining, width)]
        return [[*keys, *first], *rest]
    return [[c for c in columns if c.key or c in page] for page in _fill(keys, values, width)]


def needs_anchor(columns: Sequence[TextColumn], width: int | None) -> bool:
    """Whether :func:`pages` will show only the first key column on later pages."""
    keys = [c for c in columns if c.key]
    values = [c for c in columns if not c.key]
    return bool(width is not None and keys and values
                and _span(keys) + len(GAP) + max(c.width for c in values) > width)


def _span(columns: Sequence[TextColumn]) -> int:
    return sum(c.width for c in columns) + len(GAP) * max(0, len(columns) - 1)


def _fill(keys: list[TextColumn], values: list[TextColumn], width: int, *, balance: bool = True
          ) -> list[list[TextColumn]]:
    """Value columns in pages beside ``keys``, greedily, then spread evenly over as many pages."""
    base = _span(keys)
    out: list[list[TextColumn]] = []
    current: list[TextColumn] = []
    used = base
    for column in values:
        extra = column.width + (len(GAP) if keys or current else 0)
        if used + extra > width and (current or not balance):
            out.append(current)
            if not balance:
                return out
            current, used = [], base
            extra = column.width + (len(GAP) if keys else 0)
        current.append(column)
        used += extra
    out.append(current)
    return (_balanced(out, values, width - base) or out) if balance else out


def _balanced(greedy: list[list[TextColumn]], values: list[TextColumn], room: int
              ) -> list[list[TextColumn]] | None:
    """The same number of pages with the value columns spread evenly (4 + 1 becomes 3 + 2),
    when each page still fits ``room``; None when it does not."""
    count = len(greedy)
    if count < 2:
        return None
    size, extra = divmod(len(values), count)
    out, start = [], 0
    for index in range(count):
        end = start + size + (1 if index < extra else 0)
        page = values[start:end]
        if not page or sum(c.width + len(GAP) for c in page) > room:
            return None
        out.append(page)
        start = end
    return out


def _line(cells: Sequence[str], columns: Sequence[TextColumn], bold: Sequence[bool] = ()) -> str:
    out = []
    for k, (text, column) in enumerate(zip(cells, columns, strict=True)):
        pad = " " * (column.width - cell_len(text))
        padded = pad + text if column.numeric else text + pad
        out.append(f"{BOLD}{padded}{RESET}" if k < len(bold) and bold[k] else padded)
    return GAP.join(out).rstrip()


def render_page(columns: Sequence[TextColumn], *, color: bool = False) -> list[str]:
    """Header, rule, one line per row, rule."""
    rows = len(columns[0].cells) if columns else 0
    rule = "─" * (sum(c.width for c in columns) + len(GAP) * (len(columns) - 1))
    lines = [_line([c.header for c in columns], columns), rule]
    for i in range(rows):
        bold = [color and bool(c.bold) and c.bold[i] for c in columns]
        lines.append(_line([c.cells[i] for c in columns], columns, bold))
    lines.append(rule)
    return lines


def wrap(lines: Sequence[str], width: int | None, indent: str = "  ") -> list[str]:
    """Prose lines (captions, legends, notes) folded to ``width``; as they are without one."""
    if width is None:
        return list(lines)
    out: list[str] = []
    for line in lines:
        out += textwrap.wrap(line, width=max(width, 20), subsequent_indent=indent,
                             break_on_hyphens=False) or [""]
    return out


def pack(items: Sequence[str], width: int | None, separator: str = " · ") -> list[str]:
    """Short items (``teacher mbert``) joined by ``separator`` into lines of at most ``width``;
    an item is never split unless it alone is wider."""
    if not items:
        return []
    if width is None:
        return [separator.join(items)]
    lines: list[str] = []
    current = ""
    for item in items:
        candidate = f"{current}{separator}{item}" if current else item
        if current and cell_len(candidate) > width:
            lines.append(current)
            candidate = item
        current = candidate
    lines.append(current)
    return wrap(lines, width)


def render_text_table(title: str, columns: Sequence[TextColumn], *, width: int | None, color: bool = False,
                      above: Sequence[str] = (), below: Sequence[str] = ()) -> str:
    """The whole table: title, ``above`` (items every row shares), the pages, ``below`` (legend, notes)."""
    parts = wrap([title], width) + pack(above, width)
    if needs_anchor(columns, width) and not columns[0].unique:
        rows = len(columns[0].cells)
        columns = [TextColumn("#", tuple(str(i) for i in range(1, rows + 1)), numeric=True, key=True,
                              unique=True), *columns]
    laid_out = pages(columns, width)
    for number, page in enumerate(laid_out, start=1):
        if len(laid_out) > 1:
            shown = ", ".join(c.header for c in page if not c.key) or "what each row is"
            parts += wrap([f"({number}/{len(laid_out)}) {shown}"], width)
        parts += render_page(page, color=color)
    parts += wrap(below, width)
    return "\n".join(parts)


def shared_values(named: Sequence[tuple[str, Sequence[str | None]]], rows: int, missing: str = "—"
                  ) -> tuple[list[str], list[str]]:
    """Which label columns every row shares one value of (moved above the table) and which vary.

    A row that does not have a label (the teacher's student, shown ``missing``) does not
    stop the others from sharing it; a column no row has a value in is left out altogether.
    Returns (names of shared or empty columns, ``name value`` texts).
    """
    shared, texts = [], []
    for name, cells in named:
        present = {c for c in cells if c and c != missing}
        if rows > 1 and not present:
            shared.append(name)
        elif rows > 1 and len(present) == 1:
            shared.append(name)
            texts.append(f"{name} {present.pop()}")
    return shared, texts
