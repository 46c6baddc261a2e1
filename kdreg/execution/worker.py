"""Executing one task, in whichever process an executor runs it: plugins → stage → evaluate → store.

:func:`execute_task` is the whole worker side. It needs nothing but kdreg, the plugins,
the database URL and the cache folder (:class:`TaskContext`), so an executor can call it
in this process, in a local worker, or on a cluster node. The task records its own
outcome in the store as it goes — claimed, running with a heartbeat, then succeeded with
its results and curves in one transaction, or failed with its traceback, or
interrupted — and returns the same outcome as a value (:class:`TaskOutcome`), which an
executor may carry back to the process that planned the grid.

A process keeps what later tasks can reuse (:class:`_ProcessState`): the opened store,
plugin instances, the device and the fine-tuned teacher last used. Progress (task
started, training steps, log lines) goes to the process's event sink when one is set:
the monitor itself in-process, a queue to the planning process from a local worker.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kdreg.errors import KdregError
from kdreg.execution.graph import RUN, Task
from kdreg.execution.recording import (
    JOURNAL,
    RETURN,
    JournalRecorder,
    Recorder,
    ReturnRecorder,
    StoreRecorder,
)
from kdreg.execution.signals import Terminated, deferred, interrupted_by, termination_requested
from kdreg.records import TaskOutcome

STEP_EVENT_SECONDS = 0.2
"""Training-step events are sent at most this often (and always for the last step)."""


class DependencyFailedError(KdregError):
    """A model this run needs (fine-tuned teacher, distilled student) could not be built."""


@dataclass(frozen=True)
class TaskContext:
    """What every task of a grid needs to know, wherever it runs."""

    grid_id: int
    db_url: str
    device: str
    """The ``--device`` request: auto, cpu or cuda."""
    executor: str
    environment: tuple[tuple[str, str], ...] = ()
    """Variables the worker sets before it runs (KDREG_HOME, KDREG_CACHE, ...), as the planner saw them."""
    recording: str = "store"
    """How tasks record their outcome: 'store', 'journal' (files in ``journal``) or 'return'."""
    journal: str | None = None
    """The grid's journal folder (on a shared file system) when ``recording`` is 'journal'."""
    threads: int | None = None
    """CPU threads per task the user asked for (``--threads``); None: the executor's share or torch's."""


@dataclass(frozen=True)
class TaskEvent:
    """Something a running task tells whoever watches: it started, a training step, a log line."""

    key: str
    kind: str
    """'started', 'step' or 'log'."""
    message: str = ""
    phase: str = ""
    step: int = 0
    total: int = 0
    loss: float = 0.0


@dataclass(frozen=True)
class TaskCall:
    """``execute_task(task, context)`` as a picklable zero-argument callable (what executors ship)."""

    task: Task
    context: TaskContext

    def __call__(self) -> TaskOutcome:
        return execute_task(self.task, self.context)


EventSink = Callable[[TaskEvent], None]


class _ProcessState:
    """What a process keeps from one task to the next."""

    def __init__(self) -> None:
        self.stores: dict[str, Any] = {}
        self.sink: EventSink | None = None
        self.pipelines: dict[str, Any] = {}
        self.plugins: Any = None
        self.current: Task | None = None

    def store(self, url: str) -> Any:
        if url not in self.stores:
            from kdreg.store.store import Store

            self.stores[url] = Store(url)
        return self.stores[url]

    def pipeline(self, device: str) -> Any:
        if device not in self.pipelines:
            from kdreg.pipeline.stages import StagePipeline
            from kdreg.pipeline.training import Device
            from kdreg.plugins.resolve import PluginSet

            if self.plugins is None:
                self.plugins = PluginSet()
            self.pipelines[device] = StagePipeline(Device(device), self.plugins, log=_log, on_step=_step)
            freeze_what_lasts()
        return self.pipelines[device]


def freeze_what_lasts() -> None:
    """Move what this process holds now out of the garbage collector's sight.

    Called when a grid is handed to its executor and when a process sets up for its first
    task. torch, transformers and the rest leave millions of objects that live as long as
    the process; every automatic full collection walked all of them (0.3 s a time, measured
    in the workers of ``local``), and in a process forked from kdreg's fork server it also
    wrote to their shared pages. ``gc.freeze`` is Python's answer for long-lived heaps: those
    objects are never collected by the cycle collector (reference counting still frees
    them), and what tasks create later is collected as before.
    """
    import gc

    gc.freeze()


_state = _ProcessState()


def set_event_sink(sink: EventSink | None) -> None:
    """Where this process's tasks send their events (None: nowhere, and plugins' reports print to stderr)."""
    from kdreg import progress

    _state.sink = sink
    progress.connect(_step if sink is not None else None, _log if sink is not None else None)


def use_store(store: Any) -> None:
    """Let tasks of this process write through an already opened store (the planning process's own)."""
    _state.stores[store.url] = store


def current_task() -> Task | None:
    """The task this process is executing now, if any."""
    return _state.current


def _emit(event: TaskEvent) -> None:
    sink = _state.sink
    if sink is not None:
        sink(event)


def _log(message: str) -> None:
    task = _state.current
    _emit(TaskEvent(task.key if task else "", "log", message=message))


_last_step = [0.0]


def _step(phase: str, step: int, total: int, loss: float) -> None:
    task = _state.current
    now = time.monotonic()
    if step in (1, total) or now - _last_step[0] >= STEP_EVENT_SECONDS:
        _last_step[0] = now
        _emit(TaskEvent(task.key if task else "", "step", phase=phase, step=step, total=total, loss=loss))


