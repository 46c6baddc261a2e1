"""A grid as a task graph: which artifacts become tasks, the edges, what a dry run shows."""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tiny_world import invoke

from kdreg.execution.graph import RUN, JobSpec, build_graph
from kdreg.grid import Job, expand_grid
from kdreg.plugins.resolve import PluginSet
from kdreg.request import build_request


@dataclass
class FakeResolved:
    """Stands in for a ResolvedPlugin: the graph only needs name, spec and identity."""

    kind: str
    spec: str

    @property
    def name(self) -> str:
        return self.spec.split(":")[0]

    def identity(self) -> dict[str, Any]:
        return {"name": self.name, "spec": self.spec, "distribution": "kdreg", "version": "0.1.0"}


class FakeBenchmark:
    def languages(self) -> list[str]:
        return ["en", "de"]

    def source_language(self) -> str:
        return "en"


class FakePlugins:
    def resolve(self, kind: str, text: str) -> FakeResolved:
        return FakeResolved(kind, text)

    def resolve_loss(self, text: str) -> FakeResolved:
        return FakeResolved("loss", text)

    def instance(self, plugin: FakeResolved) -> FakeBenchmark:
        return FakeBenchmark()


def _jobs() -> list[Job]:
    request = build_request({"teacher": ["t"], "student": ["s1", "s2"], "loss": ["kl"], "benchmark": ["b"],
                             "corpus": ["c"], "stage": ["none", "finetune", "pretrain", "both"],
                             "seed": ["0", "1"]})
    return expand_grid(request, FakePlugins())  # type: ignore[arg-type]


def test_two_students_four_stages_two_seeds_have_exactly_the_expected_tasks_and_edges() -> None:
    jobs = _jobs()
    graph = build_graph(jobs, lambda kind, key: False)
    # per seed: one fine-tuned teacher, and one distilled student per student
    assert sorted((t.kind, t.job.seed, t.job.student) for t in graph.artifacts) == [
        ("student-pretrained", 0, "s1"), ("student-pretrained", 0, "s2"),
        ("student-pretrained", 1, "s1"), ("student-pretrained", 1, "s2"),
        ("teacher", 0, None), ("teacher", 1, None)]
    assert len(graph.runs) == 2 * (1 + 2 * 4) == 18
    teachers = {t.job.seed: t.key for t in graph.artifacts if t.kind == "teacher"}
    students = {(t.job.seed, t.job.student): t.key for t in graph.artifacts if t.kind == "student-pretrained"}
    for run in graph.runs:
        seed, stage, student = run.job.seed, run.job.stage, run.job.student
        expected = []
        if stage in ("teacher", "finetune", "both"):
            expected.append(teachers[seed])
        if stage in ("pretrain", "both"):
            expected.append(students[seed, student])
        assert list(run.depends_on) == expected, (stage, seed, student)
    # every task comes after what it depends on, and the levels say the same
    position = {t.key: i for i, t in enumerate(graph.tasks)}
    assert all(position[d] < position[t.key] for t in graph.tasks for d in t.depends_on)
    assert [len(level) for level in graph.levels()] == [6 + 2 * 2, 18 - 4]
    # a task is a small value that travels to another process
    assert pickle.loads(pickle.dumps(graph.tasks[-1])) == graph.tasks[-1]


def test_a_cached_artifact_is_not_a_task_and_nothing_waits_for_it() -> None:
    jobs = _jobs()
    cached_teachers = {j.teacher_key for j in jobs if j.seed == 0}
    graph = build_graph(jobs, lambda kind, key: kind == "teacher" and key in cached_teachers)
    assert sorted((t.kind, t.job.seed) for t in graph.artifacts if t.kind == "teacher") == [("teacher", 1)]
    for run in graph.runs:
        assert not set(run.depends_on) & cached_teachers


def test_a_job_rebuilt_from_its_spec_is_the_same_run(world: dict[str, str]) -> None:
    request = build_request({"teacher": [world["teacher"]], "student": ["layers:k=1"],
                             "loss": ["kl+0.5*hidden"], "benchmark": [world["benchmark"]],
                             "corpus": [world["corpus"]], "stage": ["both"], "lang": ["de"]},
                            Path(world["grid"]))
    jobs = expand_grid(request, PluginSet())
    for job in jobs:
        spec = pickle.loads(pickle.dumps(JobSpec.of(job)))
        again = spec.rebuild(PluginSet())  # as a worker in another process would
        assert again.record == job.record and again.evaluated == job.evaluated == ("en", "de")
        assert (again.teacher_key, again.pretrain_key) == (job.teacher_key, job.pretrain_key)


