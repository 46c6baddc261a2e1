"""Fixtures of the pipeline tests: the tiny world on disk (one torch thread: see tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_world import GRID, write_benchmark, write_corpus


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, tiny_bert: Path) -> dict[str, str]:
    """Specifications of the tiny world: the saved tiny BERT as teacher, benchmark, corpus, grid file."""
    root = tmp_path_factory.mktemp("world")
    (root / "grid.toml").write_text(GRID)
    return {
        "teacher": f"hf:path={tiny_bert}",
        "benchmark": f"files:path={write_benchmark(root / 'bench')},source=en",
        "corpus": f"text:path={write_corpus(root / 'corpus')}",
        "grid": str(root / "grid.toml"),
    }
