"""The commit and dirty flag of the working folder's git checkout, read without obeying its configuration.

A run records the commit it was made from. The working folder may be a checkout nobody
vetted (a downloaded archive, a colleague's folder), and git obeys a repository's own
``.git/config``: ``git status`` there runs ``core.fsmonitor``'s command, clean and process
filters (``filter.<driver>.*``, switched on by ``.gitattributes``), the
``post-index-change`` hook, each submodule's own configuration, and a partial clone's lazy
fetch (``core.sshCommand``, remote helpers). Switching those off one by one with ``-c`` is a
list that can never be shown complete (filter drivers have any name, ``include.path`` pulls
in more files), so git is never pointed at the checkout's configuration at all:

* the commit is read from the files, as git lays them out: ``HEAD``, then the loose ref it
  names or ``packed-refs`` (a linked worktree's ``.git`` file and ``commondir`` are followed);
* the dirty flag is ``git status`` on a private, temporary git folder that holds that commit
  as ``HEAD``, a copy of the index, the checkout's objects as a read-only *alternate* and an
  empty configuration, with the system and global configurations off and ``GIT_WORK_TREE``
  naming the checkout. That git knows no filter, hook, fsmonitor or remote, whatever the
  checkout says (``.gitattributes`` can only name drivers nobody defined); submodules, which
  have configurations of their own, are not entered.

The checkout is only read: nothing is written into it, not even a refreshed index.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

_OBJECT_ID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
"""A SHA-1 or SHA-256 object name."""
_MAX_SYMREF_DEPTH = 5


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None


def find_checkout(start: Path) -> tuple[Path, Path, Path] | None:
    """``(work tree, git folder, common git folder)`` of the checkout holding ``start``, or None."""
    for folder in (start, *start.parents):
        dot_git = folder / ".git"
        if dot_git.is_dir():
            git_dir = dot_git
        elif dot_git.is_file():  # a linked worktree or a submodule: "gitdir: <path>"
            text = _read_text(dot_git) or ""
            if not text.startswith("gitdir:"):
                return None
            git_dir = folder / text[len("gitdir:"):].strip()
        else:
            continue
        common = _read_text(git_dir / "commondir")  # a linked worktree shares refs and objects
        return folder, git_dir, (git_dir / common) if common else git_dir
    return None


def _packed_ref(common_dir: Path, ref: str) -> str | None:
    text = _read_text(common_dir / "packed-refs") or ""
    for line in text.splitlines():
        object_id, _, name = line.partition(" ")
        if name.strip() == ref and _OBJECT_ID.fullmatch(object_id):
            return object_id
    return None


def head_commit(git_dir: Path, common_dir: Path) -> str | None:
    """The commit ``HEAD`` names; None for an unborn branch or a ref store this reader does not know."""
    text = _read_text(git_dir / "HEAD")
    for _ in range(_MAX_SYMREF_DEPTH):
        if text is None:
            return None
        if _OBJECT_ID.fullmatch(text):
            return text
        if not text.startswith("ref:"):
            return None
        ref = text[len("ref:"):].strip()
        if not ref.startswith("refs/") or ".." in ref.split("/"):
            return None  # not a ref name git would write: never read outside the git folder
        loose = [git_dir / ref, common_dir / ref]  # per-worktree refs first, like git
        text = next((t for t in map(_read_text, loose) if t is not None), None)
        if text is None:
            text = _packed_ref(common_dir, ref)
    return None


def _git_environment(private_dir: Path, work_tree: Path) -> dict[str, str]:
    """The caller's environment minus every GIT_* setting, plus the private repository's."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
    env.update(
        GIT_DIR=str(private_dir),
        GIT_WORK_TREE=str(work_tree),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_OPTIONAL_LOCKS="0",
        GIT_TERMINAL_PROMPT="0",
    )
    return env


def is_dirty(work_tree: Path, git_dir: Path, common_dir: Path, commit: str) -> bool | None:
    """Whether tracked files differ from ``commit`` (staged or not); None when git cannot tell."""
    if shutil.which("git") is None:
        return None
    with tempfile.TemporaryDirectory(prefix="kdreg-git-") as tmp:
        private = Path(tmp)
        (private / "objects" / "info").mkdir(parents=True)
        (private / "refs").mkdir()
        (private / "objects" / "info" / "alternates").write_text(
            f"{(common_dir / 'objects').resolve()}\n", encoding="utf-8"
        )
        (private / "HEAD").write_text(f"{commit}\n", encoding="utf-8")
        sha256 = len(commit) == 64
        (private / "config").write_text(
            "[core]\n\trepositoryformatversion = 1\n[extensions]\n\tobjectformat = sha256\n"
            if sha256 else "[core]\n\trepositoryformatversion = 0\n",
            encoding="utf-8",
        )
        try:
            if (git_dir / "index").is_file():
                shutil.copyfile(git_dir / "index", private / "index")
            for shared in git_dir.glob("sharedindex.*"):  # a split index keeps its base beside it
                shutil.copyfile(shared, private / shared.name)
            done = subprocess.run(
                ["git", "--no-pager", "status", "--porcelain", "--untracked-files=no",
                 "--ignore-submodules=all", "--no-renames"],
                cwd=work_tree, env=_git_environment(private, work_tree),
                capture_output=True, text=True, timeout=30, check=True, stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.SubprocessError):
            return None
    return bool(done.stdout.strip())


def git_state(start: Path | None = None) -> dict[str, Any] | None:
    """``{"commit": ..., "dirty": ...}`` of the checkout holding ``start`` (the current folder), or None."""
    try:
        found = find_checkout((start or Path.cwd()).resolve())
    except OSError:
        return None
    if found is None:
        return None
    work_tree, git_dir, common_dir = found
    commit = head_commit(git_dir, common_dir)
    if commit is None:
        return None
    return {"commit": commit, "dirty": is_dirty(work_tree, git_dir, common_dir, commit)}