def test_dry_run_shows_the_graph_and_writes_nothing(world: dict[str, str], kdreg_home: Path) -> None:
    args = ["run", "--teacher", world["teacher"], "--student", "layers:k=1", "--benchmark",
            world["benchmark"], "--corpus", world["corpus"], "--config", world["grid"], "--dry-run"]
    shown = invoke(*args)
    assert shown.exit_code == 0, shown.output
    assert "models to build" in shown.output and "M1" in shown.output and "M2" in shown.output
    assert "5 to run, 0 skipped; 2 model(s) to build first" in shown.output
    data = json.loads(invoke(*args, "--format", "json").output)
    models = {m["id"]: m for m in data["models"]}
    assert {m["kind"] for m in models.values()} == {"fine-tuned teacher", "pretrained student"}
    needs = {r["stage"]: set(r["needs"].split()) for r in data["runs"]}
    teacher = next(i for i, m in models.items() if m["kind"] == "fine-tuned teacher")
    student = next(i for i, m in models.items() if m["kind"] == "pretrained student")
    assert needs == {"teacher": {teacher}, "none": set(), "finetune": {teacher}, "pretrain": {student},
                     "both": {teacher, student}}
    assert models[teacher]["needed_by"] == 3 and models[student]["needed_by"] == 2
    assert not (kdreg_home / "kdreg.db").exists()


def test_run_tasks_are_recorded_with_the_grid(world: dict[str, str], kdreg_home: Path) -> None:
    import sqlite3

    done = invoke("run", "--teacher", world["teacher"], "--student", "layers:k=1", "--benchmark",
                  world["benchmark"], "--stage", "none,finetune", "--config", world["grid"])
    assert done.exit_code == 0, done.output
    with sqlite3.connect(kdreg_home / "kdreg.db") as db:
        tasks = db.execute("SELECT kind, status, depends_on, pid IS NOT NULL FROM tasks ORDER BY id")
        tasks = tasks.fetchall()
    assert [(kind, status) for kind, status, _, _ in tasks] == [
        ("teacher", "succeeded"), (RUN, "succeeded"), (RUN, "succeeded"), (RUN, "succeeded")]
    assert all(has_pid for *_, has_pid in tasks)
    teacher_key = None
    with sqlite3.connect(kdreg_home / "kdreg.db") as db:
        teacher_key = db.execute("SELECT key FROM tasks WHERE kind = 'teacher'").fetchone()[0]
    assert [json.loads(deps) for _, _, deps, _ in tasks[1:]] == [[teacher_key], [], [teacher_key]]


def test_first_use_notes_ask_each_teacher_once_and_survive_a_plugin_bug() -> None:
    """Teacher.first_use is an optional courtesy: one that raises or returns a non-text says nothing."""
    from types import SimpleNamespace

    from kdreg.execution.plan import first_use_notes

    asked: list[str] = []

    def teacher(spec: str, answer: object) -> SimpleNamespace:
        def first_use() -> object:
            asked.append(spec)
            if isinstance(answer, Exception):
                raise answer
            return answer
        return SimpleNamespace(spec=spec, plugin=SimpleNamespace(first_use=first_use))

    teachers = [teacher("new-world", "pretrained first"), teacher("buggy", RuntimeError("oops")),
                teacher("odd", 42), teacher("ready", None), teacher("offline", "never asked")]
    items = [SimpleNamespace(job=SimpleNamespace(teacher=t)) for t in teachers * 3]
    plan = SimpleNamespace(to_run=items)
    plugins = SimpleNamespace(instance=lambda resolved: resolved.plugin)
    notes = first_use_notes(plan, plugins, unavailable=[("teacher", "offline")])  # type: ignore[arg-type]
    assert notes == [("new-world", "pretrained first")]
    assert asked == ["new-world", "buggy", "odd", "ready"]  # once each; an unavailable one not at all
