"""The intermediate-model cache: fine-tuned teachers and students distilled in pretraining.

Each model lives in ``<cache>/models/<kind>-<key>/`` where the key is the hash of the
config that made it (see :mod:`kdreg.grid`), so every run that needs the same model
shares it. A model is written to a temporary folder and renamed into place, so a crash
never leaves a half-written model. Within a grid, exactly one task builds each model
(:mod:`kdreg.execution.graph`), so nothing depends on file locks, which network file
systems do not always honour; the lock taken around building only keeps two *grids*
on one machine from training the same model twice.
``kdreg cache`` shows the size and clears it.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kdreg.errors import KdregError
from kdreg.paths import cache_dir

COMPLETE = "kdreg-complete"
"""Marker file written last: a folder without it is not a model (yet)."""

Log = Callable[[str], None]


class MissingArtifactError(KdregError):
    """A model a run needs is not in the cache (its task failed, or the cache was cleared meanwhile)."""


def models_dir() -> Path:
    """Where intermediate models are kept."""
    return cache_dir() / "models"


def model_path(kind: str, key: str) -> Path:
    """Folder of one cached model (it may not exist yet)."""
    return models_dir() / f"{kind}-{key[:24]}"


def is_complete(kind: str, key: str) -> bool:
    """Whether the model (kind, key) is in the cache, finished."""
    return (model_path(kind, key) / COMPLETE).exists()


def require(kind: str, key: str) -> Path:
    """The folder of a finished cached model; MissingArtifactError when there is none."""
    path = model_path(kind, key)
    if not (path / COMPLETE).exists():
        raise MissingArtifactError(
            f"The {kind} model {path.name} is not in the model cache ({models_dir()}); run the grid again "
            "to build it."
        )
    return path


def get_or_create(kind: str, key: str, create: Callable[[Path], None]) -> tuple[Path, bool]:
    """The cached model folder for (kind, key), calling ``create(tmp_folder)`` if it is missing.

    Returns the folder and whether it was created now.
    """
    from filelock import FileLock

    target = model_path(kind, key)
    if (target / COMPLETE).exists():
        return target, False
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock", timeout=-1):
        if (target / COMPLETE).exists():
            return target, False
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
        try:
            create(tmp)
            (tmp / COMPLETE).write_text(key + "\n")
            if (target / COMPLETE).exists():  # another machine finished it meanwhile (no shared lock)
                shutil.rmtree(tmp, ignore_errors=True)
                return target, False
            if target.exists():  # an incomplete leftover from a crash
                shutil.rmtree(target)
            tmp.rename(target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return target, True


def save_model(folder: Path, model: Any, tokenizer: Any) -> None:
    """Save weights (safetensors) and tokenizer with transformers' own format."""
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)


def folder_size(path: Path) -> int:
    """Bytes used under ``path``."""
    if not path.is_dir():
        return 0
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def is_kdreg_model(folder: Path) -> bool:
    """Whether ``folder`` is a finished model kdreg wrote: it holds a ``kdreg-complete*`` marker.

    The pipeline writes ``kdreg-complete``; plugins caching their own models (the
    synthetic teacher) write ``kdreg-complete.json``. Only such folders are listed and
    cleared, so a cache folder shared with other files (``KDREG_CACHE`` pointing at a
    folder that also holds the database, or at a home directory) loses nothing else.
    """
    return folder.is_dir() and any(folder.glob(COMPLETE + "*"))


def cached_models() -> list[Path]:
    """Every cached model folder: the pipeline's (``models/``) and plugins' own (e.g. ``synthetic/``)."""
    root = cache_dir()
    if not root.is_dir():
        return []
    found = []
    for group in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        try:
            entries = sorted(group.iterdir())
        except OSError:  # a folder kdreg may not read is not kdreg's
            continue
        found.extend(p for p in entries if not p.name.startswith(".") and is_kdreg_model(p))
    return found


def clear() -> int:
    """Delete every cached model (re-created on demand) and nothing else; returns bytes freed.

    A model's lock file goes with it, so do the (empty) lock files a failed attempt left
    in ``models/``, and a group folder (``models/``, ``synthetic/``) left empty is removed.
    """
    freed = 0
    groups = {models_dir()}
    for folder in cached_models():
        freed += folder_size(folder)
        shutil.rmtree(folder)
        Path(str(folder) + ".lock").unlink(missing_ok=True)
        groups.add(folder.parent)
    if models_dir().is_dir():
        for lock in models_dir().glob("*.lock"):
            if lock.is_file() and lock.stat().st_size == 0 and not lock.with_suffix("").exists():
                lock.unlink()
    for group in groups:
        try:
            group.rmdir()  # only succeeds when empty
        except OSError:
            pass
    return freed
