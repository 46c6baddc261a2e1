"""Docs commands that depend on the current folder say so, or work from anywhere (issue 17 §3)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RELATIVE = re.compile(
    r"\.\./shared|(?<![\w/.])(?:bench|tests|kdreg|plugins)/\S*\.(?:py|toml)\b" + r'|-e "?\.(?:\[|"|\s|$)'
)
"""Paths that only resolve from the repository's root folder (a clone's files, the shared data)."""


def _paragraphs(text: str) -> list[str]:
    """Paragraphs, with a fenced block kept together with the paragraph just before it."""
    out: list[str] = []
    for part in re.split(r"\n\s*\n", text):
        if part.lstrip().startswith("```") and out:
            out[-1] += "\n\n" + part
        else:
            out.append(part)
    return out


def test_commands_that_need_the_repository_root_say_so() -> None:
    unexplained = []
    for doc in DOCS:
        if doc.name == "cli.md":  # generated from the CLI's help texts
            continue
        for paragraph in _paragraphs(doc.read_text(encoding="utf-8")):
            code = " ".join(re.findall(r"```(?:bash|shell)\n(.*?)```", paragraph, flags=re.S))
            code += " ".join(re.findall(r"`([^`\n]+)`", paragraph)) if "../shared" in paragraph else ""
            explained = "root folder" in paragraph or "from any folder" in paragraph
            if RELATIVE.search(code) and not explained:
                unexplained.append(f"{doc.name}: {paragraph.strip()[:80]!r}")
    assert not unexplained, unexplained


def test_the_synthetic_docs_grid_command_works_from_any_folder(tmp_path: Path) -> None:
    text = (ROOT / "docs" / "synthetic.md").read_text(encoding="utf-8")
    command = re.search(r'GRID=\$\(python -c "(.*?)"\)', text)
    assert command is not None
    found = subprocess.run([sys.executable, "-c", command.group(1)], cwd=tmp_path, capture_output=True,
                           text=True, check=True).stdout.strip()
    assert Path(found).resolve() == (ROOT / "kdreg" / "default_grid.toml").resolve()
