"""Pretrain the default synthetic teachers into the package: ``python -m kdreg_plugins.synthetic.ship``.

The default study's teachers (:data:`~kdreg_plugins.synthetic.teacher.SIZES`) ship
pretrained so that a first ``kdreg run`` does not spend minutes pretraining them. This
script makes them with the very code a user's machine would run on first use
(``SyntheticTeacher._pretrain_into``), into ``plugins/synthetic/pretrained/<key>/``, and
removes folders of teachers that are no longer defaults (an older key). Run it after a
change to the world, the tokenizer, the pretraining or the sizes (which changes the
keys: ``tests/plugins/test_synthetic_shipped.py`` fails until it is run), then commit
the folders. CPU pretraining is seeded; on another machine the weights may differ in
the last bits (floating-point order), not in what the teacher learned.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from kdreg_plugins.synthetic.teacher import COMPLETE, SHIPPED, SIZES, SyntheticTeacher, TeacherParams


def default_teachers() -> dict[str, SyntheticTeacher]:
    """Size → the default teacher of that size (every other parameter at its default)."""
    return {size: SyntheticTeacher(TeacherParams(size=size)) for size in SIZES}  # type: ignore[arg-type]


def ship(force: bool = False, target: Path = SHIPPED) -> list[Path]:
    """Pretrain each default teacher into ``target`` (unless there already); returns the folders."""
    target.mkdir(parents=True, exist_ok=True)
    folders = []
    for size, teacher in default_teachers().items():
        folder = target / teacher.cache_key()
        folders.append(folder)
        if (folder / COMPLETE).exists() and not force:
            print(f"{size}: {folder.name} is there already")
            continue
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=target))
        try:
            teacher._pretrain_into(staging)
            if folder.exists():
                shutil.rmtree(folder)
            staging.rename(folder)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        print(f"{size}: pretrained into {folder}")
    for stale in target.iterdir():
        if stale.is_dir() and stale not in folders:
            shutil.rmtree(stale)
            print(f"removed {stale.name} (no longer a default teacher)")
    return folders


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--force", action="store_true", help="pretrain again even when a folder is there")
    args = parser.parse_args()
    ship(force=args.force)


if __name__ == "__main__":
    main()