class _Heartbeat:
    """Tells the recorder the task is alive from a background thread, while the task runs."""

    def __init__(self, recorder: Recorder, task: Task) -> None:
        from kdreg.store.liveness import heartbeat_seconds

        self._recorder, self._task = recorder, task
        self._every = heartbeat_seconds()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="kdreg-heartbeat", daemon=True)

    def _beat(self) -> None:
        while not self._stop.wait(self._every):
            try:
                self._recorder.heartbeat(self._task)
            except Exception:  # a busy database must not kill the run; the next beat tries again
                pass

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _apply(environment: tuple[tuple[str, str], ...]) -> None:
    for name, value in environment:
        if os.environ.get(name) != value:
            os.environ[name] = value


@contextmanager
def _executing(task: Task) -> Iterator[None]:
    previous, _state.current = _state.current, task
    try:
        yield
    finally:
        _state.current = previous


def _one_line(exc: BaseException) -> str:
    return (f"{type(exc).__name__}: {exc}".splitlines() or [type(exc).__name__])[0][:1000]


def recorder_for(context: TaskContext) -> Recorder:
    """The recorder ``context`` asks for (opening this process's store only when tasks write to it)."""
    if context.recording == RETURN:
        return ReturnRecorder()
    if context.recording == JOURNAL:
        assert context.journal is not None
        return JournalRecorder(Path(context.journal))
    return StoreRecorder(_state.store(context.db_url), context.grid_id)


def execute_task(task: Task, context: TaskContext) -> TaskOutcome:
    """Execute one task and record its outcome; interruptions are recorded, then re-raised."""
    _apply(context.environment)
    if context.threads is not None:
        from kdreg.threads import prepare_threads

        prepare_threads(context.threads)
    recorder = recorder_for(context)
    started = time.perf_counter()
    with _executing(task):
        outcome = _execute(task, context, recorder)
    outcome.seconds = time.perf_counter() - started
    return outcome


def _missing_dependencies(job: Any, recorder: Recorder) -> str | None:
    """Why an artifact this run needs is not there, or None when every one is."""
    from kdreg.execution.graph import artifact_needs
    from kdreg.pipeline import model_cache

    for kind, key in artifact_needs(job):
        if model_cache.is_complete(kind, key):
            continue
        what = "fine-tuned teacher" if kind == "teacher" else "student distilled in pretraining"
        reason = recorder.artifact_failure(key)
        if reason:
            return (f"The {what} this run needs could not be built; fix that and run again with "
                    f"--retry-failed (`kdreg status` names the task). Its error: {reason}")
        return f"The {what} this run needs is not in the model cache (cleared meanwhile?): run again."
    return None


def _execute(task: Task, context: TaskContext, recorder: Recorder) -> TaskOutcome:
    """Claim, start, train or build, record: the one path of every task."""
    from kdreg.pipeline.environment import environment

    outcome = TaskOutcome(task.key, task.kind, "running", host=socket.gethostname(), pid=os.getpid())
    claimed = False
    try:
        # Claimed and known to be claimed at once: a signal that lands right after the claim is
        # then recorded as this task's interruption, never leaving its run marked running.
        with deferred():
            claimed = recorder.claim(task)
        if not claimed:
            outcome.status, outcome.error = "skipped", "another kdreg process is running it"
            return outcome
        with _Heartbeat(recorder, task):
            pipeline = _state.pipeline(context.device)
            pipeline.loads.take()  # this task's loads only
            outcome.device = pipeline.device.describe()
            job = task.job.rebuild(pipeline.plugins)
            if task.kind == RUN:
                plugins = (job.teacher, job.student, job.benchmark, job.corpus)
                identities = [p.identity() for p in plugins if p is not None]
                if job.loss is not None:
                    identities.append(job.loss.identity())
                outcome.environment = environment(outcome.device, identities)
            outcome.started_at = time.time()
            with deferred():  # what start_run kept for a forced re-run must reach finished()
                recorder.started(task, outcome)
            _emit(TaskEvent(task.key, "started", message=outcome.where))
            begun = time.perf_counter()
            pipeline.trainer.seconds = 0.0
            if task.kind == RUN:
                missing = _missing_dependencies(job, recorder)
                if missing:
                    raise DependencyFailedError(missing)
                try:
                    outcome.results, outcome.curves = pipeline.run(job)
                finally:  # what was loaded, and what transformers reported, stays with the run
                    outcome.environment = {**(outcome.environment or {}), "loads": pipeline.loads.take()}
            else:
                pipeline.build(task.kind, job)
            outcome.busy_seconds = time.perf_counter() - begun
            outcome.train_seconds = pipeline.trainer.seconds
            outcome.status, outcome.finished_at = "succeeded", time.time()
            with deferred():  # recorded as a whole, never half succeeded, half interrupted
                recorder.finished(task, outcome)
    except (KeyboardInterrupt, SystemExit) as interrupt:  # SystemExit: submitit requeues after preemption
        if not claimed:  # nothing of it is in the store yet: it goes again as it was
            raise
        outcome.status, outcome.error = "interrupted", interrupted_by(interrupt)
        outcome.results, outcome.curves, outcome.finished_at = [], {}, time.time()
        with deferred():
            recorder.finished(task, outcome)
        raise
    except Exception as exc:
        if not claimed:  # the claim itself failed (the store): as before, the caller's error
            raise
        signum = termination_requested()
        if signum is not None:  # an error while stopping (an import cut short) is the interruption's
            outcome.status, outcome.error = "interrupted", interrupted_by(Terminated(signum))
            outcome.results, outcome.curves, outcome.finished_at = [], {}, time.time()
            with deferred():
                recorder.finished(task, outcome)
            raise Terminated(signum) from exc
        outcome.status, outcome.error, outcome.traceback = "failed", _one_line(exc), traceback.format_exc()
        outcome.results, outcome.curves, outcome.finished_at = [], {}, time.time()
        recorder.finished(task, outcome)
    return outcome
