"""Rendering report tables: terminal, Markdown, LaTeX (booktabs), CSV and an HTML page.

Each renderer takes the same :class:`~kdreg.reporting.report.ReportTable` values and
returns text, so `kdreg report --out DIR` can write every format from one query. The
best mean of each column is bold (and marked ``*`` where bold does not survive, in plain
text); LaTeX is escaped so names with ``_`` or ``%`` paste into a paper unchanged. The
benchmark's chance level, when it gives one, is the last row of a terminal table and a
note (a ``chance`` column in CSV) elsewhere.
"""

from __future__ import annotations

import csv
import html
import io
import re
from collections.abc import Sequence
from typing import Any

from kdreg.reporting.report import NO_LABEL, ReportTable

FORMATS = ("terminal", "markdown", "latex", "csv", "html")
EXTENSIONS = {"terminal": "txt", "markdown": "md", "latex": "tex", "csv": "csv", "html": "html"}
LEGEND = "Cells: mean ± sample std over seeds (n seeds); best mean per column in bold."


# --------------------------------------------------------------------------- terminal
BOLD, RESET = "\033[1m", "\033[0m"


def _line(values: Sequence[str], widths: Sequence[int], n_labels: int, bold: Sequence[bool] = ()) -> str:
    """Labels left-aligned, numbers right-aligned, two spaces apart; ``bold`` cells in ANSI bold."""
    out = []
    for k, value in enumerate(values):
        text = value.ljust(widths[k]) if k < n_labels else value.rjust(widths[k])
        out.append(f"{BOLD}{text}{RESET}" if k < len(bold) and bold[k] else text)
    return "  ".join(out).rstrip()


def render_terminal(tables: Sequence[ReportTable], *, color: bool = False, width: int | None = None) -> str:
    """Aligned plain text; best cells end in ``*`` (with ``color`` they are also bold, ANSI).

    With a ``width`` (a terminal's), every line fits it: shared labels above the table,
    long specifications as short labels with a legend, the number of seeds once per row,
    languages folded into pages (:mod:`kdreg.reporting.layout`). Without one (piped to a
    file or program) the table is printed whole at its natural width, as it always was.
    Written by hand rather than with rich: a store of thousands of groups renders in
    milliseconds.
    """
    if width is not None:
        from kdreg.reporting.layout import render_text_table

        fitted = []
        for table in tables:
            title, columns, above, below = fitted_table(table, width)
            fitted.append(render_text_table(title, columns, width=width, color=color, above=above,
                                            below=below))
        return "\n\n".join(fitted) + f"\n\n{LEGEND.replace('in bold', 'marked *')}\n"
    parts: list[str] = []
    for table in tables:
        n_labels = len(table.label_columns)
        head = [*table.label_columns, *table.headers]
        body = []
        for i, row in enumerate(table.rows):
            cells = [
                table.cell_text(i, j) + (" *" if table.is_best(i, j) else "  ")
                for j in range(len(table.keys))
            ]
            body.append([*row.label, *cells])
        if table.chance is not None:  # the last row: what guessing scores
            body.append(["chance", *[""] * (n_labels - 1), *[table.chance_text + "  "] * len(table.keys)])
        widths = [max(len(str(r[k])) for r in [head, *body]) for k in range(len(head))]
        rule = "─" * (sum(widths) + 2 * (len(widths) - 1))
        lines = [table.title, rule, _line(head, widths, n_labels), rule]
        for i, values in enumerate(body):
            bold = [False] * n_labels + [i < len(table.rows) and table.is_best(i, j) and color
                                         for j in range(len(table.keys))]
            lines.append(_line(values, widths, n_labels, bold))
        lines.append(rule)
        lines += [f"note: {n}" for n in table.notes]
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + f"\n\n{LEGEND.replace('in bold', 'marked *')}\n"


