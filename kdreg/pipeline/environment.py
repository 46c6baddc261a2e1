"""The environment a run was made in, stored with it so every number can be traced.

Library versions, plugin distributions and versions, host, device, and the git commit
of the working directory (with a dirty flag) when there is one.
"""

from __future__ import annotations

import platform
import socket
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
    """Commit and dirty flag of the current folder's git checkout, or None.

    Read without obeying the checkout's own git configuration (see
    :mod:`kdreg.pipeline.git_checkout`): a run started in an untrusted checkout must not
    run the commands its ``.git/config`` names.
    """
    from kdreg.pipeline.git_checkout import git_state

    return git_state()


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
