"""Flat export: one row per result with its run's columns, streamed to CSV, JSON Lines or Parquet.

Rows come from the database in batches (the driver's cursor), so memory stays flat however
large the store, and each batch is written in bulk: turned into columns (timestamps
formatted one column at a time), then handed to ``csv.writer.writerows`` or to pyarrow
as whole columns, rather than a Python call per cell (``bench/query_report.py`` times it
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


def _batches(store: Any, filters: Filters) -> Iterator[list[Sequence[Any]]]:
    """Result rows (tuples in :data:`~kdreg.store.queries.FLAT_COLUMNS` order), ``BATCH`` at a time."""
    from kdreg.store.queries import read_connection, select_flat

    with read_connection(store) as conn:
        yield from conn.execute(select_flat(filters)).partitions(BATCH)


def _columns(batch: list[Sequence[Any]], names: Sequence[str]) -> list[Sequence[Any]]:
    """A batch turned into columns, timestamps as ISO text: one pass per column, not a call per cell."""
    columns: list[Sequence[Any]] = list(zip(*batch, strict=True))
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
        for batch in batches:
            writer.writerows(zip(*_columns(batch, names), strict=True))  # None is written as ""
            count += len(batch)
    else:
        encode = json.JSONEncoder(ensure_ascii=False).encode
        for batch in batches:
            handle.writelines(encode(dict(zip(names, row, strict=True))) + "\n"
                              for row in zip(*_columns(batch, names), strict=True))
            count += len(batch)
    return count


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
        for batch in batches:
            columns = zip(*batch, strict=True)  # pyarrow converts each column in one call
            arrays = [pa.array(values, type=field.type)
                      for values, field in zip(columns, schema, strict=True)]
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
            count += len(batch)
    return count


def write_export(store: Any, filters: Filters, fmt: str, out: Path | None) -> int:
    """Write the flat rows of ``filters`` as ``fmt`` to ``out`` (stdout when None); returns the row count."""
    batches = _batches(store, filters)
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