def fitted_table(table: ReportTable, width: int) -> tuple[str, list[Any], list[str], list[str]]:
    """(title, columns, lines above, lines below) of ``table`` laid out for a ``width``-column terminal.

    Labels every row shares go above the table; long specifications become short labels
    explained below it; a row whose cells all pool the same number of seeds shows that
    number once (column ``n``) rather than in every cell; the chance level is the last row.
    """
    from kdreg.reporting.layout import TextColumn, shared_values, short_labels

    rows = table.rows
    named = [(name, [row.label[k] for row in rows]) for k, name in enumerate(table.label_columns)]
    shared, above = shared_values(named, len(rows), NO_LABEL)
    chance = [] if table.chance is None else [table.chance_text]
    columns: list[Any] = []
    legend: list[str] = []
    for name, cells in named:
        if name in shared:
            continue
        labels, explained = short_labels(cells)
        legend += [f"{name} {line}" for line in explained]
        first = not columns
        columns.append(TextColumn(name, (*(labels.get(c, c) for c in cells), *(["chance"] if chance and first
                                                                                  else [""] * len(chance))),
                                  key=True))
    counts = [_row_count(row) for row in rows]
    if any(n is not None and n > 1 for n in counts) or any(n is None for n in counts):
        columns.append(TextColumn("n", (*("" if n is None else str(n) for n in counts), *[""] * len(chance)),
                                  numeric=True, key=True))
    for j, header in enumerate(table.headers):
        cells, bold = [], []
        for i, row in enumerate(rows):
            cell = row.cells[j]
            best = table.is_best(i, j)
            text = "" if cell is None else cell.text(table.digits, show_n=counts[i] is None)
            cells.append(text + (" *" if best else "  "))
            bold.append(best)
        columns.append(TextColumn(header, (*cells, *(f"{c}  " for c in chance)), numeric=True,
                                  bold=(*bold, *[False] * len(chance))))
    below = legend + [f"note: {n}" for n in table.notes]
    if table.chance is not None:
        below.append(f"chance: the score of guessing at random ({table.chance_text}), as the benchmark says")
    return table.title, columns, above, below


def _row_count(row: Any) -> int | None:
    """The number of seeds every cell of ``row`` pools, or None when cells differ."""
    counts = {cell.n for cell in row.cells if cell is not None}
    return counts.pop() if len(counts) == 1 else None


def _chance_note(table: ReportTable) -> list[str]:
    """The chance level as a note under the table, when the benchmark gives it."""
    return [] if table.chance is None else [f"Chance level (guessing at random): {table.chance_text}."]


# --------------------------------------------------------------------------- markdown
def _md(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("*", "\\*").replace("\n", " ")


def render_markdown(tables: Sequence[ReportTable]) -> str:
    parts: list[str] = []
    for table in tables:
        head = [*table.label_columns, *table.headers]
        lines = [
            f"### {_md(table.title)}",
            "",
            "| " + " | ".join(_md(h) for h in head) + " |",
            "|" + "|".join(["---"] * len(table.label_columns) + ["---:"] * len(table.headers)) + "|",
        ]
        for i, row in enumerate(table.rows):
            cells = []
            for j in range(len(table.keys)):
                text = _md(table.cell_text(i, j))
                cells.append(f"**{text}**" if table.is_best(i, j) and text else text)
            lines.append("| " + " | ".join([*(_md(v) for v in row.label), *cells]) + " |")
        lines += [""] + [f"*Note: {_md(n)}*" for n in (*table.notes, *_chance_note(table))]
        parts.append("\n".join(lines).rstrip())
    return "\n\n".join(parts) + f"\n\n{LEGEND}\n"


# --------------------------------------------------------------------------- latex
_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}
_LATEX_RE = re.compile("|".join(re.escape(k) for k in _LATEX_SPECIAL))


def latex_escape(text: str) -> str:
    """Text safe inside a LaTeX tabular (``_`` → ``\\_``, ``%`` → ``\\%``, …); "—" becomes ``---``."""
    escaped = _LATEX_RE.sub(lambda m: _LATEX_SPECIAL[m.group()], text)
    return escaped.replace("—", "---").replace("±", r"$\pm$").replace("×", r"$\times$")


def render_latex(tables: Sequence[ReportTable]) -> str:
    """booktabs tables, one ``table`` float per benchmark; needs ``\\usepackage{booktabs}``."""
    parts = ["% Generated by kdreg report; needs \\usepackage{booktabs} in the preamble."]
    for table in tables:
        spec = "l" * len(table.label_columns) + "r" * len(table.headers)
        head = [
            latex_escape(h.capitalize() if h in table.label_columns else h)
            for h in (*table.label_columns, *table.headers)
        ]
        label = re.sub(r"[^a-z0-9]+", "-", f"{table.benchmark}-{table.metric}-{table.split}".lower()).strip(
            "-"
        )
        lines = [
            r"\begin{table}[t]",
            r"\centering",
            r"\small",
            rf"\caption{{{latex_escape(table.title)}. Best mean per column in bold.}}",
            rf"\label{{tab:kdreg-{label}}}",
            rf"\begin{{tabular}}{{{spec}}}",
            r"\toprule",
            " & ".join(head) + r" \\",
            r"\midrule",
        ]
        for i, row in enumerate(table.rows):
            cells = []
            for j in range(len(table.keys)):
                text = latex_escape(table.cell_text(i, j))
                cells.append(rf"\textbf{{{text}}}" if table.is_best(i, j) and text else text)
            lines.append(" & ".join([*(latex_escape(v) for v in row.label), *cells]) + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}"]
        lines += [rf"\par\footnotesize {latex_escape(n)}" for n in (*table.notes, *_chance_note(table))]
        lines.append(r"\end{table}")
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


