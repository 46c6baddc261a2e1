"""``inline``: every task in this process, one after the other, in dependency order (the default).

The simplest executor, and the reference for writing one: it calls each task where it
is and tells the monitor. Progress reaches the monitor directly, through the event sink
of :mod:`kdreg.execution.worker`.
"""

from __future__ import annotations

from typing import Any

from kdreg.plugins.spec import Executor


class InlineExecutor(Executor):
    """Every task in this process, one after the other (the default)."""

    def execute(self, graph: Any, monitor: Any) -> None:
        from kdreg.execution.worker import set_event_sink

        set_event_sink(monitor.event)
        try:
            for task in graph.tasks:
                monitor.finished(task, graph.call(task)())
        finally:
            set_event_sink(None)
