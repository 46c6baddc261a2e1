"""``local``: a grid's tasks in N worker processes on this machine, each on its share of the hardware.

The pool is Python's own :class:`concurrent.futures.ProcessPoolExecutor` with the
``spawn`` start method (a fresh interpreter per worker: no CUDA state or threads
inherited from the planning process). This module only decides what runs when — a task
is submitted once every task it depends on has finished — and gives each worker its
share of the machine:

* GPUs: worker *i* sees ``gpus[i % len(gpus)]`` through ``CUDA_VISIBLE_DEVICES``
  (default: every visible GPU; ``gpus=none`` keeps the workers on the CPU);
* CPU threads: the cores are shared evenly (``OMP_NUM_THREADS`` before torch is
  imported), so N workers do not oversubscribe the machine; torch's OpenMP threads spin
  only briefly, then sleep (:mod:`kdreg.threads`), instead of spinning while another
  worker computes.

Stopping is the planning process's decision. Workers ignore Ctrl-C (the terminal sends
it to the whole process group); the planner sets a stop event, and each worker then
interrupts its task (its run is marked interrupted) and exits. A worker also stops when
its planning process dies, even by ``kill -9``. A worker that dies outright (``kill -9``,
the OOM killer) breaks the pool: the tasks it held are settled by the monitor (the
killed run is marked interrupted), the pool is rebuilt, and the other tasks go on.
"""

from __future__ import annotations

import os
import queue
import signal
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

from kdreg.plugins.spec import Executor

POLL_SECONDS = 0.1
WATCH_SECONDS = 0.5


@dataclass(frozen=True)
class LocalParams:
    """How many workers, on which GPUs, with how many CPU threads each."""

    workers: int = field(default=0, metadata={
        "help": "worker processes (0: one per GPU in use, else one per CPU core, at most 8)"})
    gpus: str = field(default="", metadata={
        "help": "GPU indices shared round-robin by the workers, '+'-separated, e.g. 0+1 (default: every "
                "visible GPU; 'none': CPU only)"})
    threads: int = field(default=0, metadata={"help": "CPU threads per worker (0: the cores shared evenly)"})

    def __post_init__(self) -> None:
        if self.workers < 0 or self.threads < 0:
            raise ValueError("workers and threads must be 0 (automatic) or more")
        if self.workers > 1024 or self.threads > 1024:
            raise ValueError("workers and threads must be at most 1024")
        if self.gpus not in ("", "none") and not all(p.strip().isdigit() for p in self.gpus.split("+")):
            raise ValueError(f"gpus must be GPU indices joined by '+' (0+1) or 'none', not {self.gpus!r}")


def cpu_cores() -> int:
    """Cores this process may use (its CPU affinity where the platform tells)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def visible_gpus() -> list[str]:
    """Indices of the GPUs this process sees."""
    import torch

    return [str(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []


# ------------------------------------------------------------------ worker side
def _watch(stop: Any, parent: int) -> None:
    """Terminate this worker (cleanly, through SIGTERM) when told to stop or when the planner is gone."""
    while not stop.wait(WATCH_SECONDS):
        if os.getppid() != parent:
            break
    os.kill(os.getpid(), signal.SIGTERM)


def _on_terminate(signum: int, frame: Any) -> None:
    from kdreg.execution.signals import _raise_terminated
    from kdreg.execution.worker import current_task

    if current_task() is not None:
        _raise_terminated(signum, frame)  # the task marks its run interrupted, then this worker exits
    os._exit(128 + signum)


def _init_worker(slots: Any, gpus: list[str] | None, threads: int, stop: Any, events: Any,
                 parent: int) -> None:
    slot = slots.get()
    if gpus is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpus[slot % len(gpus)] if gpus else ""
    from kdreg.threads import prepare_threads

    prepare_threads(threads)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_terminate)
    from kdreg.execution.worker import set_event_sink

    set_event_sink(events.put)
    threading.Thread(target=_watch, args=(stop, parent), name="kdreg-watch", daemon=True).start()


def _run(call: Any) -> Any:
    try:
        return call()
    except KeyboardInterrupt:  # terminated: the task recorded it; this worker is done
        os._exit(128 + signal.SIGTERM)


# ------------------------------------------------------------------ planner side
class LocalExecutor(Executor):
    """Tasks in N worker processes on this machine, each pinned to its GPU and its share of the cores."""

    Params = LocalParams

    def __init__(self, params: LocalParams | None = None) -> None:
        super().__init__(params)
        self.params: LocalParams = self.params

    def layout(self) -> tuple[int, list[str] | None, int]:
        """(workers, GPUs to pin them to — None: leave CUDA_VISIBLE_DEVICES alone —, threads per worker)."""
        p = self.params
        if p.gpus == "none":
            gpus: list[str] | None = []
        elif p.gpus:
            gpus = [g.strip() for g in p.gpus.split("+")]
        else:
            gpus = visible_gpus() or None
        workers = p.workers or (len(gpus) if gpus else min(cpu_cores(), 8))
        threads = p.threads or max(1, cpu_cores() // workers)
        return workers, gpus, threads

    def describe(self) -> str:
        workers, gpus, threads = self.layout()
        where = f"GPUs {'+'.join(gpus)}" if gpus else "CPU"
        return f"local: {workers} workers × {threads} thread{'s' if threads > 1 else ''} on {where}"

    def execute(self, graph: Any, monitor: Any) -> None:
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        workers, gpus, threads = self.layout()
        events, stop = context.Queue(), context.Event()
        order = {task.key: i for i, task in enumerate(graph.tasks)}

        def new_pool() -> ProcessPoolExecutor:
            slots = context.Queue()
            for slot in range(workers):
                slots.put(slot)
            return ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_worker,
                                       initargs=(slots, gpus, threads, stop, events, os.getpid()))

        pending = list(graph.tasks)
        finished: set[str] = set()
        in_flight: dict[Future[Any], Any] = {}
        pool = new_pool()
        try:
            while pending or in_flight:
                # At most one task per worker at a time, the earliest ready one in graph order: the
                # pool's own queue would run them in submission order, not as dependencies free them.
                ready = [t for t in pending if all(d in finished for d in t.depends_on)]
                for task in ready[: max(0, workers - len(in_flight))]:
                    pending.remove(task)
                    in_flight[pool.submit(_run, graph.call(task))] = task
                done, _ = wait(in_flight, timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
                _drain(events, monitor)
                if any(isinstance(f.exception(), BrokenProcessPool) for f in done):
                    pool.shutdown(wait=True)  # every worker of the broken pool is gone after this
                    done = set(in_flight)
                lost = []
                for future in done:
                    task = in_flight.pop(future)
                    if isinstance(future.exception(), BrokenProcessPool):
                        lost.append(task)
                        continue
                    finished.add(task.key)
                    monitor.finished(task, future.result())
                if lost:
                    _drain(events, monitor)
                    pool = new_pool()
                    for task in lost:
                        again = monitor.lost(task)
                        if again is None:
                            finished.add(task.key)
                        else:
                            pending.append(again)
                    pending.sort(key=lambda t: order[t.key])
        except BaseException:
            stop.set()  # every worker interrupts its task (its run is marked interrupted) and exits
            pool.shutdown(wait=True, cancel_futures=True)
            _drain(events, monitor)
            raise
        finally:
            pool.shutdown(wait=True)
            events.close()


def _drain(events: Any, monitor: Any) -> None:
    """Forward the workers' events that have arrived."""
    while True:
        try:
            event = events.get_nowait()
        except (queue.Empty, OSError, ValueError):
            return
        monitor.event(event)
