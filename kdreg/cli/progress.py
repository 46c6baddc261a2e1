"""What `kdreg run` shows while a grid runs: one line per task started and ended, a bar per training phase.

Tasks may run several at a time (``--executor local:workers=N``): each running task has
its own bar, and lines that end a task name it when others are running beside it.
Everything goes to stderr, so stdout keeps only the summary table.

Without a terminal (a log file, a cluster job's output) there are no bars to redraw, and a
long phase would say nothing for an hour: a line per phase is printed instead every
``KDREG_PROGRESS_SECONDS`` (default 30) — phase, step of total, loss, steps per second and
the time it still needs.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from rich.markup import escape

from kdreg.cli.output import err_console

COLOURS = {"succeeded": "green", "failed": "red"}
PROGRESS_ENV = "KDREG_PROGRESS_SECONDS"


def progress_seconds() -> float:
    """How often a phase's progress line is printed without a terminal."""
    raw = os.environ.get(PROGRESS_ENV, "").strip()
    try:
        value = float(raw) if raw else 30.0
    except ValueError:
        value = float("nan")
    if not value > 0:  # also nan
        from kdreg.errors import ConfigError

        raise ConfigError(f"{PROGRESS_ENV}={raw[:20]!r} must be a number of seconds above 0.")
    return value


class RichReporter:
    """Grid progress (tasks done of all), the current phase's steps per task, and one line per event."""

    def __init__(self) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TimeRemainingColumn(), console=err_console, transient=False,
            disable=not err_console.is_terminal,
        )
        self.grid_bar: Any = None
        self.bars: dict[str, tuple[Any, str]] = {}
        """Task key → (its progress bar, the phase it shows)."""
        self.running: set[str] = set()
        self.lines = not err_console.is_terminal
        self.every = progress_seconds()
        self.phases: dict[tuple[str, str], tuple[float, float]] = {}
        """(task key, phase) → (when the phase started, when its last line was printed)."""

    def __enter__(self) -> RichReporter:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def log(self, message: str) -> None:
        err_console.print(f"  [dim]{escape(message)}[/]")

    def task_started(self, index: int, total: int, task: Any, where: str) -> None:
        if self.grid_bar is None:
            self.grid_bar = self.progress.add_task("grid", total=total)
        self.running.add(task.key)
        place = "" if f"pid {os.getpid()} " in where else f" [dim]· {escape(where)}[/]"
        err_console.print(f"[bold]\\[{index}/{total}][/] {escape(task.label)}{place}")

    def step(self, task: Any, phase: str, step: int, total: int, loss: float) -> None:
        if self.lines:
            self._line(task, phase, step, total, loss)
            return
        bar, shown = self.bars.get(task.key, (None, ""))
        if bar is None or phase != shown or step == 1:
            if bar is not None:
                self.progress.remove_task(bar)
            bar = self.progress.add_task(phase, total=total)
            self.bars[task.key] = (bar, phase)
        self.progress.update(bar, completed=step, description=f"{phase} loss {loss:.3f}")

    def _line(self, task: Any, phase: str, step: int, total: int, loss: float) -> None:
        """A progress line when the phase has been quiet for ``every`` seconds (and at its end)."""
        now = time.monotonic()
        started, printed = self.phases.setdefault((task.key, phase), (now, now))
        if step < total and now - printed < self.every:
            return
        self.phases[task.key, phase] = (started, now)
        rate = step / (now - started) if now > started else 0.0
        left = f", {(total - step) / rate:.0f}s to go" if rate > 0 and step < total else ""
        name = f" · {task.label}" if len(self.running) > 1 else ""
        err_console.print(f"  {phase} step {step}/{total} · loss {loss:.4f} · {rate:.1f} steps/s{left}{name}",
                          markup=False, highlight=False)
        sys.stderr.flush()

    def task_finished(self, task: Any, outcome: Any) -> None:
        bar, _ = self.bars.pop(task.key, (None, ""))
        if bar is not None:
            self.progress.remove_task(bar)
        if self.grid_bar is not None:
            self.progress.advance(self.grid_bar)
        self.running.discard(task.key)
        colour = COLOURS.get(outcome.status, "yellow")
        detail = f": {escape(outcome.error)}" if outcome.error else ""
        which = f" · {escape(task.label)}" if self.running or outcome.status == "skipped" else ""
        err_console.print(f"  [{colour}]{outcome.status}[/] in {outcome.seconds:.1f}s{which}{detail}")
        if not err_console.is_terminal:
            sys.stderr.flush()
