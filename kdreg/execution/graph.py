"""A grid as a task graph: runs, the artifacts they need, and the edges between them.

* **artifact tasks** build an intermediate model into the model cache: a fine-tuned
  teacher (``teacher``; per teacher × benchmark × seed × teacher fine-tuning) or a student
  distilled during pretraining (``student-pretrained``; per teacher × student × loss ×
  corpus × seed × pretraining), each identified by its cache key;
* **run tasks** (``run``) execute one run, identified by its config hash, after the
  artifacts it needs: the teacher row and ``finetune``/``both`` need the fine-tuned teacher,
  ``pretrain``/``both`` the distilled student.

An artifact already in the cache is not a task, and neither is a run the plan skips.
A :class:`Task` is plain data (plugin specifications as text, hyper-parameters, keys),
so it pickles to another process or machine; :class:`JobSpec` rebuilds the job there
and checks that it hashes to the same run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kdreg.errors import ConfigError
from kdreg.grid import USES_PRETRAIN, Job, make_job
from kdreg.hparams import HParams
from kdreg.pipeline.artifacts import FINE_TUNED_TEACHER, PRETRAINED_STUDENT
from kdreg.plugins.resolve import PluginSet

if TYPE_CHECKING:
    from kdreg.execution.worker import TaskCall, TaskContext

RUN = "run"
"""The kind of a run task; an artifact task's kind is its artifact's (its model-cache prefix)."""
ARTIFACT_KINDS = (FINE_TUNED_TEACHER, PRETRAINED_STUDENT)


@dataclass(frozen=True)
class JobSpec:
    """A job as text: what a worker needs to rebuild it through its own plugin registry."""

    stage: str
    seed: int
    teacher: str
    benchmark: str
    languages: tuple[str, ...]
    evaluated: tuple[str, ...]
    hparams: HParams
    config_hash: str
    student: str | None = None
    loss: str | None = None
    corpus: str | None = None

    @classmethod
    def of(cls, job: Job) -> JobSpec:
        return cls(job.stage, job.seed, job.teacher.spec, job.benchmark.spec, job.languages, job.evaluated,
                   job.hparams, job.record.config_hash,
                   job.student.spec if job.student else None, job.loss.spec if job.loss else None,
                   job.corpus.spec if job.corpus else None)

    def rebuild(self, plugins: PluginSet) -> Job:
        """The job again, from this process's plugins; refused when they identify it differently."""
        job = make_job(
            self.stage, self.seed, plugins.resolve("teacher", self.teacher),
            plugins.resolve("benchmark", self.benchmark), self.languages, self.evaluated, self.hparams,
            student=plugins.resolve("student", self.student) if self.student else None,
            loss=plugins.resolve_loss(self.loss) if self.loss else None,
            corpus=plugins.resolve("corpus", self.corpus) if self.corpus else None,
        )
        if job.record.config_hash != self.config_hash:
            raise ConfigError(
                f"This process identifies run {self.config_hash[:12]} differently "
                f"({job.record.config_hash[:12]}): "
                "its plugins or their versions differ from those of the process that planned the grid. "
                "Install the same kdreg and plugin versions everywhere the grid runs."
            )
        return job


@dataclass(frozen=True)
class Task:
    """One unit of a grid's execution; picklable."""

    kind: str
    """'run', or an artifact kind ('teacher', 'student-pretrained')."""
    key: str
    """The run's config hash, or the artifact's cache key."""
    job: JobSpec
    """The run; for an artifact, the first run that needs it (what it is built from)."""
    label: str
    depends_on: tuple[str, ...] = ()
    """Keys of the tasks that must finish first."""
    run_id: int | None = None
    seen_status: str = "pending"
    """The run's status when this grid planned it ('stale' for a dead process's run)."""
    seen_attempts: int = 0
    """The run's claim count when this grid planned it (a claim names it, see Store.claim_run)."""

    @property
    def is_artifact(self) -> bool:
        return self.kind != RUN


