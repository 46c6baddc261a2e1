"""Flat export: one row per result with its run's columns, streamed to CSV, JSON Lines or Parquet.

Rows come from the database in batches (``yield_per``), so memory stays flat however
large the store. Files are written through :mod:`kdreg.reporting.output_files`: never
over the database being read, never left truncated under the requested name. Parquet
needs pyarrow (``pip install 'kdreg[export]'``), imported only here.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from kdreg.errors import ConfigError, KdregError
from kdreg.store.filters import Filters

BATCH = 5000


def _batches(store: Any, filters: Filters) -> Iterator[list[dict[str, Any]]]:
    from kdreg.store.queries import read_connection, select_flat

    with read_connection(store) as conn:
        result = conn.execution_options(yield_per=BATCH).execute(select_flat(filters))
        for part in result.mappings().partitions(BATCH):
            yield [dict(row) for row in part]


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _write_text(batches: Iterator[list[dict[str, Any]]], fmt: str, handle: IO[str]) -> int:
    from kdreg.store.queries import FLAT_COLUMNS

    count = 0
    if fmt == "csv":
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(FLAT_COLUMNS)
        for batch in batches:
            writer.writerows([["" if r[c] is None else _plain(r[c]) for c in FLAT_COLUMNS] for r in batch])
            count += len(batch)
    else:
        for batch in batches:
            handle.writelines(
                json.dumps({c: _plain(r[c]) for c in FLAT_COLUMNS}, ensure_ascii=False) + "\n" for r in batch
            )
            count += len(batch)
    return count


def _write_parquet(batches: Iterator[list[dict[str, Any]]], handle: IO[bytes]) -> int:
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
            columns = {name: [r[name] for r in batch] for name in FLAT_COLUMNS}
            writer.write_table(pa.Table.from_pydict(columns, schema=schema))
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
