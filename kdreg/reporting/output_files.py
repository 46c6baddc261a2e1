"""Writing report and export files without ever harming what is already there.

Two ways an output path can destroy data: it names the database being read (an export
written over ``kdreg.db`` replaces every run with CSV), or it is interrupted halfway and
leaves a truncated file under the name asked for. So a file is written beside its target
and renamed into place at the end, and a target that is the database (or its WAL and
journal files) is refused before anything is written. A target that exists but is not a
regular file (``/dev/stdout``, a named pipe, a device) is written to directly: renaming
over it would replace the device with a file.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from kdreg.errors import ConfigError

T = TypeVar("T")
SQLITE_COMPANIONS = ("", "-wal", "-shm", "-journal")


def database_files(store: Any) -> list[Path]:
    """The files of the store's (or reader's) SQLite database; none for a server database."""
    from kdreg.store.engine import sqlite_path

    url = store.engine.url
    path = sqlite_path(url)
    database = url.database or ""
    if path is None and url.get_backend_name() == "sqlite" and database.startswith("file:"):
        path = Path(database[len("file:"):].split("?", 1)[0])  # URI form: file:/path/kdreg.db?mode=ro
    return [] if path is None else [Path(f"{path}{suffix}") for suffix in SQLITE_COMPANIONS]


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and a.samefile(b))
    except OSError:
        return False


def check_target(out: Path, protect: Iterable[Path] = ()) -> None:
    """Refuse a target that has no file name, is a folder, or is one of the ``protect`` files."""
    if not out.name or out.name in (".", ".."):
        raise ConfigError(f"The output path {str(out)!r} names no file; give one, e.g. results.csv.")
    for guarded in protect:
        if _same_file(out, guarded):
            raise ConfigError(
                f"Refusing to write {out}: it is the database being read ({guarded}); choose another file."
            )
    if out.is_dir():
        raise ConfigError(f"{out} is a folder; give a file name inside it, e.g. {out / 'results.csv'}.")


def write_file(out: Path, write: Callable[[Path], T], *, protect: Iterable[Path] = ()) -> T:
    """Call ``write(path)`` so that ``out`` ends up complete or untouched; returns what it returns."""
    check_target(out, protect)
    if out.exists() and not out.is_file():  # /dev/stdout, a pipe, a device: write through
        try:
            return write(out)
        except OSError as exc:
            raise ConfigError(f"Cannot write {out}: {exc.strerror or exc}.") from None
    partial = out.with_name(out.name + ".partial")
    try:
        result = write(partial)
        os.replace(partial, out)
    except OSError as exc:
        raise ConfigError(f"Cannot write {out}: {exc.strerror or exc}.") from None
    finally:
        with contextlib.suppress(OSError):  # e.g. the parent is not a folder: nothing was made
            partial.unlink(missing_ok=True)
    return result
