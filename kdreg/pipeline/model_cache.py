"""The intermediate-model cache: fine-tuned teachers and students distilled in pretraining.

Each model lives in ``<cache>/models/<kind>-<key>/`` where the key is the hash of the
config that made it (see :mod:`kdreg.grid`), so every run that needs the same model
shares it. A model is written to a temporary folder and renamed into place, so a crash
never leaves a half-written model. Within a grid, exactly one task builds each model
(:mod:`kdreg.execution.graph`), so nothing depends on file locks, which network file
systems do not always honour; the lock taken around building only keeps two *grids*
on one machine from training the same model twice.
``kdreg cache`` lists what each model is (from the ``kdreg-model.json`` written beside it:
teacher, student, loss, benchmark or corpus, seed, when it was made) with its size and when
a run last loaded it, and clears all of them or a selection.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from kdreg.errors import KdregError
from kdreg.paths import cache_dir

COMPLETE = "kdreg-complete"
"""Marker file written last: a folder without it is not a model (yet)."""

ABOUT = "kdreg-model.json"
"""What a cached model is (kind, plugins, seed, when made), written beside its weights."""

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
    mark_used(path)
    return path


def mark_used(folder: Path) -> None:
    """Record that a run loads this model now: the time of its marker file is its last use.

    A file's modification time changes atomically, so parallel workers need no lock; a
    read-only cache (shared, mounted) simply keeps its times.
    """
    with contextlib.suppress(OSError):
        os.utime(folder / COMPLETE)


def write_about(folder: Path, about: dict[str, Any]) -> None:
    """Write what the model in ``folder`` is (``kdreg cache`` shows it), with the time it was made."""
    record = {**about, "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    (folder / ABOUT).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")


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


@dataclass(frozen=True)
class CachedModel:
    """One cached model as ``kdreg cache`` lists it."""

    path: Path
    kind: str
    """'teacher' (a fine-tuned teacher), 'student-pretrained' (distilled in pretraining), or the
    folder of a plugin's own cache (e.g. 'synthetic': the pretrained synthetic teacher)."""
    size: int
    last_used: datetime
    """When a run last loaded it (for a plugin's own model: when it was written)."""
    about: dict[str, Any] = field(default_factory=dict)
    """What it is: teacher, student, loss, benchmark, corpus, seed, created (empty for models
    written before kdreg recorded it)."""

    @property
    def name(self) -> str:
        """How people name it: ``teacher-1a2b3c4d`` (the kind and its key's first 8 characters)."""
        if self.path.parent.name == models_dir().name and self.path.name.startswith(f"{self.kind}-"):
            return self.path.name[: len(self.kind) + 9]
        return f"{self.path.parent.name}/{self.path.name[:8]}"

    @property
    def description(self) -> str:
        """``teacher t fine-tuned on b, seed 0``; ``student s ← teacher t, loss kl, corpus c, seed 0``."""
        a = self.about
        if not a:
            return "(written before kdreg recorded what a model is)" if self.kind in ARTIFACT_KINDS else ""
        if self.kind == "teacher":
            text = f"teacher {a.get('teacher')} fine-tuned on {a.get('benchmark')}"
        elif self.kind == "student-pretrained":
            text = (f"student {a.get('student')} ← teacher {a.get('teacher')}, loss {a.get('loss')}, "
                    f"corpus {a.get('corpus')}")
        else:
            text = str(a.get("summary") or a.get("code") or "")  # a plugin's own marker says what it can
        return f"{text}, seed {a['seed']}" if a.get("seed") is not None else text


ARTIFACT_KINDS = ("teacher", "student-pretrained")
"""Kinds of the pipeline's own models (folders ``models/<kind>-<key>``)."""


def _kind(folder: Path) -> str:
    if folder.parent.name == models_dir().name:
        for kind in sorted(ARTIFACT_KINDS, key=len, reverse=True):
            if folder.name.startswith(f"{kind}-"):
                return kind
    return folder.parent.name


def read_about(folder: Path) -> dict[str, Any]:
    """What the model in ``folder`` is (its ``kdreg-model.json``); {} when it does not say."""
    for name in (ABOUT, COMPLETE + ".json"):  # a plugin's own models describe themselves in their marker
        try:
            data = json.loads((folder / name).read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            return data
    return {}


def _last_used(folder: Path) -> datetime:
    stamps = [p.stat().st_mtime for p in folder.glob(COMPLETE + "*") if p.is_file()]
    return datetime.fromtimestamp(max(stamps, default=folder.stat().st_mtime), timezone.utc)


def list_models() -> list[CachedModel]:
    """Every cached model with its kind, size, last use and description, most recently used first."""
    found = [CachedModel(p, _kind(p), folder_size(p), _last_used(p), read_about(p)) for p in cached_models()]
    return sorted(found, key=lambda m: m.last_used, reverse=True)


def clear(folders: Iterable[Path] | None = None) -> int:
    """Delete cached models (``folders``, default every one) and nothing else; returns bytes freed.

    Models are re-created on demand. A model's lock file goes with it, so do the (empty)
    lock files a failed attempt left in ``models/``, and a group folder (``models/``,
    ``synthetic/``) left empty is removed.
    """
    freed = 0
    groups = {models_dir()}
    known = cached_models()
    chosen = known if folders is None else [f for f in folders if f in known]  # never anything else
    for folder in chosen:
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
