"""``local``: a grid's tasks in N worker processes on this machine, each on its share of the hardware.

The pool is Python's own :class:`concurrent.futures.ProcessPoolExecutor`. CPU workers are
forked from a server that has already imported torch and transformers (the ``forkserver``
start method, :mod:`kdreg.execution.forkserver`; :meth:`LocalExecutor.warm_up` starts it
while the grid is planned), so N workers do not each spend seconds importing; GPU workers
are started fresh (``spawn``: a CUDA driver does not survive a fork). Neither inherits the
planning process's threads or CUDA state. This module only decides what runs when — a task
is submitted once every task it depends on has finished — and gives each worker its
share of the machine:

* GPUs: worker *i* sees ``gpus[i % len(gpus)]`` through ``CUDA_VISIBLE_DEVICES``
  (default: every visible GPU; ``gpus=none`` keeps the workers on the CPU);
* CPU threads: the cores are shared evenly (``OMP_NUM_THREADS`` before torch is
  imported), so N workers do not oversubscribe the machine; torch's OpenMP threads spin
  only briefly, then sleep (:mod:`kdreg.threads`), instead of spinning while another
  worker computes.

Stopping is the planning process's decision. Workers ignore Ctrl-C (the terminal sends
it to the whole process group) and watch a pipe whose only writing end the planner holds:
the planner closes it to stop them — and the kernel closes it when the planner dies, even
by ``kill -9`` — and each worker then interrupts its task (its run is marked interrupted)
and exits. A worker that dies outright (``kill -9``,
the OOM killer) breaks the pool: the tasks it held are settled by the monitor (the
killed run is marked interrupted), the pool is rebuilt, and the other tasks go on.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass, field
from typing import Any

from kdreg.plugins.spec import Executor

POLL_SECONDS = 0.1


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


def gpu_devices_present() -> bool:
    """Whether this machine may have a GPU: NVIDIA's or ROCm's device files, or no way to tell (not Linux)."""
    if not os.path.isdir("/dev"):
        return True
    return any(os.path.exists(path) for path in ("/dev/nvidiactl", "/dev/nvidia0", "/dev/kfd", "/dev/dxg"))


def visible_gpus() -> list[str]:
    """Indices of the GPUs this process sees."""
    import torch

    return [str(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []


# ------------------------------------------------------------------ worker side
def _watch(planner: Any) -> None:
    """Terminate this worker (cleanly, through SIGTERM) once the planner closes its pipe, or dies."""
    from multiprocessing.connection import wait as wait_for

    wait_for([planner])  # readable at end of file: no writer is left
    os.kill(os.getpid(), signal.SIGTERM)


def _on_terminate(signum: int, frame: Any) -> None:
    from kdreg.execution.signals import _raise_terminated
    from kdreg.execution.worker import current_task

    if current_task() is not None:
        _raise_terminated(signum, frame)  # the task marks its run interrupted, then this worker exits
        return  # held while the task records something whole (signals.deferred): raised after it
    os._exit(128 + signum)


def _init_worker(slots: Any, gpus: list[str] | None, threads: int, planner: Any, events: Any) -> None:
    slot = slots.get()
    if gpus is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpus[slot % len(gpus)] if gpus else ""
    from kdreg.threads import prepare_threads

    prepare_threads(threads)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_terminate)
    from kdreg.execution.worker import set_event_sink

    set_event_sink(events.put)
    import threading

    threading.Thread(target=_watch, args=(planner,), name="kdreg-watch", daemon=True).start()


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

    def warm_up(self) -> None:
        """Start the fork server of CPU workers now, so that its imports overlap the planning.

        Only when it is plain without importing torch that no GPU will be used (``gpus=none``,
        or no GPU device on this machine): asking torch would cost the planner the very import
        the server is meant to overlap.
        """
        if self.params.gpus == "none" or (not self.params.gpus and not gpu_devices_present()):
            from kdreg.execution.forkserver import start

            start()

    def context(self, gpus: list[str] | None) -> Any:
        """How workers start: forked from the warm server on the CPU, spawned fresh for GPUs."""
        import multiprocessing

        if not gpus:
            from kdreg.execution.forkserver import fork_context

            forked = fork_context()
            if forked is not None:
                return forked
        return multiprocessing.get_context("spawn")

    def describe(self) -> str:
        workers, gpus, threads = self.layout()
        where = f"GPUs {'+'.join(gpus)}" if gpus else "CPU"
        return f"local: {workers} workers × {threads} thread{'s' if threads > 1 else ''} on {where}"

    def execute(self, graph: Any, monitor: Any) -> None:
        # Imported here: `kdreg plugins` imports every executor module, and the pool's machinery
        # (multiprocessing's queues) costs that light command 4 ms.
        from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
        from concurrent.futures.process import BrokenProcessPool

        workers, gpus, threads = self.layout()
        context = self.context(gpus)
        events = context.Queue()
        order = {task.key: i for i, task in enumerate(graph.tasks)}

        def new_pool() -> tuple[ProcessPoolExecutor, tuple[Any, Any]]:
            """A pool and the pipe its workers watch (they read; closing both ends here stops them)."""
            slots = context.Queue()
            for slot in range(workers):
                slots.put(slot)
            pipe = context.Pipe(duplex=False)
            return ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_worker,
                                       initargs=(slots, gpus, threads, pipe[0], events)), pipe

        pending = list(graph.tasks)
        finished: set[str] = set()
        in_flight: dict[Future[Any], Any] = {}
        pool, pipe = new_pool()
        try:
            while pending or in_flight:
                # At most one task per worker at a time, the earliest ready one in graph order: the
                # pool's own queue would run them in submission order, not as dependencies free them.
                ready = [t for t in pending if all(d in finished for d in t.depends_on)]
                broken = False
                for task in ready[: max(0, workers - len(in_flight))]:
                    try:
                        future = pool.submit(_run, graph.call(task))
                    except BrokenProcessPool:  # a worker died since the last wait; the task stays pending
                        broken = True
                        break
                    pending.remove(task)
                    in_flight[future] = task
                done, _ = wait(in_flight, timeout=0 if broken else POLL_SECONDS, return_when=FIRST_COMPLETED)
                _drain(events, monitor)
                if broken or any(isinstance(f.exception(), BrokenProcessPool) for f in done):
                    # A dead worker, or a dead fork server: then the pool cannot tell its other
                    # workers' state and would leave them running, so its pipe tells them to stop.
                    _close(pipe)
                    pool.shutdown(wait=True)
                    done = set(in_flight)
                lost = []
                for future in done:
                    task = in_flight.pop(future)
                    if isinstance(future.exception(), BrokenProcessPool):
                        lost.append(task)
                        continue
                    finished.add(task.key)
                    monitor.finished(task, future.result())
                if lost or broken:
                    _drain(events, monitor)
                    pool, pipe = new_pool()
                    for task in lost:
                        again = monitor.lost(task)
                        if again is None:
                            finished.add(task.key)
                        else:
                            pending.append(again)
                    pending.sort(key=lambda t: order[t.key])
        except BaseException:
            _close(pipe)  # every worker interrupts its task (its run is marked interrupted) and exits
            pool.shutdown(wait=True, cancel_futures=True)
            _drain(events, monitor)
            raise
        finally:
            pool.shutdown(wait=True)
            _close(pipe)
            events.close()


def _close(pipe: tuple[Any, Any]) -> None:
    """Close both ends of a pool's pipe: its workers read end of file and stop (closing twice is harmless)."""
    for end in pipe:
        end.close()


def _drain(events: Any, monitor: Any) -> None:
    """Forward the workers' events that have arrived."""
    import queue  # here, not at the top: `kdreg plugins` imports this module only to list it

    while True:
        try:
            event = events.get_nowait()
        except (queue.Empty, OSError, ValueError):
            return
        monitor.event(event)
