"""``slurm``: a grid's tasks as Slurm job arrays, submitted through submitit (``pip install 'kdreg[slurm]'``).

Tasks that depend on the same artifacts are one job array; an array waits for exactly
the array elements that build its artifacts (``--dependency=afterany:<job>_<index>...``),
so Slurm, not kdreg, schedules the whole graph and ``kdreg run`` returns as soon as
everything is submitted (``--wait`` follows it to the end). ``afterany`` rather than
``afterok``: a dependent that ran after a failed artifact records the failure with its
reason, instead of waiting forever in Slurm's queue as "DependencyNeverSatisfied".

Preemption and time limits: Slurm signals the job (USR2) before it stops it; submitit
then requeues it, up to ``requeues`` times, and the task runs again from the start — a
partially trained run's numbers are never stored. ``scancel`` sends SIGTERM, which kdreg
records as the run being interrupted; the next ``kdreg run`` submits it again.

Everything a job needs is in ``folder`` (its pickled task, its log), which every node must
see: it defaults to ``$KDREG_HOME/slurm``, so ``KDREG_HOME`` must be on the cluster's shared
file system — and a folder under /tmp is refused unless every node of the cluster is this
machine. With an SQLite store, nodes record their outcome as files in the grid's journal
there (see :mod:`kdreg.execution.journal`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from kdreg.errors import ConfigError
from kdreg.plugins.spec import Executor
from kdreg.threads import SPIN_COUNT

NODE_LOCAL = (Path("/tmp"), Path("/var/tmp"), Path("/dev/shm"))
"""Folders that are each node's own on a cluster."""
ACTIVE = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "REQUEUED", "RESIZING", "SUSPENDED",
          "REQUEUE_HOLD", "REQUEUE_FED", "SIGNALING", "STAGE_OUT", "STOPPED"}
"""Slurm job states of a job that may still run or is running."""


@dataclass(frozen=True)
class SlurmParams:
    """What a Slurm user sets per job, and where the jobs' files go."""

    partition: str = field(default="", metadata={"help": "partition (default: the cluster's default)"})
    time: int = field(default=60, metadata={"help": "time limit per task, in minutes"})
    gpus_per_task: int = field(default=0, metadata={"help": "GPUs per task"})
    cpus_per_task: int = field(default=1, metadata={"help": "CPU cores per task (also its torch threads)"})
    mem_gb: float = field(default=0.0, metadata={"help": "memory per task in GB (0: the cluster's default)"})
    array_parallelism: int = field(default=64, metadata={"help": "most tasks of one array running at once"})
    account: str = field(default="", metadata={"help": "account to charge"})
    qos: str = field(default="", metadata={"help": "quality of service"})
    constraint: str = field(default="", metadata={"help": "node features required"})
    additional: str = field(default="", metadata={
        "help": "any other sbatch options, '+'-separated, e.g. mail-type=END+exclude=node3"})
    folder: Path | None = field(default=None, metadata={
        "help": "folder for job pickles, logs and journals, seen by every node (default: $KDREG_HOME/slurm)"})
    requeues: int = field(default=3, metadata={"help": "times a preempted or timed-out task is requeued"})

    def __post_init__(self) -> None:
        if self.time < 1 or self.cpus_per_task < 1 or self.array_parallelism < 1:
            raise ValueError("time, cpus_per_task and array_parallelism must be at least 1")
        if self.gpus_per_task < 0 or self.mem_gb < 0 or self.requeues < 0:
            raise ValueError("gpus_per_task, mem_gb and requeues must not be negative")
        for item in filter(None, self.additional.split("+")):
            if "=" not in item or not item.partition("=")[0].strip():
                raise ValueError(f"additional takes name=value items joined by '+', not {item!r}")


class SlurmTaskCall:
    """A task's callable as a Slurm job: SIGTERM (scancel) interrupts it; preemption requeues it.

    submitit calls ``checkpoint`` when Slurm signals a preemption or the time limit, and
    requeues what it returns; returning None after ``requeues_left`` requeues stops that.
    """

    def __init__(self, call: Any, requeues_left: int) -> None:
        self.call, self.requeues_left = call, requeues_left

    def __call__(self) -> Any:
        from kdreg.execution.signals import termination_as_interrupt

        with termination_as_interrupt():
            return self.call()

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        if self.requeues_left <= 0:
            return None
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(SlurmTaskCall(self.call, self.requeues_left - 1))


def _local_names() -> set[str]:
    import socket  # here and below: `kdreg plugins` imports this module to list it, and needs none of them

    names = {"127.0.0.1", "::1", "localhost", socket.gethostname(), socket.getfqdn()}
    try:
        names.add(socket.gethostbyname(socket.gethostname()))
    except OSError:
        pass
    return names


