"""What `kdreg run` shows while a grid runs: one line per task started and ended, a bar per training phase.

Tasks may run several at a time (``--executor local:workers=N``): each running task has
its own bar, and lines that end a task name it when others are running beside it.
Everything goes to stderr, so stdout keeps only the summary table.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from rich.markup import escape

from kdreg.cli.output import err_console

COLOURS = {"succeeded": "green", "failed": "red"}


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
        bar, shown = self.bars.get(task.key, (None, ""))
        if bar is None or phase != shown or step == 1:
            if bar is not None:
                self.progress.remove_task(bar)
            bar = self.progress.add_task(phase, total=total)
            self.bars[task.key] = (bar, phase)
        self.progress.update(bar, completed=step, description=f"{phase} loss {loss:.3f}")

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
