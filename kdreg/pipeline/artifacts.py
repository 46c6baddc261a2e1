"""Artifacts: the intermediate models a grid builds once and every run that needs them shares.

* the **fine-tuned teacher** — the teacher trained on the source-language task with hard
  labels (key: teacher × benchmark × seed × teacher fine-tuning);
* the **student distilled in pretraining** — the student trained against the
  *pre-trained* teacher on corpus text (key: teacher × student × loss × corpus × seed ×
  pretraining).

Each is built by its own task (:mod:`kdreg.execution`) before the runs that depend on it,
into the model cache (:mod:`kdreg.pipeline.model_cache`), with its loss curve beside the
weights; a run only ever loads it. Every random step is seeded just before it happens,
so an artifact's weights do not depend on which process builds it or what it did before.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kdreg.errors import DataError
from kdreg.grid import Job
from kdreg.pipeline import model_cache
from kdreg.pipeline.loads import ABOUT_KEY, LoadLog
from kdreg.pipeline.phases import Trainer, geometry
from kdreg.pipeline.shared_teacher import SharedTeacher
from kdreg.pipeline.training import Curve, seed_everything
from kdreg.plugins.compatibility import (
    new_head_allowed,
    other_vocabulary_error,
    reads_teacher_mlm,
    refuse_untrained_mlm_head,
    same_vocabulary,
)
from kdreg.plugins.resolve import PluginSet
from kdreg.plugins.spec import Head, LoadedModel, LoadReport
from kdreg.records import CurveRecord

FINE_TUNED_TEACHER = "teacher"
PRETRAINED_STUDENT = "student-pretrained"
"""Artifact kinds: also the prefix of their folders in the model cache."""
CURVE_FILE = "curve.json"


def load_cached(path: Path, head: Head, *, fine_tuned: bool = False) -> LoadedModel:
    """A cached model folder loaded with the requested head (``fine_tuned``: a trained classifier, checked).

    kdreg saved these weights itself, so a head the folder lacks (the masked-LM head of a
    student distilled in pretraining, the classifier of a fine-tuned teacher) means a
    damaged cache, not a new head to train.
    """
    from transformers import (
        AutoConfig,
        AutoModelForMaskedLM,
        AutoModelForSequenceClassification,
        AutoTokenizer,
    )

    tokenizer = AutoTokenizer.from_pretrained(path)
    if head.kind == "mlm":
        model, info = AutoModelForMaskedLM.from_pretrained(path, output_loading_info=True)
    else:
        saved = AutoConfig.from_pretrained(path)
        if fine_tuned and saved.num_labels != head.num_labels:
            raise DataError(
                f"The cached fine-tuned teacher {path.name} has {saved.num_labels} labels but the "
                f"benchmark now has {head.num_labels}: its data changed since it was trained. Clear it "
                f"(`kdreg cache clear`) and re-run with --force."
            )
        model, info = AutoModelForSequenceClassification.from_pretrained(
            path, num_labels=head.num_labels, output_loading_info=True)
    report = LoadReport.from_loading_info(model, info)
    if (head.kind == "mlm" or fine_tuned) and report.new_head:
        raise DataError(
            f"The cached model {path.name} lacks its trained {head.kind} head ({report.describe()}); the "
            f"cache is damaged: clear it (`kdreg cache clear {path.name}`) and run again."
        )
    return LoadedModel(model=model, tokenizer=tokenizer, load_report=report)


def cached_curve(kind: str, key: str) -> CurveRecord | None:
    """The loss curve saved with an artifact (None when it has none)."""
    path = model_cache.require(kind, key) / CURVE_FILE
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    return CurveRecord(steps=list(data["steps"]), losses=list(data["losses"]))


def _save(folder: Path, loaded: LoadedModel, curve: Curve, about: dict[str, Any]) -> None:
    """Weights, tokenizer and loss curve, and what the model is (``kdreg cache`` lists it)."""
    model_cache.save_model(folder, loaded.model, loaded.tokenizer)
    (folder / CURVE_FILE).write_text(json.dumps(curve.__dict__))
    model_cache.write_about(folder, about)


def describe(kind: str, job: Job) -> dict[str, Any]:
    """What an artifact of ``job`` is: its kind, the plugins that made it (specs) and the seed."""
    if kind == FINE_TUNED_TEACHER:
        return {"kind": kind, "teacher": job.teacher.spec, "benchmark": job.benchmark.spec, "seed": job.seed}
    return {"kind": kind, "teacher": job.teacher.spec, "student": job.student.spec if job.student else None,
            "loss": job.loss.spec if job.loss else None, "corpus": job.corpus.spec if job.corpus else None,
            "seed": job.seed}


class ArtifactBuilder:
    """Builds the artifacts of one process's tasks (each at most once: a cached one is left as it is)."""

    def __init__(self, trainer: Trainer, plugins: PluginSet, log: model_cache.Log, loads: LoadLog) -> None:
        self.trainer = trainer
        self.plugins = plugins
        self.log = log
        self.loads = loads

    def fine_tuned_teacher(self, job: Job) -> bool:
        """Fine-tune ``job``'s teacher on its benchmark's source language; False when it was cached."""
        benchmark = self.plugins.instance(job.benchmark)

        def create(folder: Path) -> None:
            self.log(f"fine-tuning teacher {job.teacher.spec} on {job.benchmark.spec}")
            head = Head("classification", len(benchmark.labels()))
            seed_everything(job.seed)
            first = len(self.loads.entries)
            loaded = self.plugins.instance(job.teacher).load(head)
            self.loads.add("teacher", job.teacher.spec, head.kind, loaded)
            curve = self.trainer.finetune(job, benchmark, loaded, job.hparams.teacher_finetune,
                                          self.plugins.hard_label_loss().create(), "teacher_finetune")
            _save(folder, loaded, curve, {**describe(FINE_TUNED_TEACHER, job),
                                          ABOUT_KEY: self.loads.entries[first:]})

        _, made = model_cache.get_or_create(FINE_TUNED_TEACHER, job.teacher_key, create)
        return made

    def pretrained_student(self, job: Job) -> bool:
        """Distil ``job``'s student from the pre-trained teacher on its corpus; False when it was cached."""
        from kdreg.pipeline.teacher_side import live_side

        student_plugin, loss_plugin, corpus_plugin = job.student, job.loss, job.corpus
        if student_plugin is None or loss_plugin is None or corpus_plugin is None or job.pretrain_key is None:
            raise ValueError(f"{job.label} has no student distilled in pretraining")

        def create(folder: Path) -> None:
            self.log(f"distilling {student_plugin.spec} from {job.teacher.spec} on {corpus_plugin.spec}")
            teacher_plugin = SharedTeacher(self.plugins.instance(job.teacher))
            loss = loss_plugin.create()
            first = len(self.loads.entries)
            seed_everything(job.seed)
            student = self.plugins.instance(student_plugin).build(teacher_plugin, Head("mlm"))
            self.loads.add("student", student_plugin.spec, "mlm", student)
            teacher = None
            if loss.uses_teacher:
                if not same_vocabulary(teacher_plugin.tokenizer(), student.tokenizer):
                    raise other_vocabulary_error(job.teacher.spec, student_plugin.spec)
                teacher = teacher_plugin.distil_from(Head("mlm"), student.model)
                self.loads.add("teacher", job.teacher.spec, "mlm", teacher)
                if reads_teacher_mlm(loss) and not new_head_allowed(teacher_plugin):
                    refuse_untrained_mlm_head(teacher.load_report, teacher=job.teacher.spec,
                                              loss=loss_plugin.spec)
            seed_everything(job.seed)
            extra = loss.prepare(geometry(teacher.model) if teacher else None, geometry(student.model),
                                 "pretrain")
            side = live_side(teacher.model, loss, self.trainer.device) if teacher is not None else None
            corpus = self.plugins.instance(corpus_plugin)
            curve = self.trainer.pretrain(job, corpus, student, loss, side, extra)
            _save(folder, student, curve, {**describe(PRETRAINED_STUDENT, job),
                                           ABOUT_KEY: self.loads.entries[first:]})

        _, made = model_cache.get_or_create(PRETRAINED_STUDENT, job.pretrain_key, create)
        return made
