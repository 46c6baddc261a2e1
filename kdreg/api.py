"""The Python API for notebooks: open a store, filter as on the command line, get DataFrames.

    from kdreg.api import connect

    with connect("runs.db") as store:                      # or connect() for the default store
        runs = store.runs(lang=["de", "fr"], teacher="mbert", sort="zero_shot")
        flat = store.results(benchmark="xnli", status="succeeded")   # one row per result
        seeds = store.seed_groups(teacher="mbert", student="distilmbert")  # mean/std/n columns
        tables = store.report(teacher="mbert", student="distilmbert")     # ReportTable values
        paired = store.compare("stage=pretrain", "stage=finetune", teacher="mbert")  # kdreg compare

Keyword filters are those of ``kdreg query`` (``lang``, ``teacher``, ``student``, ``loss``,
``benchmark``, ``corpus``, ``stage``, ``seed``, ``status``, ``metric``, ``split``, ``grid``,
``since``, ``until``); each takes one value or a list (OR within, AND across). Methods
return pandas DataFrames (pandas imported on first use, from the ``report``/``export``
extras) or, with ``frame=False``, lists of dicts. Nothing here imports torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Any

from kdreg.errors import KdregError
from kdreg.store.filters import Filters, build_filters


def _frame(rows: list[dict[str, Any]], columns: list[str] | None, frame: bool) -> Any:
    if not frame:
        return rows
    try:
        import pandas as pd
    except ImportError:
        raise KdregError(
            "DataFrames need pandas: pip install 'kdreg[report]' (or pass frame=False)."
        ) from None
    return pd.DataFrame(rows, columns=columns)


class Experiments:
    """An opened experiment store, read-only through this API."""

    def __init__(self, db: str | None = None) -> None:
        from kdreg.store.reading import open_reader

        self._db = db
        self._store = open_reader(db)

    @property
    def label(self) -> str:
        """The database's file path (or URL without password)."""
        return self._store.label

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> Experiments:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Experiments({self.label!r})"

    # ----------------------------------------------------------------- reads
    def runs(
        self,
        *,
        sort: str = "run",
        descending: bool | None = None,
        limit: int | None = None,
        frame: bool = True,
        **filters: Any,
    ) -> Any:
        """One row per (run, metric, split), as ``kdreg query``: run fields, ``source``, one column
        per requested language, ``zero_shot`` (mean over non-source languages), ``targets``."""
        from kdreg.store.queries import RUN_COLUMNS, read_connection, select_run_scores

        f = self._filters(filters)
        codes = [c.code for c in f.language_columns]
        with read_connection(self._store) as conn:
            statement = select_run_scores(f, sort=sort, descending=descending, limit=limit)
            rows = conn.execute(statement).mappings()
        columns = [*RUN_COLUMNS, "metric", "split", "source_lang", "source", *codes, "zero_shot", "targets"]
        return _frame(rows, columns, frame)

    def results(self, *, frame: bool = True, **filters: Any) -> Any:
        """Flat rows, one per result, with the run's columns (the ``results_flat`` view, filtered).

        Unlike :meth:`runs`, ``metric`` and ``split`` default to all of them here.
        """
        from kdreg.store.queries import FLAT_COLUMNS, read_connection, select_flat

        f = self._filters(filters)
        with read_connection(self._store) as conn:
            rows = conn.execute(select_flat(f)).mappings()
        return _frame(rows, list(FLAT_COLUMNS), frame)

    def seed_groups(self, *, frame: bool = True, status: Any = "succeeded", **filters: Any) -> Any:
        """Runs differing only by seed, collapsed: ``runs``, ``seeds`` and ``<column>_mean/_std/_n``
        for ``source``, each target language (the requested ones, else all) and ``zero_shot``.

        ``std`` is the sample standard deviation (ddof=1); None for a single seed. Succeeded
        runs only unless ``status`` says otherwise, as :meth:`report` and ``kdreg query
        --group-seeds`` count (a re-run in progress keeps its earlier numbers meanwhile).
        """
        from kdreg.reporting.aggregate import seed_groups

        f = self._filters({**filters, "status": status})
        codes = [c.code for c in f.language_columns] or None
        groups = [g for m in f.metrics for s in f.splits for g in seed_groups(self._store, f, m, s)]
        if codes is None:
            codes = sorted({lang for g in groups for lang in g.languages})
        rows = [g.record(codes) for g in groups]
        return _frame(rows, None, frame)

    def report(
        self,
        *,
        scale: float = 100.0,
        digits: int = 1,
        baselines: bool = True,
        status: Any = "succeeded",
        **filters: Any,
    ) -> list[Any]:
        """The ``kdreg report`` tables (:class:`~kdreg.reporting.report.ReportTable`); render them with
        :func:`kdreg.reporting.tables.render` (``"markdown"``, ``"latex"``, ``"html"``, …)."""
        from kdreg.reporting.report import build_report

        f = self._filters({**filters, "status": status, "keep_unset": baselines})
        return build_report(self._store, f, scale=scale, digits=digits)

    def compare(
        self,
        a: str | Sequence[str],
        b: str | Sequence[str],
        *,
        by: str | Sequence[str] = (),
        scale: float = 100.0,
        status: Any = "succeeded",
        **filters: Any,
    ) -> Any:
        """``kdreg compare``: ``a``/``b`` as its --a/--b (``"stage=pretrain"``), the other filters as
        keywords; a :class:`~kdreg.reporting.compare.CompareResult` (render it with
        :func:`kdreg.reporting.compare_tables.render`)."""
        from kdreg.reporting.compare import compare, parse_side

        def listed(value: str | Sequence[str]) -> list[str]:
            return [value] if isinstance(value, str) else list(value)

        f = self._filters({**filters, "status": status, "keep_unset": True})
        return compare(self._store, parse_side(listed(a), "a"), parse_side(listed(b), "b"), f,
                       by=listed(by), scale=scale)

    def run(self, ref: str | int) -> dict[str, Any]:
        """Everything about one run (id or config-hash prefix), as ``kdreg show --json``."""
        from kdreg.reporting.runs import run_record
        from kdreg.store.store import open_store

        store = open_store(self._db, read_only=True)  # the ORM, for the run's results and curves
        try:
            return run_record(store.find_run(ref))
        finally:
            store.close()

    @staticmethod
    def _filters(options: dict[str, Any]) -> Filters:
        try:
            return build_filters(**options)
        except TypeError as exc:
            raise KdregError(
                f"{exc}; filters are: lang, teacher, student, loss, benchmark, corpus, stage, seed, "
                "status, metric, split, grid, since, until."
            ) from None


def connect(db: str | None = None) -> Experiments:
    """Open the experiment store at ``db`` (an SQLAlchemy URL or SQLite path; default: ``$KDREG_DB``
    or the default store) for reading. A missing database is an error, never created."""
    return Experiments(db)
