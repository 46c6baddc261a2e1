"""The stages of a distillation study: what one run trains, on top of the artifacts it depends on.

* ``teacher`` — the fine-tuned teacher (an artifact), evaluated on every language: the
  reference row of every report;
* ``none`` — the student fine-tuned on the source language with hard labels only;
* ``finetune`` — the student trained on the same data with the KD loss against the
  fine-tuned teacher;
* ``pretrain`` — the student distilled from the *pre-trained* teacher on corpus text (an
  artifact), then fine-tuned with hard labels;
* ``both`` — ``pretrain``, then ``finetune``.

Every run also stores the parameter count of the model it evaluated (a result of split
``model``, metric ``parameters``): the teacher's row gives the teacher's size.

:class:`StagePipeline` is one process's view of that work on one device: it builds
artifacts when a task asks for one and runs runs, keeping plugin instances and the
fine-tuned teacher (and its logits) for the next task of the same process. A run never
builds an artifact: the task graph built it first, and a missing one is an error.

Every random step (a new classification head, a loss's projection, a training phase)
is seeded just before it happens, so a run's numbers do not depend on which process
runs it or what that process did before.
"""

from __future__ import annotations

from typing import Any

from kdreg.grid import USES_FINETUNED_TEACHER, USES_PRETRAIN, Job
from kdreg.pipeline import model_cache
from kdreg.pipeline.artifacts import (
    FINE_TUNED_TEACHER,
    PRETRAINED_STUDENT,
    ArtifactBuilder,
    cached_curve,
    load_cached,
)
from kdreg.pipeline.evaluate import EvaluationSets, evaluate
from kdreg.pipeline.loads import LoadLog
from kdreg.pipeline.phases import StepHook, Trainer
from kdreg.pipeline.teacher_side import FineTunedTeacher
from kdreg.pipeline.training import Device, seed_everything
from kdreg.plugins.resolve import PluginSet
from kdreg.plugins.spec import Head, LoadedModel
from kdreg.records import CHANCE_SPLIT, MODEL_SPLIT, PARAMETERS_METRIC, CurveRecord, ResultRecord

Curves = dict[str, CurveRecord]


class StagePipeline:
    """Builds artifacts and runs the stages of runs on one device, for one process's tasks."""

    def __init__(self, device: Device, plugins: PluginSet, *, log: model_cache.Log,
                 on_step: StepHook | None = None) -> None:
        self.device = device
        self.plugins = plugins
        self.trainer = Trainer(device, on_step)
        self.loads = LoadLog()
        self.teacher = FineTunedTeacher(device, self.loads)
        self.evaluation_sets = EvaluationSets()
        self.artifacts = ArtifactBuilder(self.trainer, plugins, log, self.loads)

    def build(self, kind: str, job: Job) -> bool:
        """Build the artifact of ``kind`` that ``job`` needs; False when it was in the cache already."""
        if kind == FINE_TUNED_TEACHER:
            return self.artifacts.fine_tuned_teacher(job)
        self.teacher.release()  # the fine-tuned teacher is not needed while pretraining: free its memory
        return self.artifacts.pretrained_student(job)

    def run(self, job: Job) -> tuple[list[ResultRecord], Curves]:
        """Train what the job's stage needs and evaluate it on every selected language."""
        benchmark = self.plugins.instance(job.benchmark)
        head = Head("classification", len(benchmark.labels()))
        curves: Curves = {}
        if job.stage == "teacher":
            saved = cached_curve(FINE_TUNED_TEACHER, job.teacher_key)
            if saved is not None:
                curves["teacher_finetune"] = saved
            loaded = self.teacher.model(job.teacher_key, head)
            self.loads.add_artifact(model_cache.require(FINE_TUNED_TEACHER, job.teacher_key),
                                    "fine-tuned teacher")
            max_length = job.hparams.teacher_finetune.max_length
        else:
            loaded = self._initial_student(job, head, curves)
            hp = job.hparams.finetune
            if job.stage in USES_FINETUNED_TEACHER and job.loss is not None:
                loss = job.loss.create()
                curve = self.trainer.finetune(
                    job, benchmark, loaded, hp, loss, "finetune_kd",
                    lambda examples, student: self.teacher.side(job, benchmark, examples, student, loss))
                curves["finetune_kd"] = CurveRecord(curve.steps, curve.losses)
            else:
                loss = self.plugins.hard_label_loss().create()
                curve = self.trainer.finetune(job, benchmark, loaded, hp, loss, "finetune")
                curves["finetune"] = CurveRecord(curve.steps, curve.losses)
            max_length = hp.max_length
        results = evaluate(loaded.model, loaded.tokenizer, benchmark, job.evaluated, max_length=max_length,
                           batch_size=job.hparams.eval_batch_size, device=self.device,
                           sets=self.evaluation_sets, benchmark_key=job.benchmark.spec)
        results += self._extra_scores(benchmark, loaded)
        results += self._chance_levels(benchmark, results)
        results.append(self._model_size(benchmark, loaded))
        return results, curves

    def _initial_student(self, job: Job, head: Head, curves: Curves) -> LoadedModel:
        """The student before task fine-tuning: distilled in pretraining (an artifact), or freshly built."""
        if job.stage in USES_PRETRAIN and job.pretrain_key is not None:
            saved = cached_curve(PRETRAINED_STUDENT, job.pretrain_key)
            if saved is not None:
                curves["pretrain_kd"] = saved
            path = model_cache.require(PRETRAINED_STUDENT, job.pretrain_key)
            self.loads.add_artifact(path, "student distilled in pretraining")
            seed_everything(job.seed)  # the classification head is new
            return load_cached(path, head)
        assert job.student is not None
        seed_everything(job.seed)
        loaded = self.plugins.instance(job.student).build(self.plugins.instance(job.teacher), head)
        self.loads.add("student", job.student.spec, head.kind, loaded)
        return loaded

    @staticmethod
    def _model_size(benchmark: Any, loaded: LoadedModel) -> ResultRecord:
        """The evaluated model's parameter count, as a result (how claims know a teacher's size)."""
        source = benchmark.source_language()
        count = sum(p.numel() for p in loaded.model.parameters())
        return ResultRecord(source, benchmark.normalize_language(source), MODEL_SPLIT, PARAMETERS_METRIC,
                            float(count), True)

    @staticmethod
    def _chance_levels(benchmark: Any, results: list[ResultRecord]) -> list[ResultRecord]:
        """The benchmark's chance level of each metric scored, as results (split ``chance``), when it says."""
        source = benchmark.source_language()
        out: list[ResultRecord] = []
        for metric in dict.fromkeys(r.metric for r in results):
            try:
                value = benchmark.chance_level(metric)
            except Exception:  # optional, as a report treats it: no chance line, never a failed run
                continue
            if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1:
                out.append(ResultRecord(source, benchmark.normalize_language(source), CHANCE_SPLIT, metric,
                                        float(value), True))
        return out

    @staticmethod
    def _extra_scores(benchmark: Any, loaded: LoadedModel) -> list[ResultRecord]:
        """The benchmark's own diagnostics of the final model, as results."""
        source = benchmark.source_language()
        return [ResultRecord(score.language, benchmark.normalize_language(score.language), score.split,
                             score.metric, float(score.value), score.language == source)
                for score in benchmark.extra_scores(loaded)]
