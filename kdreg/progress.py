"""Progress a plugin reports from inside a task, shown like kdreg's own training phases.

A plugin that does long work of its own — the ``synthetic`` teacher pretraining itself on
first use, a benchmark building an index — calls :func:`step` and :func:`log`; inside a
``kdreg run`` task they reach the same display as kdreg's training phases (a bar in a
terminal, periodic lines in a log file, the task's log on a cluster). Outside a task
(a plugin used on its own) :func:`log` prints to stderr and :func:`step` does nothing.

Nothing is imported here: plugins may call it from anywhere.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

StepHook = Callable[[str, int, int, float], None]
LogHook = Callable[[str], None]

_hooks: dict[str, Callable[..., None] | None] = {"step": None, "log": None}


def connect(step_hook: StepHook | None, log_hook: LogHook | None) -> None:
    """Where reports go (kdreg's task runner connects its event sink; None disconnects)."""
    _hooks["step"], _hooks["log"] = step_hook, log_hook


def step(phase: str, done: int, total: int, loss: float = float("nan")) -> None:
    """``done`` of ``total`` steps of ``phase`` (e.g. 'teacher_pretrain'); ``loss`` when there is one."""
    hook = _hooks["step"]
    if hook is not None:
        hook(phase, done, total, loss)


def log(message: str) -> None:
    """One line about the work (shown with the task's other lines)."""
    hook = _hooks["log"]
    if hook is not None:
        hook(message)
    else:
        print(message, file=sys.stderr, flush=True)
