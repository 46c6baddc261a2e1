"""The wheel ships every package of the tree: the core, the built-ins, the migrations, the templates."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RENAMED = {"plugins": "kdreg_plugins", "migrations": "kdreg_migrations"}


def _tree_packages() -> set[str]:
    found = set()
    for folder in ("kdreg", "plugins", "migrations"):
        for init in (ROOT / folder).rglob("__init__.py"):
            parts = list(init.parent.relative_to(ROOT).parts)
            parts[0] = RENAMED.get(parts[0], parts[0])
            found.add(".".join(parts))
    return found


@pytest.mark.slow
def test_wheel_contains_every_package_and_data_file(tmp_path: Path) -> None:
    # Built from a copy: building in the checkout rewrites its kdreg.egg-info, which Python run
    # from the checkout reads as kdreg's metadata (entry points) while other tests run.
    source = shutil.copytree(ROOT, tmp_path / "src", ignore=shutil.ignore_patterns(
        ".git", "build", "dist", "*.egg-info", "__pycache__", ".*_cache"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(source)],
        check=True, capture_output=True, text=True, timeout=300,
    )
    wheel = next(tmp_path.glob("kdreg-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    shipped = {n.rsplit("/", 1)[0].replace("/", ".") for n in names if n.endswith("/__init__.py")}
    assert _tree_packages() <= shipped, sorted(_tree_packages() - shipped)
    assert "kdreg/default_grid.toml" in names
    assert any(n.startswith("kdreg_migrations/versions/0001") for n in names)
    assert any(n.startswith("kdreg/cli/templates/") for n in names)
    for folder in (p for p in (ROOT / "plugins" / "synthetic" / "pretrained").iterdir() if p.is_dir()):
        for file in folder.iterdir():  # the shipped synthetic teachers, every file of each
            assert f"kdreg_plugins/synthetic/pretrained/{folder.name}/{file.name}" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    for group in ("kdreg.teachers", "kdreg.students", "kdreg.losses", "kdreg.benchmarks", "kdreg.corpora"):
        assert f"[{group}]" in text
