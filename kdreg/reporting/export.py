"""Flat export: one row per result with its run's columns, streamed to CSV, JSON Lines or Parquet.

Rows come from the database in batches (the driver's cursor), so memory stays flat however
large the store, and each batch is written in bulk as columns (timestamps formatted one
column at a time), handed to ``csv.writer.writerows`` or to pyarrow as whole columns —
for Parquet as SQLite stored them, pyarrow parsing each column of timestamps in one call —
rather than a Python call per cell (``bench/query_report.py`` times it
against hand-written SQL). Files are written through :mod:`kdreg.reporting.output_files`:
never over the database being read, never left truncated under the requested name.
Parquet needs pyarrow (``pip install 'kdreg[export]'``), imported only here.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from kdreg.errors import ConfigError, KdregError
from kdreg.store.filters import Filters

BATCH = 5000
TIME_COLUMNS = ("created_at", "finished_at")
"""Timestamps: ISO 8601 text in CSV and JSON Lines (``2025-01-31T09:30:00.123456``)."""


def _batches(store: Any, filters: Filters, *, convert: bool) -> Iterator[list[Sequence[Any]]]:
    """Result columns (in :data:`~kdreg.store.queries.FLAT_COLUMNS` order), ``BATCH`` rows at a time.

    ``convert``: as :meth:`~kdreg.store.reading.Rows.column_batches` (False keeps SQLite's text
    timestamps and 0/1 booleans for pyarrow to convert a column at a time).
    """
    from kdreg.store.queries import read_connection, select_flat

    with read_connection(store) as conn:
        yield from conn.execute(select_flat(filters)).column_batches(BATCH, convert=convert)


def _iso(columns: list[Sequence[Any]], names: Sequence[str]) -> list[Sequence[Any]]:
    """The timestamps of a batch's columns as ISO text, one pass per column."""
    for i, name in enumerate(names):
        if name in TIME_COLUMNS:
            columns[i] = [None if v is None else v.isoformat() for v in columns[i]]
    return columns


def _write_text(batches: Iterator[list[Sequence[Any]]], fmt: str, handle: IO[str]) -> int:
    from kdreg.store.queries import FLAT_COLUMNS

    names = list(FLAT_COLUMNS)
    count = 0
    if fmt == "csv":
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(names)
        for columns in batches:
            writer.writerows(zip(*_iso(columns, names), strict=True))  # None is written as ""
            count += len(columns[0])
    else:
        encode = json.JSONEncoder(ensure_ascii=False).encode
        for columns in batches:
            handle.writelines(encode(dict(zip(names, row, strict=True))) + "\n"
                              for row in zip(*_iso(columns, names), strict=True))
            count += len(columns[0])
    return count


def _arrow_column(values: Sequence[Any], kind: Any) -> Any:
    """One column as a pyarrow array of ``kind``: a column of SQLite's stored text or 0/1 is
    converted by pyarrow in one call; datetimes and booleans (PostgreSQL's) directly."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_timestamp(kind) or pa.types.is_boolean(kind):
        first = next((v for v in values if v is not None), None)
        if isinstance(first, str):
            return pc.cast(pa.array(values, pa.string()), kind)
        if isinstance(first, int) and not isinstance(first, bool):
            return pc.cast(pa.array(values, pa.int64()), kind)
    return pa.array(values, type=kind)


def _write_parquet(batches: Iterator[list[Sequence[Any]]], handle: IO[bytes]) -> int:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise KdregError(
            "Parquet export needs pyarrow: pip install 'kdreg[export]' (or use --format csv)."
        ) from None
    from kdreg.store.queries import FLAT_COLUMNS

    text, integer = pa.string(), pa.int64()
    types = {
        "run_id": integer,
        "seed": integer,
        "value": pa.float64(),
        "is_source": pa.bool_(),
        "created_at": pa.timestamp("us"),
        "finished_at": pa.timestamp("us"),
    }
    schema = pa.schema([(name, types.get(name, text)) for name in FLAT_COLUMNS])
    count = 0
    with pq.ParquetWriter(handle, schema) as writer:
        for columns in batches:
            arrays = [_arrow_column(values, field.type)
                      for values, field in zip(columns, schema, strict=True)]
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
            count += len(columns[0])
    return count


def write_export(store: Any, filters: Filters, fmt: str, out: Path | None) -> int:
    """Write the flat rows of ``filters`` as ``fmt`` to ``out`` (stdout when None); returns the row count."""
    batches = _batches(store, filters, convert=fmt != "parquet")
    if out is None:
        if fmt == "parquet":
            raise ConfigError("Parquet is binary; give a file with --out results.parquet.")
        return _write_text(batches, fmt, sys.stdout)
    from kdreg.reporting.output_files import database_files, write_file

    def write(handle: IO[bytes]) -> int:
        if fmt == "parquet":
            return _write_parquet(batches, handle)
        text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
        try:
            return _write_text(batches, fmt, text)
        finally:
            text.detach()  # flushes; the handle stays open for write_file to close

    count = write_file(out, write, protect=database_files(store))
    return count
