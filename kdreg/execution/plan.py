"""Planning a grid against the store: preflight, what runs and what is skipped, the task graph.

Nothing is written before the preflight passes (every plugin instantiates and its
``check()`` passes, including the hard-label loss and the executor; every corpus that
must report its size does), so an unknown model or an offline hub gives one error line
and an untouched database — one line for all of them: every plugin is checked, and every
model and dataset that cannot be had is named in it (a dry run shows the plan with them
marked instead).

Each run is then *run* or *skipped* by its status in the store: succeeded runs are
skipped (``--force`` runs them again), failed ones too (``--retry-failed``), a run whose
heartbeat is fresh belongs to another process and is left alone even with ``--force``,
and a stale one (its process died) is run again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from kdreg.errors import DataError, KdregError, ModelUnavailableError, ObtainableError, UnavailableError
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


def preflight(jobs: Sequence[Job], plugins: PluginSet, *, gather: bool = False
              ) -> dict[tuple[str, str], KdregError]:
    """Instantiate every distinct plugin and run its ``check()``; and pretraining lengths.

    A model or dataset that cannot be had (:class:`ModelUnavailableError`, :class:`DataError`)
    does not stop the checks: every plugin of the grid is checked, and all of them are
    reported at once in one :class:`UnavailableError` — or, with ``gather``, returned
    ((kind, specification) → error) so that a dry run can show the plan and mark them.
    """
    from kdreg.pipeline.phases import pretrain_steps
    from kdreg.store.limits import check_lengths
    from kdreg.store.schema import Run

    for job in jobs:  # a spec longer than the store keeps is refused before the grid is recorded
        check_lengths(Run, job.record.__dict__, "run")
    plugins.hard_label_loss().create()  # resolved like any plugin: an allow-list without kdreg fails here
    problems: dict[tuple[str, str], KdregError] = {}

    def attempt(kind: str, spec: str, check: Callable[[], object]) -> None:
        if (kind, spec) in problems:
            return
        try:
            check()
        except (ModelUnavailableError, DataError) as exc:
            problems[kind, spec] = exc

    losses: set[str] = set()
    corpora: set[tuple[str, int, float]] = set()
    for job in jobs:
        for kind, plugin in (("teacher", job.teacher), ("student", job.student), ("benchmark", job.benchmark),
                             ("corpus", job.corpus)):
            if plugin is not None:
                attempt(kind, plugin.spec, lambda plugin=plugin: plugins.checked(plugin))
        if job.loss is not None and job.loss.spec not in losses:
            losses.add(job.loss.spec)
            job.loss.create()
        corpus = job.corpus
        if job.stage in USES_PRETRAIN and corpus is not None and ("corpus", corpus.spec) not in problems:
            hp = job.hparams.pretrain
            if (corpus.spec, hp.max_steps, hp.epochs) not in corpora:
                corpora.add((corpus.spec, hp.max_steps, hp.epochs))
                attempt("corpus", corpus.spec,
                        lambda c=corpus, hp=hp: pretrain_steps(hp, plugins.instance(c), c.spec))
    check_pairings(jobs, plugins, {spec for _, spec in problems})
    if len(problems) == 1 and not gather:
        raise next(iter(problems.values()))  # one problem: the plugin's own error, as it was
    if problems and not gather:
        raise UnavailableError(describe_unavailable(problems), problems)
    return problems


def check_pairings(jobs: Sequence[Job], plugins: PluginSet, unavailable: set[str]) -> None:
    """Refuse now what would fail, or mean nothing, only once a run trains.

    Each student is asked whether it can be built for its teacher (``check_teacher``:
    ``layers:k`` beyond the teacher's depth); for KD during pretraining, a teacher whose
    masked-LM head was never trained and a student with another vocabulary are refused
    (:mod:`kdreg.plugins.compatibility`). Each teacher is previewed once and each teacher ×
    student pair checked once; plugins that could not be had (``unavailable`` specs) are
    not asked again.
    """
    from kdreg.plugins.compatibility import (
        new_head_allowed,
        reads_teacher_mlm,
        refuse_other_vocabulary,
        refuse_untrained_mlm_head,
    )
    from kdreg.plugins.spec import Head

    previews: dict[str, object] = {}
    losses: dict[str, object] = {}
    pairs: set[tuple[str, str, bool]] = set()
    for job in jobs:
        if job.student is None or job.teacher.spec in unavailable or job.student.spec in unavailable:
            continue
        teacher_spec, student_spec = job.teacher.spec, job.student.spec
        teacher = plugins.instance(job.teacher)
        pretraining_kd = False
        if job.stage in USES_PRETRAIN and job.loss is not None:
            loss = losses.get(job.loss.spec) or losses.setdefault(job.loss.spec, job.loss.create())
            pretraining_kd = bool(getattr(loss, "uses_teacher", True))
            if reads_teacher_mlm(loss) and not new_head_allowed(teacher):
                if teacher_spec not in previews:
                    preview = getattr(teacher, "preview_load", None)
                    previews[teacher_spec] = preview(Head("mlm")) if callable(preview) else None
                refuse_untrained_mlm_head(previews[teacher_spec],  # type: ignore[arg-type]
                                          teacher=teacher_spec, loss=job.loss.spec)
        if (teacher_spec, student_spec, pretraining_kd) in pairs:
            continue
        pairs.add((teacher_spec, student_spec, pretraining_kd))
        student = plugins.instance(job.student)
        check_teacher = getattr(student, "check_teacher", None)
        if callable(check_teacher):
            check_teacher(teacher)
        if pretraining_kd:
            refuse_other_vocabulary(teacher, student, teacher_spec=teacher_spec, student_spec=student_spec)


def first_use_notes(plan: Plan, plugins: PluginSet, unavailable: Iterable[tuple[str, str]] = ()
                    ) -> list[tuple[str, str]]:
    """(teacher spec, what its first load does) for the teachers of the runs to do that build first.

    Asked of each teacher once (``Teacher.first_use``, optional); a teacher that cannot be
    had here is left to the line about what is unavailable.
    """
    missing = {spec for kind, spec in unavailable if kind == "teacher"}
    notes: dict[str, str | None] = {}
    for item in plan.to_run:
        teacher = item.job.teacher
        if teacher.spec in notes or teacher.spec in missing:
            continue
        first_use = getattr(plugins.instance(teacher), "first_use", None)
        try:
            note = first_use() if callable(first_use) else None
        except Exception:  # an optional courtesy: a plugin's bug here must not stop the grid
            note = None
        notes[teacher.spec] = note if isinstance(note, str) else None
    return [(spec, note) for spec, note in notes.items() if note]


def describe_unavailable(problems: Mapping[tuple[str, str], KdregError]) -> str:
    """One line for every model and dataset a grid cannot have, with the advice said once.

    What is missing only because the Hub is unreachable is listed by name, followed by
    how to point at local copies; any other problem keeps its plugin's own message.
    """
    from kdreg.hub import offline_reason

    if len(problems) == 1:
        return str(next(iter(problems.values())))
    offline = {key: e for key, e in problems.items() if isinstance(e, ObtainableError) and e.missing}
    parts = []
    if offline:
        items = "; ".join(f"{kind} {e.missing}" for (kind, _), e in offline.items())
        instead = ", ".join(dict.fromkeys(str(e.instead) for e in offline.values()))
        parts.append(
            f"{offline_reason()} and {len(offline)} "
            f"models and datasets of this grid are not in the local cache: {items}; pass local copies "
            f"({instead}), set HF_HOME to a cache that has them, or run once with network access")
    parts += [str(e).rstrip(".") for key, e in problems.items() if key not in offline]
    if len(parts) == 1:
        return parts[0][:1].upper() + parts[0][1:] + "."
    return f"{len(problems)} things this grid needs are not available: {' — '.join(parts)}."