def single_machine_cluster() -> bool:
    """Whether every node of the cluster is this machine (a workstation's Slurm, a test cluster)."""
    import subprocess

    try:
        shown = subprocess.run(["scontrol", "show", "nodes", "-o"], capture_output=True, text=True,
                               timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    addresses = [field.split("=", 1)[1] for line in shown.splitlines() for field in line.split()
                 if field.startswith("NodeAddr=")]
    return bool(addresses) and set(addresses) <= _local_names()


def job_states(job_ids: list[str]) -> dict[str, str]:
    """Slurm's state of each job (``123`` or ``123_4``) it still knows: squeue, then sacct where available."""
    import shutil
    import subprocess

    ids = [j for j in job_ids if j]
    if not ids or shutil.which("squeue") is None:
        return {}
    states: dict[str, str] = {}
    for command in (["squeue", "-h", "-r", "-t", "all", "-o", "%i|%T", "-j", ",".join(ids)],
                    ["sacct", "-n", "-P", "-X", "-o", "JobID,State", "-j", ",".join(ids)]):
        try:
            out = subprocess.run(command, capture_output=True, text=True, timeout=30).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        for line in out.splitlines():
            job, _, state = line.partition("|")
            if job.strip() and state.strip():
                states.setdefault(job.strip(), state.split()[0].strip())
    return states


class SlurmExecutor(Executor):
    """Tasks as Slurm job arrays (submitit), dependencies as Slurm dependencies; returns once submitted."""

    Params = SlurmParams
    remote_recording: ClassVar[str | None] = "journal"

    def __init__(self, params: SlurmParams | None = None) -> None:
        super().__init__(params)
        self.params: SlurmParams = self.params

    def shared_folder(self) -> Path:
        """The folder every node sees: job files, logs, journals."""
        if self.params.folder is not None:
            return self.params.folder.expanduser().absolute()
        from kdreg.paths import home

        return home().absolute() / "slurm"

    def check(self) -> None:
        import shutil

        if shutil.which("sbatch") is None:
            raise ConfigError("No `sbatch` here: run kdreg on a Slurm login node, or use --executor local.")
        try:
            import submitit  # noqa: F401
        except ImportError:
            raise ConfigError("The slurm executor needs submitit: pip install 'kdreg[slurm]'.") from None
        folder = self.shared_folder()
        if any(folder == p or p in folder.parents for p in NODE_LOCAL) and not single_machine_cluster():
            raise ConfigError(
                f"{folder} is under a node-local folder, which the cluster's other nodes cannot see; set "
                "KDREG_HOME (or slurm:folder=) to a folder on the shared file system."
            )

    def describe(self) -> str:
        p = self.params
        where = f"partition {p.partition}" if p.partition else "the default partition"
        return f"slurm: {where}, {p.cpus_per_task} CPU{'s' if p.cpus_per_task > 1 else ''}" + (
            f" + {p.gpus_per_task} GPU" if p.gpus_per_task else "") + f" per task, {p.time} min"

    def states(self, external_ids: list[str]) -> dict[str, str]:
        """Slurm's state of the given jobs (what ``kdreg status`` shows beside the store's)."""
        return job_states(external_ids)

    def alive(self, external_ids: list[str]) -> set[str]:
        """The jobs that may still run (queued, running, requeued)."""
        return {job for job, state in job_states(external_ids).items() if state in ACTIVE}

    def _executor(self, logs: Path) -> Any:
        import submitit

        p = self.params
        executor = submitit.SlurmExecutor(folder=str(logs), max_num_timeout=p.requeues)
        additional = dict(item.split("=", 1) for item in p.additional.split("+") if item)
        parameters: dict[str, Any] = {
            "time": p.time, "cpus_per_task": p.cpus_per_task, "array_parallelism": p.array_parallelism,
            "job_name": "kdreg", "additional_parameters": additional,
            "setup": [f"export OMP_NUM_THREADS={p.cpus_per_task} MKL_NUM_THREADS={p.cpus_per_task}",
                      f"export OMP_WAIT_POLICY=PASSIVE GOMP_SPINCOUNT={SPIN_COUNT}"],
        }
        for name in ("partition", "account", "qos", "constraint"):
            if getattr(p, name):
                parameters[name] = getattr(p, name)
        if p.gpus_per_task:
            parameters["gpus_per_task"] = p.gpus_per_task
        if p.mem_gb:
            parameters["mem"] = f"{int(p.mem_gb * 1024)}M"
        executor.update_parameters(**parameters)
        return executor

    def execute(self, graph: Any, monitor: Any) -> None:
        """Submit every task: one array per set of dependencies, each after the jobs it depends on."""
        grid = graph.context.grid_id if graph.context is not None else 0
        executor = self._executor(self.shared_folder() / f"grid-{grid}" / "logs")
        groups: dict[tuple[str, ...], list[Any]] = {}
        for task in graph.tasks:
            groups.setdefault(tuple(task.depends_on), []).append(task)
        job_ids: dict[str, str] = {}
        while groups:
            ready = [deps for deps in groups if all(d in job_ids for d in deps)]
            if not ready:
                raise ConfigError("The task graph has a dependency cycle; this is a bug in kdreg.")
            for deps in ready:
                tasks = groups.pop(deps)
                waits = ":".join(job_ids[d] for d in deps)
                executor.update_parameters(dependency=f"afterany:{waits}" if waits else None)
                with executor.batch():
                    calls = [SlurmTaskCall(graph.call(t), self.params.requeues) for t in tasks]
                    jobs = [executor.submit(call) for call in calls]
                for task, job in zip(tasks, jobs, strict=True):
                    job_ids[task.key] = job.job_id
                    monitor.submitted(task, external_id=job.job_id, log_path=str(job.paths.stdout))
