"""Fixtures of the pipeline tests: the tiny world on disk, and one torch thread."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tiny_world import GRID, write_benchmark, write_corpus


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """Tiny models train as fast on one thread, and many times faster when other processes share the cores."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


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
