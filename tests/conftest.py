"""Shared test set-up: an isolated kdreg home per test, no network, tiny models."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from pg_server import cluster  # noqa: F401  (the fixture: a throwaway PostgreSQL server, per module)
from slurm_cluster import slurm  # noqa: F401  (the fixture: a single-node Slurm cluster, per session)

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
SHARED_DATA = SHARED / "data"

# No test may wait on a network that is not there.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Tiny models train as fast on one thread, and several times faster than on two when other
# processes share the cores; set before torch is imported here or in any subprocess.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(autouse=True)
def kdreg_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own KDREG_HOME (database and cache) and no KDREG_DB/strict/allow settings."""
    home = tmp_path_factory.mktemp("kdreg-home")
    monkeypatch.setenv("KDREG_HOME", str(home))
    for var in ("KDREG_DB", "KDREG_CACHE", "KDREG_STRICT_PLUGINS", "KDREG_PLUGINS_ALLOW", "KDREG_DEBUG"):
        monkeypatch.delenv(var, raising=False)
    from kdreg.plugins.registry import registry

    registry.cache_clear()
    return home


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved 2-layer, width-32 BERT masked LM with its tokenizer (read-only: copy before changing)."""
    from kdreg.testing.tiny import save_tiny_bert

    return save_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, tiny_bert: Path) -> dict[str, str]:
    """The tiny world of the end-to-end tests (tiny_world.py): the saved tiny BERT as teacher, a
    benchmark, a corpus and a grid file of a few training steps, as plugin specifications."""
    from tiny_world import GRID, write_benchmark, write_corpus

    root = tmp_path_factory.mktemp("world")
    (root / "grid.toml").write_text(GRID)
    return {
        "teacher": f"hf:path={tiny_bert}",
        "benchmark": f"files:path={write_benchmark(root / 'bench')},source=en",
        "corpus": f"text:path={write_corpus(root / 'corpus')}",
        "grid": str(root / "grid.toml"),
    }


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, or skip when this checkout has none (a user's fresh clone)."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is absent")
    return SHARED_DATA


def run_kdreg(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
              timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the real ``kdreg`` command (``python -m kdreg``) in a subprocess."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "kdreg", *args],
        capture_output=True, text=True, env=full_env, cwd=cwd, timeout=timeout,
    )


@pytest.fixture
def kdreg_cli():  # type: ignore[no-untyped-def]
    """The real ``kdreg`` command in a subprocess: ``kdreg_cli("plugins", "--json")``."""
    return run_kdreg


def pip_install_target(target: Path, *packages: Path) -> None:
    """Install local package folders into ``target`` as real distributions, offline (no index, no deps).

    A subprocess with ``PYTHONPATH=target`` then discovers their entry points exactly as
    it would those of a ``pip install``-ed plugin.
    """
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(target), *map(str, packages)],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.fixture(scope="session")
def pip_install() -> Callable[..., None]:
    """:func:`pip_install_target` for tests and session fixtures: ``pip_install(site, pkg, ...)``."""
    return pip_install_target
