"""docs/cli.md is generated from the Typer app itself and must stay current.

Regenerate with:
    python -m typer kdreg.cli.main utils docs --name kdreg \
        --title "kdreg command-line reference" --output docs/cli.md
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_cli_reference_is_current(tmp_path: Path) -> None:
    out = tmp_path / "cli.md"
    subprocess.run(
        [sys.executable, "-m", "typer", "kdreg.cli.main", "utils", "docs", "--name", "kdreg",
         "--title", "kdreg command-line reference", "--output", str(out)],
        check=True, capture_output=True, text=True, timeout=120, cwd=ROOT,
    )
    assert out.read_text(encoding="utf-8") == (ROOT / "docs" / "cli.md").read_text(encoding="utf-8"), (
        "docs/cli.md is stale; regenerate it with the command in this test's docstring"
    )
