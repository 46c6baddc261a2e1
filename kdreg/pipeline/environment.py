"""The environment a run was made in, stored with it so every number can be traced.

Library versions, plugin distributions and versions, host, device, and the git commit
of the working directory (with a dirty flag) when there is one.
"""

from __future__ import annotations

import platform
import socket
import subprocess
import sys
from functools import cache
from importlib import metadata
from typing import Any


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


@cache
def git_commit() -> dict[str, Any] | None:
    """Commit and dirty flag of the current directory's git checkout, or None."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = bool(
            subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"],
                capture_output=True, text=True, timeout=5, check=True,
            ).stdout.strip()
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": dirty} if commit else None


def environment(device: str, plugins: list[dict[str, Any]]) -> dict[str, Any]:
    """Everything about where and with what a run ran."""
    return {
        "kdreg": _version("kdreg"),
        "torch": _version("torch"),
        "transformers": _version("transformers"),
        "datasets": _version("datasets"),
        "accelerate": _version("accelerate"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "host": socket.gethostname(),
        "device": device,
        "git": git_commit(),
        "plugins": plugins,
    }
