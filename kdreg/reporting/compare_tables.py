"""Rendering a :class:`~kdreg.reporting.compare.CompareResult`: terminal, Markdown, LaTeX, CSV, JSON.

Every format names the test and the interval, and says which runs found no partner: a
comparison that silently dropped runs would overstate what it knows.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from kdreg.reporting.compare import SOURCE, ZERO_SHOT, CompareResult, Comparison, Measure
from kdreg.reporting.pairing import ScoredRun
from kdreg.reporting.tables import latex_escape

COMPARE_FORMATS = ("terminal", "markdown", "latex", "csv", "json")
HEADERS = ("n", "A", "B", "Δ A−B", "95% CI", "p", "d_z")
LISTED = 20
"""Unpaired runs a text format names one by one (JSON names all)."""


def header_line(result: CompareResult) -> str:
    unit = f" ×{result.scale:g}" if result.scale != 1 else ""
    return f"A: {result.a}  vs  B: {result.b}  ({result.metric} on {result.split}{unit})"


def method_line(result: CompareResult) -> str:
    return (f"{result.test}; {result.confidence:.0%} CI of the mean difference A − B; "
            "d_z = mean difference / sd of the differences (Cohen's d_z)")


def column_name(comparison: Comparison, column: str) -> str:
    if column == SOURCE:
        return f"{comparison.source_lang} (source)" if comparison.source_lang else "source"
    return "zero-shot avg" if column == ZERO_SHOT else column


def comparison_title(comparison: Comparison) -> str:
    label = f" · {comparison.label}" if comparison.label else ""
    pairs = len(comparison.pairs)
    return (f"{comparison.benchmark}{label} — {pairs} pair{'s' if pairs != 1 else ''}, "
            f"{comparison.seeds} seed{'s' if comparison.seeds != 1 else ''}")


def p_text(p: float | None) -> str:
    if p is None:
        return "—"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def cells(m: Measure, digits: int) -> list[str]:
    """n, mean A, mean B, Δ, CI, p, d_z as text ('—' where a value needs more pairs)."""
    def num(x: float | None, signed: bool = False) -> str:
        return "—" if x is None else f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"

    ci = "—" if m.ci_low is None or m.ci_high is None else f"[{num(m.ci_low, True)}, {num(m.ci_high, True)}]"
    return [str(m.n), num(m.mean_a), num(m.mean_b), num(m.delta, True), ci, p_text(m.p_value),
            "—" if m.effect is None else f"{m.effect:+.2f}"]


def leftovers(result: CompareResult) -> list[tuple[str, list[ScoredRun]]]:
    """The runs no comparison uses, by why."""
    groups = [
        ("of A without a partner in B", list(result.unpaired_a)),
        ("of B without a partner in A", list(result.unpaired_b)),
        ("matching several runs of the other side (left out; narrow the selection)", list(result.ambiguous)),
        (f"without {result.metric}/{result.split} results", list(result.without_results)),
    ]
    return [(why, runs) for why, runs in groups if runs]


def notes(result: CompareResult) -> list[str]:
    """Lines under the tables: what was left out, and what more seeds would buy."""
    lines: list[str] = []
    for why, runs in leftovers(result):
        lines.append(f"{len(runs)} run(s) {why}:")
        lines += [f"  {run.label}" for run in runs[:LISTED]]
        if len(runs) > LISTED:
            lines.append(f"  … and {len(runs) - LISTED} more (--format json lists every one)")
    if any(len(c.pairs) < 2 for c in result.comparisons):
        lines.append("A comparison with one pair has no interval or p-value: run more seeds "
                     "(kdreg run --seed 0,1,2).")
    return lines


def _grid(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
    return ["  ".join(v.ljust(widths[k]) if k == 0 else v.rjust(widths[k]) for k, v in enumerate(r)).rstrip()
            for r in rows]


def render_terminal(result: CompareResult, digits: int = 1) -> str:
    lines = [header_line(result), method_line(result)]
    if not result.comparisons:
        lines += ["", "No pairs: no run of A agrees with a run of B on everything else."]
    for comparison in result.comparisons:
        rows = [["", *HEADERS]]
        rows += [[column_name(comparison, m.column), *cells(m, digits)] for m in comparison.measures]
        table = _grid(rows)
        rule = "─" * max(len(line) for line in table)
        lines += ["", comparison_title(comparison), rule, table[0], rule, *table[1:], rule]
    extra = notes(result)
    return "\n".join(lines + (["", *extra] if extra else [])) + "\n"


def _md(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("*", "\\*")


def render_markdown(result: CompareResult, digits: int = 1) -> str:
    lines = [f"**{_md(header_line(result))}**", "", f"*{_md(method_line(result))}*"]
    for comparison in result.comparisons:
        lines += ["", f"### {_md(comparison_title(comparison))}", "",
                  "| | " + " | ".join(HEADERS) + " |", "|---|" + "---:|" * len(HEADERS)]
        for m in comparison.measures:
            values = [column_name(comparison, m.column), *cells(m, digits)]
            lines.append("| " + " | ".join(_md(v) for v in values) + " |")
    extra = notes(result)
    if extra:
        lines += [""] + [f"- {_md(line.strip())}" if line.startswith("  ") else _md(line) for line in extra]
    return "\n".join(lines) + "\n"


def render_latex(result: CompareResult, digits: int = 1) -> str:
    parts = ["% Generated by kdreg compare; needs \\usepackage{booktabs} in the preamble."]
    for comparison in result.comparisons:
        head = " & ".join(["", *(latex_escape(h).replace("Δ", r"$\Delta$").replace("−", "$-$")
                                 for h in HEADERS)]) + r" \\"
        rows = [" & ".join(latex_escape(v) for v in [column_name(comparison, m.column), *cells(m, digits)])
                + r" \\" for m in comparison.measures]
        caption = latex_escape(
            f"{header_line(result)}. {comparison_title(comparison)}. {method_line(result)}.")
        parts.append("\n".join([
            r"\begin{table}[t]", r"\centering", r"\small", rf"\caption{{{caption}}}",
            r"\begin{tabular}{l" + "r" * len(HEADERS) + "}", r"\toprule", head, r"\midrule", *rows,
            r"\bottomrule", r"\end{tabular}", r"\end{table}",
        ]))
    extra = [line.strip() for line in notes(result)]
    if extra:
        parts.append("% " + "\n% ".join(extra))
    return "\n\n".join(parts) + "\n"


CSV_COLUMNS = ("benchmark", "comparison", "column", "n", "mean_a", "mean_b", "delta", "ci_low", "ci_high",
               "p_value", "effect_dz", "sd", "pairs", "seeds", "metric", "split", "scale", "a", "b", "test")


def csv_rows(result: CompareResult) -> list[dict[str, Any]]:
    rows = []
    for comparison in result.comparisons:
        for m in comparison.measures:
            named = comparison.source_lang if m.column == SOURCE and comparison.source_lang else m.column
            rows.append({
                "benchmark": comparison.benchmark, "comparison": comparison.label, "column": named,
                "n": m.n, "mean_a": m.mean_a, "mean_b": m.mean_b, "delta": m.delta, "ci_low": m.ci_low,
                "ci_high": m.ci_high, "p_value": m.p_value, "effect_dz": m.effect, "sd": m.sd,
                "pairs": len(comparison.pairs), "seeds": comparison.seeds, "metric": result.metric,
                "split": result.split, "scale": result.scale, "a": result.a, "b": result.b,
                "test": result.test,
            })
    return rows


def render_csv(result: CompareResult) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in csv_rows(result):
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return buffer.getvalue()


def _run(run: ScoredRun) -> dict[str, Any]:
    return {"id": run.id, "label": run.label, "seed": run.seed}


def result_record(result: CompareResult) -> dict[str, Any]:
    """Everything, machine-readable: each comparison with its pairs and measures, and every leftover run."""
    return {
        "a": result.a, "b": result.b, "contrasted": list(result.contrasted), "metric": result.metric,
        "split": result.split, "scale": result.scale, "test": result.test, "confidence": result.confidence,
        "comparisons": [
            {"benchmark": c.benchmark, "label": c.label, "description": c.description, "seeds": c.seeds,
             "source_lang": c.source_lang,
             "pairs": [{"a": a, "b": b, "seed": seed} for a, b, seed in c.pairs],
             "measures": [m.__dict__ for m in c.measures]}
            for c in result.comparisons
        ],
        "unpaired_a": [_run(r) for r in result.unpaired_a],
        "unpaired_b": [_run(r) for r in result.unpaired_b],
        "ambiguous": [_run(r) for r in result.ambiguous],
        "without_results": [_run(r) for r in result.without_results],
    }


def render(result: CompareResult, fmt: str, digits: int = 1) -> str:
    if fmt == "terminal":
        return render_terminal(result, digits)
    if fmt == "markdown":
        return render_markdown(result, digits)
    if fmt == "latex":
        return render_latex(result, digits)
    if fmt == "csv":
        return render_csv(result)
    if fmt == "json":
        return json.dumps(result_record(result), indent=2, default=str) + "\n"
    raise ValueError(fmt)
