"""CPU workers forked from a server that has already imported torch and transformers.

A worker of the ``local`` executor spends about 4 s of CPU importing torch, transformers'
model stack, accelerate and the store before it trains anything (transformers 5 alone
pulls in torch's compiler stack, sympy and scipy). On a small machine that is as much as
a dozen tiny runs, paid again by every worker. Python's own ``forkserver`` start method
fixes it: one server process imports :data:`MODULES` once, and every worker is forked from
it with them already in memory (copy-on-write). :func:`start` launches the server without
waiting for it, so its imports run while kdreg plans the grid.

Why the fork is safe: importing starts no OpenMP thread pool (torch creates it on the first
parallel operation) and touches no GPU. GPU workers are spawned fresh all the same, since a
CUDA driver never survives a fork (:mod:`kdreg_plugins.executors.local` decides).

A worker inherits the server's environment, not the planner's at the time it forks, and
the imported libraries read theirs (``HF_HOME``, ``HF_HUB_OFFLINE``) when imported. So the
server is started with the planner's environment and restarted when a variable that kdreg
or those libraries read (:data:`READ_AT_IMPORT`) has changed since: the planner went offline
(``HF_HUB_OFFLINE``), a second grid in the same process has another ``KDREG_HOME``. Where the
server cannot be restarted, :func:`fork_context` says so and the caller spawns instead.
"""

from __future__ import annotations

import multiprocessing
import os
from multiprocessing import forkserver
from multiprocessing.context import BaseContext

MODULES = [
    "torch",
    "transformers",
    "transformers.modeling_utils",
    "transformers.models.auto.modeling_auto",
    "transformers.models.auto.tokenization_auto",
    "transformers.models.bert.modeling_bert",  # the first model class costs 0.3 s (shared model code)
    "accelerate",
    "safetensors.torch",
    "datasets",
    "sqlalchemy.orm",
    "alembic.command",  # a worker's store checks its schema revision
    "alembic.runtime.migration",
    "kdreg.store.store",
    "kdreg.pipeline.stages",
    "kdreg.execution.worker",
]
"""Modules every task imports whatever its plugins are (the plugins' own come with the first task);
one missing from an installation is skipped (``multiprocessing`` ignores ImportError while preloading)."""

READ_AT_IMPORT = ("KDREG_", "HF_", "HUGGINGFACE_", "TRANSFORMERS_", "DATASETS_", "TOKENIZERS_", "OMP_",
                  "GOMP_", "KMP_", "MKL_", "OPENBLAS_", "CUDA_", "PYTORCH_", "NCCL_")
"""Prefixes of the variables that kdreg or its libraries read, some when imported: a change restarts the
server. Others (a cache folder torch's compiler sets for itself while imported) do not."""

_started_with: dict[str, str] | None = None
"""The variables of :data:`READ_AT_IMPORT` the running server was started with by :func:`start`
(None: not started here)."""


def _relevant() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if name.startswith(READ_AT_IMPORT)}


def available() -> bool:
    """Whether this platform has the ``forkserver`` start method (Linux, macOS; not Windows)."""
    return "forkserver" in multiprocessing.get_all_start_methods()


def start() -> bool:
    """Launch the server (or keep the one running with this environment); True when it is usable.

    Returns at once: the server imports :data:`MODULES` in its own process. A server started
    with other :data:`READ_AT_IMPORT` variables (or not by this module) is stopped first; when that is not
    possible (a Python without the private ``_stop``), the answer is False.
    """
    global _started_with
    if not available():
        return False
    server = getattr(forkserver, "_forkserver", None)
    environment = _relevant()
    running = getattr(server, "_forkserver_pid", None) is not None
    if running and _started_with != environment:
        stop = getattr(server, "_stop", None)
        if not callable(stop):
            return False
        stop()
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(MODULES)
    forkserver.ensure_running()
    _started_with = environment
    return True


def fork_context() -> BaseContext | None:
    """The ``forkserver`` context with the server running for this environment; None: spawn instead."""
    return multiprocessing.get_context("forkserver") if start() else None


def _nothing() -> None:
    """A child that only starts: see :func:`wait_until_ready`."""


def wait_until_ready() -> None:
    """Block until the server has finished its imports (one empty child forked from it has ended).

    kdreg never needs this (a task handed to a worker waits for the server anyway); a
    benchmark uses it to time the workers, not the server's start.
    """
    context = fork_context()
    if context is not None:
        child = context.Process(target=_nothing)
        child.start()
        child.join()
