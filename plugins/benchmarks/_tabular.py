"""Labelled data in plain files: one folder per language, one file per split.

Layout (the one SIB-200 ships in, and the one the ``files`` benchmark reads)::

    <root>/<language>/train.tsv   dev.tsv (or validation.tsv)   test.tsv

Files are TSV (no quoting at all: texts keep their quote characters, as SIB-200
needs), CSV (standard quoting) or JSON Lines, chosen by extension. Every problem a
person can make in such files is a one-line DataError naming the file (and line)
and the fix: a missing split, an empty file, bytes that are not UTF-8, a missing
column, a ragged row, a label the source language does not have.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from kdreg.errors import DataError

FORMATS: dict[str, str] = {".tsv": "tsv", ".csv": "csv", ".jsonl": "jsonl"}
SPLIT_FILES: dict[str, tuple[str, ...]] = {
    "train": ("train",),
    "validation": ("dev", "validation", "valid"),
    "test": ("test",),
}
"""kdreg's split → the file stems that may hold it, in order of preference."""


@dataclass(frozen=True)
class Columns:
    """Which columns hold the text, the optional second text and the label."""

    text: str
    label: str
    text_pair: str | None = None
    plugin: str = "files"
    """Plugin name, for the advice in error messages (``files:label_column=...``)."""


@dataclass(frozen=True)
class Row:
    """One row as read: texts and the label as written, with its line for error messages."""

    text: str
    label: str
    text_pair: str | None
    line: int


def find_languages(root: Path, plugin: str) -> list[str]:
    """Sub-folders of ``root`` that hold at least one split file, sorted."""
    if not root.is_dir():
        raise DataError(
            f"{plugin}: {root} is not a folder; pass {plugin}:path=<folder with one sub-folder per language>."
        )
    found = sorted(
        d.name
        for d in root.iterdir()
        if d.is_dir() and not d.name.startswith(".") and any(_split_candidates(d))
    )
    if not found:
        raise DataError(
            f"{plugin}: {root} has no language folders with split files "
            f"(e.g. {root}/en/train.tsv, dev.tsv, test.tsv)."
        )
    return found


def _split_candidates(folder: Path) -> Iterable[Path]:
    for stems in SPLIT_FILES.values():
        for stem in stems:
            for ext in FORMATS:
                candidate = folder / f"{stem}{ext}"
                if candidate.is_file():
                    yield candidate


def split_file(root: Path, language: str, split: str, plugin: str) -> Path:
    """The file holding ``split`` of ``language``; a DataError listing what is there when missing."""
    folder = root / language
    for stem in SPLIT_FILES[split]:
        for ext in FORMATS:
            candidate = folder / f"{stem}{ext}"
            if candidate.is_file():
                return candidate
    # a folder named like a split file is shown as one ("test.tsv/"), so the message explains itself
    entries = sorted(folder.iterdir()) if folder.is_dir() else []
    present = [p.name + ("/" if p.is_dir() else "") for p in entries]
    expected = " or ".join(f"{stem}.tsv/.csv/.jsonl" for stem in SPLIT_FILES[split])
    raise DataError(
        f"{plugin}: missing {split} split file in {folder}: expected {expected} "
        f"(found: {', '.join(present) or 'nothing'})."
    )


def read_text(path: Path) -> str:
    """The file's text as UTF-8 (a BOM is allowed); empty or undecodable files are DataErrors."""
    data = path.read_bytes()
    if not data.strip():
        raise DataError(f"{path}: the file is empty; it needs a header line and at least one row.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DataError(
            f"{path}: line {line} is not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "re-save the file as UTF-8."
        ) from None


