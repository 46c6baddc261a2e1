"""Planning a grid against the store: preflight, what runs and what is skipped, the task graph.

Nothing is written before the preflight passes (every plugin instantiates and its
``check()`` passes, including the hard-label loss and the executor; every corpus that
must report its size does), so an unknown model or an offline hub gives one error line
and an untouched database.

Each run is then *run* or *skipped* by its status in the store: succeeded runs are
skipped (``--force`` runs them again), failed ones too (``--retry-failed``), a run whose
heartbeat is fresh belongs to another process and is left alone even with ``--force``,
and a stale one (its process died) is run again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from kdreg.execution.engines import engine_held
from kdreg.execution.graph import TaskGraph, build_graph
from kdreg.grid import USES_PRETRAIN, Job
from kdreg.pipeline import model_cache
from kdreg.plugins.resolve import PluginSet
from kdreg.store.status import RunState
from kdreg.store.store import Store


@dataclass(frozen=True)
class PlanItem:
    """A job and what the grid will do with it."""

    job: Job
    previous: str | None
    """Status in the store before this grid ('stale': running, but its process died); None when new."""
    action: str
    """'run' or 'skip'."""
    attempts: int = 0
    """The run's claim count as planned (see Store.claim_run)."""


@dataclass
class Plan:
    """What a grid will do: every job with its action, and the tasks that carry out the runs."""

    items: list[PlanItem]
    graph: TaskGraph
    retry_failed: bool = False
    force: bool = False
    held: dict[str, str] = field(default_factory=dict)
    """Run hash → the engine job that has it queued or running (such runs are skipped)."""

    @property
    def to_run(self) -> list[PlanItem]:
        return [i for i in self.items if i.action == "run"]


def decide(previous: str | None, *, retry_failed: bool, force: bool) -> str:
    """'run' or 'skip' for a run whose stored status is ``previous`` (None: not stored)."""
    if previous == "running":  # another process is on it right now, even with --force
        return "skip"
    if force or previous in (None, "pending", "interrupted", "stale"):
        return "run"
    if previous == "failed":
        return "run" if retry_failed else "skip"
    return "skip"


def plan_items(jobs: Sequence[Job], states: dict[str, RunState], *, retry_failed: bool = False,
               force: bool = False, held: dict[str, str] | None = None) -> list[PlanItem]:
    """Each job with its action, from the stored states of the runs (absent: new).

    A run in ``held`` is queued or running in an engine (a Slurm job): 'queued', skipped.
    """
    items = []
    for job in jobs:
        state = states.get(job.record.config_hash)
        previous = state.status if state else None
        if held and job.record.config_hash in held and previous not in ("running", "succeeded"):
            previous = "queued"
        action = "skip" if previous == "queued" else decide(previous, retry_failed=retry_failed, force=force)
        items.append(PlanItem(job, previous, action, state.attempts if state else 0))
    return items


def plan_grid(store: Store | None, jobs: Sequence[Job], *, retry_failed: bool = False,
              force: bool = False) -> Plan:
    """The plan of ``jobs`` against ``store`` (None: a dry run before any database exists; all new)."""
    hashes = [j.record.config_hash for j in jobs]
    states = store.run_states(hashes) if store is not None else {}
    held = engine_held(store, hashes) if store is not None else {}
    items = plan_items(jobs, states, retry_failed=retry_failed, force=force, held=held)
    graph = build_graph([i.job for i in items if i.action == "run"], model_cache.is_complete)
    return Plan(items, graph, retry_failed, force, held)


def preflight(jobs: Sequence[Job], plugins: PluginSet) -> None:
    """Instantiate every distinct plugin and run its ``check()``; and pretraining lengths."""
    from kdreg.pipeline.phases import pretrain_steps

    plugins.hard_label_loss().create()  # resolved like any plugin: an allow-list without kdreg fails here
    losses: set[str] = set()
    corpora: set[tuple[str, int, float]] = set()
    for job in jobs:
        for plugin in (job.teacher, job.student, job.benchmark, job.corpus):
            if plugin is not None:
                plugins.checked(plugin)
        if job.loss is not None and job.loss.spec not in losses:
            losses.add(job.loss.spec)
            job.loss.create()
        if job.stage in USES_PRETRAIN and job.corpus is not None:
            hp = job.hparams.pretrain
            if (job.corpus.spec, hp.max_steps, hp.epochs) not in corpora:
                corpora.add((job.corpus.spec, hp.max_steps, hp.epochs))
                pretrain_steps(hp, plugins.instance(job.corpus), job.corpus.spec)
