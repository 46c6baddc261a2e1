"""Where kdreg keeps things, and how a --db value becomes a database URL."""

from __future__ import annotations

from pathlib import Path

import pytest

from kdreg.paths import cache_dir, default_db_path, default_db_url, home, resolve_db_url


def test_kdreg_home_moves_everything(kdreg_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert home() == kdreg_home
    assert default_db_path() == kdreg_home / "kdreg.db"
    assert default_db_url() == f"sqlite:///{kdreg_home / 'kdreg.db'}"
    assert cache_dir() == kdreg_home / "cache"
    monkeypatch.setenv("KDREG_CACHE", "~/big-disk/kdreg")
    assert cache_dir() == Path("~/big-disk/kdreg").expanduser()


def test_db_precedence_explicit_then_environment_then_default(
    kdreg_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert resolve_db_url(None) == (default_db_url(), True)
    monkeypatch.setenv("KDREG_DB", "postgresql://lab/kd")
    assert resolve_db_url(None) == ("postgresql://lab/kd", False)
    assert resolve_db_url("sqlite:///x.db") == ("sqlite:///x.db", False)
    monkeypatch.chdir(tmp_path)
    assert resolve_db_url("runs.db") == (f"sqlite:///{tmp_path / 'runs.db'}", False)  # a bare path
