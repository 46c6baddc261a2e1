"""docs/cluster.md as written, run against the local Slurm and Ray clusters and this machine.

The study file of the page is used with its plugins and sizes swapped for the tiny world
(the teacher, student, loss, benchmark and corpus lines, one seed, a few training steps;
the partition, GPUs and memory of the executor line for what the test cluster has): every
``kdreg`` command of each section then runs as written, in order, and the runs end with
exactly the numbers ``inline`` gives the same study.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tiny_world import GRID, rows

DOC = Path(__file__).resolve().parents[2] / "docs" / "cluster.md"
SECTIONS = {"slurm": "## The seed study on Slurm", "ray": "## The same with Ray",
            "local": "## One machine with several GPUs"}
SITE = {"partition=gpu": "partition=debug", "gpus_per_task=1": "gpus_per_task=0", "mem_gb=32": "mem_gb=1",
        "cpus_per_task=8": "cpus_per_task=1", "num_cpus=8": "num_cpus=1",
        "num_gpus=1": "num_gpus=0,cluster_cpus=2", "workers=4,gpus=0+1+2+3": "workers=2,gpus=none"}
"""What the test machine has instead of the page's GPUs, partition and memory."""

# One worker runs every cluster test (with `pytest -n`): they start engines that claim the
# machine's cores, and the Ray tests count Ray's worker processes machine-wide.
pytestmark = pytest.mark.xdist_group("cluster")


def _study(world: dict[str, str]) -> str:
    text = DOC.read_text(encoding="utf-8")
    study = re.search(r"```toml\n# study.toml\n(.*?)```", text, flags=re.S)
    assert study, "docs/cluster.md lost its study.toml"
    lines = []
    for line in study.group(1).splitlines():
        key = line.split("=", 1)[0].strip()
        swapped = {"teacher": f'teacher = "{world["teacher"]}"', "student": 'student = ["layers:k=1"]',
                   "loss": 'loss = "kl:temperature=2,alpha=0.5"',
                   "benchmark": f'benchmark = "{world["benchmark"]}"',
                   "corpus": f'corpus = "{world["corpus"]}"', "seed": "seed = [0]"}.get(key)
        if key == "executor":
            for page, here in SITE.items():
                line = line.replace(page, here)
        lines.append(swapped or line)
    return "\n".join(lines) + "\n" + GRID


def _commands(section: str) -> list[list[str]]:
    text = DOC.read_text(encoding="utf-8")
    start = text.index(SECTIONS[section])
    following = [text.index(h, start + 1) for h in SECTIONS.values() if text.find(h, start + 1) > 0]
    body = text[start : min(following, default=len(text))]
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", body, flags=re.S):
        for line in block.strip().splitlines():
            for page, here in SITE.items():
                line = line.replace(page, here)
            commands.append(shlex.split(line))
    assert commands and all(c[0] == "kdreg" for c in commands)
    return commands


def _kdreg(argv: list[str], cwd: Path, db: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KDREG_DB": str(db), "COLUMNS": "200", "RAY_ADDRESS": ""}
    return subprocess.run([sys.executable, "-m", "kdreg", *argv[1:]], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env=env)


def _numbers(db: Path) -> dict[str, list[tuple[object, ...]]]:
    out: dict[str, list[tuple[object, ...]]] = {}
    for key, *row in rows(db, "SELECT u.config_hash, r.language, r.split, r.metric, r.value FROM results r "
                              "JOIN runs u ON u.id = r.run_id ORDER BY 1, 2, 3, 4"):
        out.setdefault(key, []).append(tuple(row))
    for key, *row in rows(db, "SELECT u.config_hash, c.phase, c.losses FROM curves c "
                              "JOIN runs u ON u.id = c.run_id ORDER BY 1, 2"):
        out.setdefault(key, []).append(tuple(row))
    return out


@pytest.fixture(scope="module")
def study(world: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The page's study for the tiny world, and its numbers from ``--executor inline``."""
    folder = tmp_path_factory.mktemp("study")
    (folder / "study.toml").write_text(_study(world), encoding="utf-8")
    inline = folder / "inline.db"
    done = _kdreg(["kdreg", "run", "--config", "study.toml", "--executor", "inline"], folder, inline)
    assert done.returncode == 0, done.stderr
    return folder, inline


def _section(name: str, study: tuple[Path, Path], kdreg_home: Path) -> tuple[Path, list[str]]:
    folder = study[0]
    db = kdreg_home / f"{name}.db"
    outputs = []
    for argv in _commands(name):
        done = _kdreg(argv, folder, db)
        assert done.returncode == 0, (argv, done.stderr)
        outputs.append(done.stdout + done.stderr)
    return db, outputs


def test_the_slurm_section(slurm, study: tuple[Path, Path], kdreg_home: Path) -> None:  # type: ignore[no-untyped-def]
    db, outputs = _section("slurm", study, kdreg_home)
    assert "models to build" in outputs[0] and "5 to run" in outputs[0]
    assert "7 task(s) submitted" in outputs[1]  # returned once submitted: 2 models, 5 runs
    assert any("_" in job for (job,) in rows(db, "SELECT external_id FROM tasks"))  # job arrays
    deadline = time.monotonic() + 300
    status = ["kdreg", "status", "--json"]
    while json.loads(_kdreg(status, study[0], db).stdout)["runs"].get("succeeded") != 5:
        assert time.monotonic() < deadline, "the grid never finished"
        time.sleep(2)
    assert _numbers(db) == _numbers(study[1])


def test_the_ray_section(study: tuple[Path, Path], kdreg_home: Path) -> None:
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'kdreg[ray]')")
    db, _ = _section("ray", study, kdreg_home)
    assert _numbers(db) == _numbers(study[1])


def test_the_local_section(study: tuple[Path, Path], kdreg_home: Path) -> None:
    db, outputs = _section("local", study, kdreg_home)
    assert "local: 2 workers" in outputs[0]
    assert _numbers(db) == _numbers(study[1])