def read_rows(path: Path, columns: Columns) -> list[Row]:
    """Every row of one split file."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DataError(f"{path}: unknown file type; use .tsv, .csv or .jsonl.")
    text = read_text(path)
    rows = _read_jsonl(path, text, columns) if fmt == "jsonl" else _read_delimited(path, text, columns, fmt)
    if not rows:
        raise DataError(f"{path}: has a header but no rows.")
    return rows


def _read_delimited(path: Path, text: str, columns: Columns, fmt: str) -> list[Row]:
    # Only \n / \r\n end a row: str.splitlines() would also split texts at U+2028, U+0085, ...
    lines = io.StringIO(text, newline="")
    if fmt == "tsv":
        reader = csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE)
    else:
        reader = csv.reader(lines)
    try:
        header = [name.strip() for name in next(reader)]
    except StopIteration:  # only blank lines
        raise DataError(f"{path}: the file is empty; it needs a header line and at least one row.") from None
    wanted = [c for c in (columns.text, columns.text_pair, columns.label) if c]
    for name in wanted:
        if name not in header:
            raise DataError(_missing_column(path, name, header, columns))
    position = {name: header.index(name) for name in wanted}
    rows: list[Row] = []
    try:
        for fields in reader:
            line = reader.line_num
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                continue
            if len(fields) != len(header):
                raise DataError(
                    f"{path}, line {line}: {len(fields)} fields where the header has {len(header)}"
                    + (" (a tab inside a text?)" if fmt == "tsv" else "")
                    + "."
                )
            rows.append(_row(path, line, {name: fields[i] for name, i in position.items()}, columns))
    except csv.Error as exc:
        raise DataError(f"{path}, line {reader.line_num}: malformed {fmt.upper()}: {exc}.") from None
    return rows


def _read_jsonl(path: Path, text: str, columns: Columns) -> list[Row]:
    rows: list[Row] = []
    for line_number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}, line {line_number}: not a JSON object ({exc.msg}).") from None
        if not isinstance(record, dict):
            raise DataError(
                f"{path}, line {line_number}: expected a JSON object, got {type(record).__name__}."
            )
        for name in (columns.text, columns.text_pair, columns.label):
            if name and name not in record:
                raise DataError(_missing_column(path, name, list(record), columns, line_number))
        values = {name: record[name] for name in (columns.text, columns.text_pair, columns.label) if name}
        rows.append(_row(path, line_number, values, columns))
    return rows


def _row(path: Path, line: int, values: dict[str, object], columns: Columns) -> Row:
    label = values[columns.label]
    if label is None or (isinstance(label, str) and not label.strip()):
        raise DataError(f"{path}, line {line}: empty label in column {columns.label!r}.")
    text = values[columns.text]
    pair = values.get(columns.text_pair) if columns.text_pair else None
    if not isinstance(text, str) or (columns.text_pair and not isinstance(pair, str)):
        raise DataError(f"{path}, line {line}: the text columns must hold strings.")
    return Row(text=text, label=str(label).strip(), text_pair=pair if columns.text_pair else None, line=line)


def _missing_column(
    path: Path, name: str, present: Sequence[str], columns: Columns, line: int | None = None
) -> str:
    role = {columns.text: "text_column", columns.label: "label_column"}.get(name, "text_pair_column")
    where = f"{path}, line {line}" if line else str(path)
    return (
        f"{where}: no column {name!r} (columns: {', '.join(present) or 'none'}); "
        f"set {columns.plugin}:{role}=<one of them>."
    )


def read_label_file(path: Path) -> tuple[str, ...]:
    """Label names from a ``labels.txt`` (one per line), in that order."""
    names = tuple(dict.fromkeys(line.strip() for line in read_text(path).splitlines() if line.strip()))
    if not names:
        raise DataError(f"{path}: the file is empty; list one label per line.")
    return names


def infer_labels(rows: Sequence[Row]) -> tuple[str, ...]:
    """The sorted label set of some rows (numerically when every label is an integer)."""
    names = {row.label for row in rows}
    if all(_is_int(name) for name in names):
        return tuple(sorted(names, key=int))
    return tuple(sorted(names))


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def label_index(rows: Sequence[Row], labels: Sequence[str], path: Path, source: str) -> list[int]:
    """Each row's label as an index into ``labels``; a label outside them is a DataError naming the line."""
    index = {name: i for i, name in enumerate(labels)}
    out: list[int] = []
    for row in rows:
        if row.label not in index:
            raise DataError(
                f"{path}, line {row.line}: unknown label {row.label[:60]!r}, not among the labels of the "
                f"source language {source!r} ({', '.join(labels)})."
            )
        out.append(index[row.label])
    return out
