"""``ray``: a grid's tasks as Ray tasks (``pip install 'kdreg[ray]'``), dependencies as object references.

Each task is a Ray task whose arguments include the object references of the tasks it
depends on, so Ray starts it only once they have finished, on whichever node has the
CPUs and GPUs it asks for. ``kdreg run`` is the Ray driver and stays until the grid is
done: Ray ties its tasks to the driver, so Ctrl-C (or SIGTERM) cancels them — each marks
its run interrupted — and nothing is left running.

With a server database every task writes its run itself, as on one machine; with an
SQLite store (which only this machine may write) a task returns its outcome as a value
and kdreg records it here, with the same claim and steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from kdreg.errors import ConfigError
from kdreg.plugins.spec import Executor

POLL_SECONDS = 0.2


@dataclass(frozen=True)
class RayParams:
    """Which Ray cluster, and what each task asks of it."""

    address: str = field(default="", metadata={
        "help": "cluster to attach to (default: as ray.init does: $RAY_ADDRESS, else a new local cluster)"})
    num_cpus: float = field(default=1.0, metadata={"help": "CPUs per task (also its torch threads)"})
    num_gpus: float = field(default=0.0, metadata={"help": "GPUs per task"})
    cluster_cpus: int = field(default=0, metadata={
        "help": "CPUs of a new local cluster (0: all of this machine's); ignored when attaching"})

    def __post_init__(self) -> None:
        if self.num_cpus <= 0 or self.num_gpus < 0 or self.cluster_cpus < 0:
            raise ValueError("num_cpus must be > 0, num_gpus and cluster_cpus ≥ 0")


def run_task(call: Any, threads: int, *dependencies: Any) -> Any:
    """The body of every Ray task: run kdreg's task, after its dependencies (already resolved by Ray)."""
    import os

    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, str(threads))
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:
        pass
    try:
        return call()
    except KeyboardInterrupt:  # ray.cancel: the task recorded itself as interrupted
        from kdreg.records import TaskOutcome

        return TaskOutcome(call.task.key, call.task.kind, "interrupted", error="Interrupted (cancelled)")


class RayExecutor(Executor):
    """Tasks as Ray tasks on a local or attached Ray cluster; dependencies as object references."""

    Params = RayParams
    remote_recording: ClassVar[str | None] = "return"

    def __init__(self, params: RayParams | None = None) -> None:
        super().__init__(params)
        self.params: RayParams = self.params

    def check(self) -> None:
        try:
            import ray  # noqa: F401
        except ImportError:
            raise ConfigError("The ray executor needs Ray: pip install 'kdreg[ray]'.") from None

    def describe(self) -> str:
        p = self.params
        where = f"cluster {p.address}" if p.address else "a local Ray cluster"
        gpus = f" + {p.num_gpus:g} GPU" if p.num_gpus else ""
        return f"ray: {where}, {p.num_cpus:g} CPU{gpus} per task"

    def _start(self) -> Any:
        import ray

        if not ray.is_initialized():
            options: dict[str, Any] = {"log_to_driver": False, "include_dashboard": False,
                                       "configure_logging": False}
            if self.params.address:
                options["address"] = self.params.address
            elif self.params.cluster_cpus:
                options["num_cpus"] = self.params.cluster_cpus
            ray.init(**options)
        return ray

    def execute(self, graph: Any, monitor: Any) -> None:
        """Submit every task with its dependencies' references; record outcomes as they come back."""
        ray = self._start()
        remote = ray.remote(run_task).options(num_cpus=self.params.num_cpus, num_gpus=self.params.num_gpus,
                                              max_retries=0)
        threads = max(1, int(self.params.num_cpus))
        refs: dict[str, Any] = {}
        for task in graph.tasks:
            refs[task.key] = remote.remote(graph.call(task), threads, *(refs[d] for d in task.depends_on))
            monitor.submitted(task, external_id=refs[task.key].hex())
        pending = dict(refs)
        broken: set[str] = set()
        try:
            while pending:
                ready, _ = ray.wait(list(pending.values()), num_returns=1, timeout=POLL_SECONDS)
                for ref in ready:
                    key = next(k for k, r in pending.items() if r == ref)
                    del pending[key]
                    self._finish(ray, graph[key], ref, monitor, broken)
        except BaseException:
            for ref in pending.values():
                ray.cancel(ref)  # a KeyboardInterrupt in the task: it marks its run interrupted
            ray.wait(list(pending.values()), num_returns=len(pending), timeout=30)
            raise

    @staticmethod
    def _finish(ray: Any, task: Any, ref: Any, monitor: Any, broken: set[str]) -> None:
        from kdreg.records import TaskOutcome

        try:
            outcome = ray.get(ref)
        except Exception as exc:  # its worker died (kill -9, out of memory), or a dependency's did
            broken.add(task.key)
            failed_before = [d for d in task.depends_on if d in broken]
            if failed_before:
                outcome = TaskOutcome(task.key, task.kind, "failed", error=(
                    "DependencyFailedError: a model this run needs could not be built (its Ray worker died)"))
            else:
                outcome = TaskOutcome(task.key, task.kind, "interrupted", error=(
                    f"Interrupted: its Ray worker died ({type(exc).__name__})"))
                if monitor.lost(task) is None:
                    return  # the monitor settled it from the store (the task had written there)
        monitor.finished(task, outcome)