# --------------------------------------------------------------------------- csv
def csv_rows(tables: Sequence[ReportTable]) -> tuple[list[str], list[dict[str, Any]]]:
    """Wide rows: labels, runs, seeds, then ``<column>_mean``, ``_std``, ``_n`` per value column."""
    keys: list[str] = []
    labels: list[str] = []
    for table in tables:
        keys += [k for k in table.keys if k not in keys]
        labels += [c for c in table.label_columns if c not in labels]
    header = ["benchmark", "metric", "split", "scale", "chance", *labels, "runs", "seeds"]
    header += [f"{k}_{part}" for k in keys for part in ("mean", "std", "n")]
    rows: list[dict[str, Any]] = []
    for table in tables:
        for row in table.rows:
            record: dict[str, Any] = {
                "benchmark": table.benchmark,
                "metric": table.metric,
                "split": table.split,
                "scale": table.scale,
                "chance": table.chance,
                "runs": row.runs,
                "seeds": row.seeds,
            }
            record.update({name: "" if value == NO_LABEL else value  # machines read empty as missing
                           for name, value in zip(table.label_columns, row.label, strict=True)})
            for key, cell in zip(table.keys, row.cells, strict=True):
                if cell is not None:
                    record.update({f"{key}_mean": cell.mean, f"{key}_std": cell.std, f"{key}_n": cell.n})
            rows.append(record)
    return header, rows


def render_csv(tables: Sequence[ReportTable]) -> str:
    header, rows = csv_rows(tables)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return buffer.getvalue()


# --------------------------------------------------------------------------- html
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
caption { text-align: left; font-weight: 600; padding-bottom: 0.4em; }
th, td { padding: 0.25em 0.7em; }
thead th { border-bottom: 1px solid #444; border-top: 2px solid #444; }
tbody tr:last-child td { border-bottom: 2px solid #444; }
td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
p.note { color: #666; font-size: 0.85em; }
figure img, figure svg { max-width: 100%; height: auto; }
"""


def render_html(
    tables: Sequence[ReportTable],
    *,
    plot: bytes | None = None,
    plot_format: str = "png",
    plot_note: str | None = None,
) -> str:
    """A self-contained page: the tables and, when given, the plot embedded in it."""
    import base64

    body: list[str] = ["<h1>kdreg report</h1>", f"<p>{html.escape(LEGEND)}</p>"]
    if plot is not None:
        if plot_format == "svg":
            svg = plot.decode("utf-8")
            svg = svg[svg.find("<svg") :] if "<svg" in svg else svg
            body.append(f"<figure>{svg}</figure>")
        else:
            data = base64.b64encode(plot).decode("ascii")
            body.append(
                f'<figure><img alt="per-language scores" src="data:image/png;base64,{data}"></figure>'
            )
    elif plot_note:
        body.append(f'<p class="note">{html.escape(plot_note)}</p>')
    for table in tables:
        rows = []
        for i, row in enumerate(table.rows):
            cells = [f"<td>{html.escape(v)}</td>" for v in row.label]
            for j in range(len(table.keys)):
                text = html.escape(table.cell_text(i, j))
                if table.is_best(i, j) and text:
                    text = f"<strong>{text}</strong>"
                cells.append(f'<td class="num">{text}</td>')
            rows.append("<tr>" + "".join(cells) + "</tr>")
        head = "".join(f"<th>{html.escape(h)}</th>" for h in (*table.label_columns, *table.headers))
        body.append(
            f"<table><caption>{html.escape(table.title)}</caption><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>"
        )
        body += [f'<p class="note">{html.escape(n)}</p>' for n in (*table.notes, *_chance_note(table))]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>kdreg report</title>'
        f"<style>{_STYLE}</style></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def render(tables: Sequence[ReportTable], fmt: str, **html_options: Any) -> str:
    """Text of ``tables`` in ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "terminal":
        return render_terminal(tables)
    if fmt == "markdown":
        return render_markdown(tables)
    if fmt == "latex":
        return render_latex(tables)
    if fmt == "csv":
        return render_csv(tables)
    if fmt == "html":
        return render_html(tables, **html_options)
    raise ValueError(fmt)
