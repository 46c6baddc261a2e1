"""Writing report and export files without ever harming what is already there.

Ways an output path can destroy data, and what is done about each:

* it names the database being read (an export written over ``kdreg.db`` replaces every
  run with CSV) or a file kdreg keeps beside it (the migration lock, SQLite's ``-wal`` and
  ``-shm``, the backups made before upgrades): refused before anything is written;
* it is interrupted halfway and leaves a truncated file under the name asked for: the
  file is written beside its target and renamed into place at the end;
* somebody with write access to the folder (a shared project folder) plants a symbolic
  link where kdreg writes, so that your export overwrites a file of theirs choosing: the
  temporary file is created exclusively (``O_CREAT | O_EXCL | O_NOFOLLOW``, a random name,
  never an existing file or link) and written through the descriptor that created it, and
  a target that is a symbolic link to a file (or to nothing) is refused.

A target that exists but is not a regular file (``/dev/stdout``, a named pipe, a device,
or a link to one) is written to directly: renaming over it would replace the device.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any, TypeVar

from kdreg.errors import ConfigError

T = TypeVar("T")
SQLITE_COMPANIONS = ("", "-wal", "-shm", "-journal")
"""The database file and the files SQLite keeps beside it."""
KDREG_COMPANIONS = (".lock",)
"""Files kdreg keeps beside an SQLite database (the creation/migration lock); backups are ``.bak-*``."""
_CREATE_FLAGS = (os.O_WRONLY | os.O_CREAT | os.O_EXCL
                 | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0))


def database_files(store: Any) -> list[Path]:
    """The files of the store's (or reader's) SQLite database and those kdreg keeps beside it.

    The database itself comes first; none for a server database.
    """
    path = getattr(store, "sqlite_file", None)  # a Reader knows its file
    if path is None and getattr(store, "engine", None) is not None:  # a Store
        from kdreg.store.engine import sqlite_file

        path = sqlite_file(store.engine.url)
    if path is None:
        return []
    files = [Path(f"{path}{suffix}") for suffix in (*SQLITE_COMPANIONS, *KDREG_COMPANIONS)]
    with contextlib.suppress(OSError):
        files += sorted(path.parent.glob(f"{_glob_escape(path.name)}.bak-*"))
    return files


def _glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and a.samefile(b))
    except OSError:
        return False


def _is_device(out: Path) -> bool:
    """Whether ``out`` exists (following links) and is not a regular file: a device, pipe or terminal."""
    try:
        mode = os.stat(out).st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def check_target(out: Path, protect: Iterable[Path] = ()) -> None:
    """Refuse a target that has no file name, is a folder, a link to a file, or one of ``protect``.

    ``protect`` is :func:`database_files`: its first entry is the database, the others are
    the files kept beside it.
    """
    if not out.name or out.name in (".", ".."):
        raise ConfigError(f"The output path {str(out)!r} names no file; give one, e.g. results.csv.")
    for index, guarded in enumerate(protect):
        if _same_file(out, guarded):
            what = ("the database being read" if index == 0
                    else "a file kdreg keeps beside the database being read (lock, journal or backup)")
            raise ConfigError(f"Refusing to write {out}: it is {what} ({guarded}); choose another file.")
    if out.is_symlink() and not _is_device(out):
        raise ConfigError(
            f"Refusing to write {out}: it is a symbolic link (to {os.readlink(out)}), and writing through "
            "it would replace a file chosen by whoever made the link; remove the link or name the file "
            "itself."
        )
    if out.is_dir():
        raise ConfigError(f"{out} is a folder; give a file name inside it, e.g. {out / 'results.csv'}.")


def _create_exclusively(out: Path) -> tuple[int, Path]:
    """A new file beside ``out`` that did not exist before (never a file or link planted there)."""
    for _ in range(100):
        partial = out.with_name(f"{out.name}.{secrets.token_hex(4)}.partial")
        try:
            return os.open(partial, _CREATE_FLAGS, 0o666), partial  # the umask applies, as to any new file
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {out}")


def write_file(out: Path, write: Callable[[IO[bytes]], T], *, protect: Iterable[Path] = ()) -> T:
    """Call ``write(handle)`` on a binary handle so that ``out`` ends up complete or untouched.

    Returns what ``write`` returns.
    """
    guarded = list(protect)
    check_target(out, guarded)
    if _is_device(out):  # /dev/stdout, a pipe, a device: write through
        try:
            with open(out, "wb") as handle:
                return write(handle)
        except OSError as exc:
            raise ConfigError(f"Cannot write {out}: {exc.strerror or exc}.") from None
    partial: Path | None = None
    try:
        descriptor, partial = _create_exclusively(out)
        with os.fdopen(descriptor, "wb") as handle:
            result = write(handle)
        os.replace(partial, out)  # a rename replaces a link itself, never its target
        partial = None
    except OSError as exc:
        raise ConfigError(f"Cannot write {out}: {exc.strerror or exc}.") from None
    finally:
        if partial is not None:
            with contextlib.suppress(OSError):
                partial.unlink()
    return result
