"""The git commit a run records is read without running anything the checkout's git config names.

Each test plants, in a real git checkout, configuration that would run a command creating a
marker file: ``core.fsmonitor`` (run by every ``git status``), a process and a clean filter
switched on by ``.gitattributes``, a ``post-index-change`` hook, and an ``include.path`` that
pulls in one more fsmonitor. Recording the commit must create no marker and must still tell
the right commit and dirty flag.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
from tiny_world import invoke

from kdreg.pipeline.git_checkout import git_state

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def git(repo: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull)
    done = subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t.invalid", *args], cwd=repo,
                          env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def plant(repo: Path, markers: Path) -> None:
    """Configuration that runs a command making a file in ``markers`` whenever git obeys it."""
    def command(name: str) -> str:
        return f"touch {markers / name}; cat"

    (repo / ".gitattributes").write_text("*.txt filter=evil\n")
    config = repo / ".git" / "config"
    with config.open("a") as handle:
        handle.write(
            f"[core]\n\tfsmonitor = \"{command('fsmonitor')}\"\n\tpager = \"{command('pager')}\"\n"
            f"[filter \"evil\"]\n\tclean = \"{command('clean')}\"\n\tprocess = \"{command('process')}\"\n"
            f"\tsmudge = \"{command('smudge')}\"\n"
            f"[include]\n\tpath = {repo.parent / 'more.gitconfig'}\n"
        )
    (repo.parent / "more.gitconfig").write_text(f"[core]\n\tfsmonitor = \"{command('included')}\"\n")
    hook = repo / ".git" / "hooks" / "post-index-change"
    hook.parent.mkdir(exist_ok=True)
    hook.write_text(f"#!/bin/sh\ntouch {markers / 'hook'}\n")
    hook.chmod(0o755)


@pytest.fixture()
def checkout(tmp_path: Path) -> tuple[Path, Path, str]:
    """A checkout with one commit and planted configuration; (repo, markers folder, commit)."""
    repo, markers = tmp_path / "repo", tmp_path / "markers"
    repo.mkdir()
    markers.mkdir()
    git(repo, "init", "-q")
    (repo / "notes.txt").write_text("hello\n")
    (repo / "other.md").write_text("# other\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "first")
    commit = git(repo, "rev-parse", "HEAD")
    plant(repo, markers)
    return repo, markers, commit


def touch_later(path: Path) -> None:
    """Change the file's time (not its content): git must then re-read it, which runs filters."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns + 5_000_000_000, stat.st_mtime_ns + 5_000_000_000))


def test_planted_git_configuration_runs_nothing(checkout: tuple[Path, Path, str]) -> None:
    repo, markers, commit = checkout
    # The planted configuration is live: plain `git status` obeys it.
    probe = subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True,
                           env={**os.environ, "GIT_CONFIG_GLOBAL": os.devnull})
    assert probe.returncode in (0, 128) and (markers / "included").exists()
    for marker in markers.iterdir():
        marker.unlink()

    index = (repo / ".git" / "index").read_bytes()
    touch_later(repo / "notes.txt")
    assert git_state(repo) == {"commit": commit, "dirty": False}
    (repo / "notes.txt").write_text("changed\n")
    assert git_state(repo / "sub-folder-that-need-not-exist") == {"commit": commit, "dirty": True}
    assert sorted(p.name for p in markers.iterdir()) == []
    assert (repo / ".git" / "index").read_bytes() == index  # the checkout was only read


def test_staged_files_packed_refs_and_linked_worktrees(
    checkout: tuple[Path, Path, str], tmp_path: Path
) -> None:
    repo, markers, commit = checkout
    git(repo, "-c", "core.fsmonitor=false", "-c", "core.hooksPath=/dev/null", "pack-refs", "--all")
    assert not (repo / ".git" / "refs" / "heads" / git(repo, "branch", "--show-current")).exists()
    assert git_state(repo) == {"commit": commit, "dirty": False}
    (repo / "new.md").write_text("new\n")
    git(repo, "-c", "core.fsmonitor=false", "-c", "core.hooksPath=/dev/null", "add", "new.md")
    assert git_state(repo) == {"commit": commit, "dirty": True}

    linked = tmp_path / "linked"
    git(repo, "-c", "core.fsmonitor=false", "-c", "core.hooksPath=/dev/null", "-c", "filter.evil.smudge=cat",
        "-c", "filter.evil.process=", "worktree", "add", "-q", "--detach", str(linked))
    for marker in markers.iterdir():
        marker.unlink()
    assert (linked / ".git").is_file()
    assert git_state(linked) == {"commit": commit, "dirty": False}
    assert sorted(p.name for p in markers.iterdir()) == []


def test_no_checkout_and_an_unborn_branch_record_nothing(tmp_path: Path) -> None:
    assert git_state(tmp_path) is None  # tmp_path is outside any checkout
    git(tmp_path, "init", "-q")
    assert git_state(tmp_path) is None


def test_kdreg_run_in_a_planted_checkout_records_the_commit_and_runs_nothing(
    checkout: tuple[Path, Path, str], world: dict[str, str], kdreg_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, markers, commit = checkout
    monkeypatch.chdir(repo)
    from kdreg.pipeline.environment import git_commit

    git_commit.cache_clear()
    done = invoke("run", "--teacher", world["teacher"], "--student", "layers:k=1", "--benchmark",
                  world["benchmark"], "--stage", "teacher,none", "--config", world["grid"])
    git_commit.cache_clear()
    assert done.exit_code == 0, done.output
    with sqlite3.connect(kdreg_home / "kdreg.db") as db:
        environments = [json.loads(e) for (e,) in db.execute("SELECT environment FROM runs")]
    assert [e["git"] for e in environments] == [{"commit": commit, "dirty": False}] * 2
    assert sorted(p.name for p in markers.iterdir()) == []