@dataclass
class TaskGraph:
    """A grid's tasks in an order where every task comes after the tasks it depends on."""

    tasks: list[Task]
    context: TaskContext | None = None
    """Where tasks record their outcome (database, cache, device): set once the grid is in the store."""
    _by_key: dict[str, Task] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._by_key = {task.key: task for task in self.tasks}

    def __len__(self) -> int:
        return len(self.tasks)

    def __getitem__(self, key: str) -> Task:
        return self._by_key[key]

    def get(self, key: str) -> Task | None:
        return self._by_key.get(key)

    @property
    def artifacts(self) -> list[Task]:
        return [t for t in self.tasks if t.is_artifact]

    @property
    def runs(self) -> list[Task]:
        return [t for t in self.tasks if not t.is_artifact]

    def dependencies(self, task: Task) -> list[Task]:
        return [self._by_key[key] for key in task.depends_on if key in self._by_key]

    def dependents(self, key: str) -> list[Task]:
        return [t for t in self.tasks if key in t.depends_on]

    def levels(self) -> list[list[Task]]:
        """Tasks by depth: level 0 depends on nothing, level n on tasks of lower levels only."""
        depth: dict[str, int] = {}
        for task in self.tasks:
            depth[task.key] = 1 + max((depth[d] for d in task.depends_on if d in depth), default=-1)
        levels: list[list[Task]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
        for task in self.tasks:
            levels[depth[task.key]].append(task)
        return levels

    def call(self, task: Task) -> TaskCall:
        """A picklable zero-argument callable that executes ``task`` wherever it is called."""
        from kdreg.execution.worker import TaskCall

        if self.context is None:
            raise RuntimeError("this task graph is a plan only: it has no store to record outcomes in")
        return TaskCall(task, self.context)

    def with_tasks(self, tasks: Iterable[Task]) -> TaskGraph:
        return TaskGraph(list(tasks), self.context)


def artifact_needs(job: Job) -> list[tuple[str, str]]:
    """The artifacts (kind, key) a run needs, in the order they are built."""
    needs = []
    if job.needs_fine_tuned_teacher:
        needs.append((FINE_TUNED_TEACHER, job.teacher_key))
    if job.stage in USES_PRETRAIN and job.pretrain_key is not None:
        needs.append((PRETRAINED_STUDENT, job.pretrain_key))
    return needs


def artifact_label(kind: str, job: Job) -> str:
    """What building an artifact means, for people."""
    if kind == FINE_TUNED_TEACHER:
        return f"fine-tune teacher {job.teacher.spec} on {job.benchmark.spec} (seed {job.seed})"
    student = job.student.spec if job.student else "?"
    corpus = job.corpus.spec if job.corpus else "?"
    loss = job.loss.spec if job.loss else "?"
    return f"distil {student} from {job.teacher.spec} on {corpus} with {loss} (seed {job.seed})"


def build_graph(jobs: Sequence[Job], cached: Callable[[str, str], bool]) -> TaskGraph:
    """The tasks that run ``jobs``: each run after the artifacts it needs that are not ``cached(kind, key)``.

    An artifact task comes right before the first run that needs it, so executing the
    graph in order builds each model when it is first wanted (and a process that runs
    tasks one by one keeps the models of one teacher together).
    """
    tasks: list[Task] = []
    built: set[str] = set()
    in_cache: dict[tuple[str, str], bool] = {}  # many runs share each artifact: ask the cache once
    for job in jobs:
        depends_on = []
        for kind, key in artifact_needs(job):
            if (kind, key) not in in_cache:
                in_cache[kind, key] = cached(kind, key)
            if in_cache[kind, key]:
                continue
            depends_on.append(key)
            if key not in built:
                built.add(key)
                tasks.append(Task(kind, key, JobSpec.of(job), artifact_label(kind, job)))
        tasks.append(Task(RUN, job.record.config_hash, JobSpec.of(job), job.label, tuple(depends_on)))
    return TaskGraph(tasks)
