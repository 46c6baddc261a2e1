"""Rendering the claims: the verdict block (terminal), Markdown and JSON."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence
from typing import Any

from kdreg.reporting.claims import SUPPORTED, Claim, Evidence
from kdreg.reporting.compare import CONFIDENCE, TEST, ZERO_SHOT
from kdreg.reporting.compare_tables import p_text

CLAIMS_FORMATS = ("terminal", "markdown", "json")
SHOWN = 6
"""Evidence lines per claim in text formats (JSON has all)."""
WORDS = {"supported": "supports", "contradicted": "contradicts", "inconclusive": "inconclusive"}


def heading(metric: str, split: str, scale: float) -> str:
    unit = f" ×{scale:g}" if scale != 1 else ""
    return (f"Claims of the seed study — Δ = A − B in {metric} on {split}{unit}; {TEST}, "
            f"{CONFIDENCE:.0%} CI")


KEEP = "\u00a0"
"""Joins what wrapping must not split ("p 0.003", "n 6 pairs", the interval); a space once wrapped."""


def evidence_line(e: Evidence, digits: int, keep: str = " ") -> str:
    """One comparison behind a verdict; ``keep`` joins the parts a wrapped line keeps together."""
    m = e.measure
    column = "zero-shot avg" if m.column == ZERO_SHOT else m.column
    interval = ("" if m.ci_low is None or m.ci_high is None
                else f" [{m.ci_low:+.{digits}f},{keep}{m.ci_high:+.{digits}f}]")
    delta = "—" if m.delta is None else f"{m.delta:+.{digits}f}"
    return (f"{e.comparison}, {column}: Δ{keep}{delta}{interval}, p{keep}{p_text(m.p_value)}, "
            f"n{keep}{m.n}{keep}pair{'s' if m.n != 1 else ''} — {WORDS[e.verdict]}")


def claim_lines(claim: Claim, digits: int) -> list[str]:
    """The claim with its verdict, what was compared, the evidence and notes (indented)."""
    lines = [f"{claim.number}. {claim.text}: {claim.verdict.upper()}",
             f"   {claim.compared}: {claim.reason}"]
    lines += [f"   {evidence_line(e, digits, KEEP)}" for e in claim.evidence[:SHOWN]]
    if len(claim.evidence) > SHOWN:
        lines.append(f"   … and {len(claim.evidence) - SHOWN} more (kdreg claims --format json)")
    if claim.unpaired and claim.evidence:
        lines.append(f"   {claim.unpaired} run(s) found no partner (kdreg compare lists them)")
    lines += [f"   note: {n}" for n in claim.notes]
    return lines


def render_terminal(claims: Sequence[Claim], *, metric: str, split: str, scale: float,
                    digits: int = 1, width: int | None = None) -> str:
    """Plain lines; with ``width``, each is wrapped to it (continuations indented under their line)."""
    lines = [heading(metric, split, scale)]
    for claim in claims:
        lines += claim_lines(claim, digits)
    if width is not None:
        lines = [part for line in lines for part in _wrap(line, width)]
    return "\n".join(lines).replace(KEEP, " ") + "\n"


def _wrap(line: str, width: int) -> list[str]:
    indent = " " * (len(line) - len(line.lstrip(" ")) + 2)
    return textwrap.wrap(line, width=max(width, 40), subsequent_indent=indent,
                         break_on_hyphens=False) or [line]


def _md(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("*", "\\*")


def render_markdown(claims: Sequence[Claim], *, metric: str, split: str, scale: float,
                    digits: int = 1) -> str:
    lines = [f"*{_md(heading(metric, split, scale))}*", ""]
    for claim in claims:
        verdict = f"**{claim.verdict}**" if claim.verdict == SUPPORTED else f"*{claim.verdict}*"
        lines.append(f"{claim.number}. {_md(claim.text)}: {verdict} — {_md(claim.compared)}: "
                     f"{_md(claim.reason)}")
        lines += [f"   - {_md(evidence_line(e, digits))}" for e in claim.evidence[:SHOWN]]
        if len(claim.evidence) > SHOWN:
            lines.append(f"   - … and {len(claim.evidence) - SHOWN} more")
        lines += [f"   - note: {_md(n)}" for n in claim.notes]
    return "\n".join(lines) + "\n"


def claims_record(claims: Sequence[Claim], *, metric: str, split: str, scale: float) -> dict[str, Any]:
    return {
        "metric": metric, "split": split, "scale": scale, "test": TEST, "confidence": CONFIDENCE,
        "claims": [
            {"number": c.number, "claim": c.text, "verdict": c.verdict, "reason": c.reason,
             "compared": c.compared, "unpaired": c.unpaired, "notes": list(c.notes),
             "evidence": [{"comparison": e.comparison, "verdict": e.verdict, "seeds": e.seeds,
                           **e.measure.__dict__} for e in c.evidence]}
            for c in claims
        ],
    }


def render(claims: Sequence[Claim], fmt: str, *, metric: str, split: str, scale: float,
           digits: int = 1, width: int | None = None) -> str:
    if fmt == "terminal":
        return render_terminal(claims, metric=metric, split=split, scale=scale, digits=digits, width=width)
    if fmt == "markdown":
        return render_markdown(claims, metric=metric, split=split, scale=scale, digits=digits)
    if fmt == "json":
        return json.dumps(claims_record(claims, metric=metric, split=split, scale=scale), indent=2) + "\n"
    raise ValueError(fmt)
