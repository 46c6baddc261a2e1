"""A synthetic store shared by the reporting tests (built once per session, copied per module)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kdreg.store.store import Store, open_store
from kdreg.testing.store_data import SyntheticRun, seeded_copy


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, list[SyntheticRun]]]:
    cache = tmp_path_factory.getbasetemp() / "synthetic-store-cache"
    cache.mkdir(exist_ok=True)
    path = tmp_path_factory.mktemp("reporting") / "runs.db"
    runs = seeded_copy(cache, path)
    store = open_store(f"sqlite:///{path}", create=False)
    yield store, runs
    store.close()
