"""The stages of a distillation study, one job at a time.

* ``teacher`` — the teacher fine-tuned on the source-language task (hard labels), then
  evaluated on every language: the reference row of every report;
* ``none`` — the student fine-tuned on the source language with hard labels only;
* ``finetune`` — the student trained on the same data with the KD loss against the
  fine-tuned teacher;
* ``pretrain`` — the student distilled from the *pre-trained* teacher on corpus text
  (masked-LM batches), then fine-tuned with hard labels;
* ``both`` — ``pretrain``, then ``finetune``.

The fine-tuned teacher and the pretraining-distilled student are cached models (see
:mod:`kdreg.pipeline.model_cache`), shared by every job with the same key; one that
failed is not attempted again by the later jobs of the same grid. When the loss reads
only logits, the fine-tuned teacher's logits on the training set are computed once and
looked up by example — the same numbers as a live teacher in eval mode, at a fraction of
the cost, and valid even when the student has a tokenizer of its own. Losses that
compare hidden states or attention maps get a live teacher (kept loaded from one job to
the next) and need teacher and student to read the same token ids; that is checked
before any training.

Every random step (a new classification head, a loss's projection, a training phase)
is seeded just before it happens, so a job's numbers do not depend on which cached
models already existed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from kdreg.errors import ConfigError, DataError, IncompatiblePluginsError, KdregError
from kdreg.grid import USES_PRETRAIN, Job
from kdreg.pipeline import model_cache
from kdreg.pipeline.data import Encoded, encode_examples, labelled_batches, mlm_batches
from kdreg.pipeline.evaluate import evaluate, evaluation_languages, logits_for
from kdreg.pipeline.hparams import PretrainHParams, TrainHParams
from kdreg.pipeline.instances import PluginInstances, SharedTeacher
from kdreg.pipeline.training import (
    Curve,
    Device,
    forward,
    seed_everything,
    steps_for,
    train,
    use_eager_attention,
)
from kdreg.plugins.spec import Head, LoadedModel, ModelGeometry, ModelOutputs
from kdreg.store.store import ResultRecord

Log = Callable[[str], None]
StepHook = Callable[[str, int, int, float], None]
"""(phase, step, total_steps, loss) after every optimiser step."""


class DependencyFailedError(KdregError):
    """A model this run needs (fine-tuned teacher, distilled student) failed earlier in the grid."""


def geometry(config: Any) -> ModelGeometry:
    """Sizes a loss may check, read from a transformers config (BERT, XLM-R and DistilBERT names)."""
    cfg = getattr(config, "config", config)
    return ModelGeometry(
        vocab_size=int(cfg.vocab_size),
        hidden_size=int(cfg.hidden_size),
        num_layers=int(getattr(cfg, "num_hidden_layers", None) or cfg.n_layers),
        num_heads=int(getattr(cfg, "num_attention_heads", None) or cfg.n_heads),
    )


def same_vocabulary(a: Any, b: Any) -> bool:
    """Whether two tokenizers map text to the same ids."""
    return a is b or (len(a) == len(b) and a.get_vocab() == b.get_vocab())


def load_cached(path: Path, head: Head, *, fine_tuned: bool = False) -> LoadedModel:
    """A cached model folder loaded with the requested head (``fine_tuned``: a trained one, checked)."""
    from transformers import (
        AutoConfig,
        AutoModelForMaskedLM,
        AutoModelForSequenceClassification,
        AutoTokenizer,
    )

    tokenizer = AutoTokenizer.from_pretrained(path)
    if head.kind == "mlm":
        model = AutoModelForMaskedLM.from_pretrained(path)
    else:
        saved = AutoConfig.from_pretrained(path)
        if fine_tuned and saved.num_labels != head.num_labels:
            raise DataError(
                f"The cached fine-tuned teacher {path.name} has {saved.num_labels} labels but the "
                f"benchmark now has {head.num_labels}: its data changed since it was trained. Clear it "
                f"(`kdreg cache clear`) and re-run with --force."
            )
        model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=head.num_labels)
    return LoadedModel(model=model, tokenizer=tokenizer)


def _endless(encoded: list[Encoded], batch_size: int, pad_id: int, seed: int) -> Iterator[dict[str, Any]]:
    import random

    import torch

    rng = random.Random(seed)
    while True:
        for order, batch in labelled_batches(encoded, batch_size, pad_id, rng):
            batch["index"] = torch.tensor(order, dtype=torch.long)
            yield batch


def pretrain_steps(hp: PretrainHParams, corpus: Any, corpus_spec: str) -> int:
    """Optimiser steps of KD during pretraining: ``max_steps``, or epochs over the corpus's lines."""
    if hp.max_steps > 0:
        return hp.max_steps
    sizes = corpus.sizes()
    if not sizes:
        raise ConfigError(
            f"[pretrain] epochs needs to know the corpus size, but {corpus_spec} does not report one; "
            "set [pretrain] max_steps instead."
        )
    return steps_for(sum(int(n) for n in sizes.values()), hp.batch_size, hp.epochs, 0)


class StageRunner:
    """Executes jobs on one device, sharing plugin instances, cached models and teacher logits across them."""

    def __init__(self, device: Device, *, log: Log, on_step: StepHook | None = None,
                 instances: PluginInstances | None = None) -> None:
        self.device = device
        self.log = log
        self.on_step = on_step
        self.instances = instances or PluginInstances()
        self._teacher_logits: dict[tuple[str, int], Any] = {}
        self._held: tuple[str, LoadedModel] | None = None
        """The fine-tuned teacher last used (its key and model), kept for the next job that needs it."""
        self._failed: dict[tuple[str, str], str] = {}
        self._hard_label_loss: Any = None

    # ------------------------------------------------------------------ entry
    def run(self, job: Job) -> tuple[list[ResultRecord], dict[str, Curve]]:
        """Train what the job's stage needs and evaluate it on every selected language."""
        benchmark = self.instances.get(job.benchmark)
        languages = evaluation_languages(benchmark, job.languages, job.benchmark.spec)
        head = Head("classification", len(benchmark.labels()))
        curves: dict[str, Curve] = {}
        if job.stage == "teacher":
            path, curve = self.fine_tuned_teacher(job, benchmark)
            if curve is not None:
                curves["teacher_finetune"] = curve
            loaded = self._fine_tuned_model(job.teacher_key, path, head)
            max_length = job.hparams.teacher_finetune.max_length
        else:
            loaded = self._initial_student(job, head, curves)
            if job.stage in ("finetune", "both"):
                curves["finetune_kd"] = self._finetune(job, benchmark, loaded, job.hparams.finetune,
                                                       job.loss.create(), "finetune_kd")
            else:
                curves["finetune"] = self._finetune(job, benchmark, loaded, job.hparams.finetune, self._ce(),
                                                    "finetune")
            max_length = job.hparams.finetune.max_length
        results = evaluate(loaded.model, loaded.tokenizer, benchmark, languages, max_length=max_length,
                           batch_size=job.hparams.eval_batch_size, device=self.device)
        results += self._extra_scores(benchmark, loaded)
        return results, curves

    # ------------------------------------------------------------------ models
    def fine_tuned_teacher(self, job: Job, benchmark: Any) -> tuple[Path, Curve | None]:
        """The teacher fine-tuned on the source language (trained once per key, then cached)."""
        made: dict[str, Curve] = {}

        def create(folder: Path) -> None:
            self.log(f"fine-tuning teacher {job.teacher.spec} on {job.benchmark.spec}")
            seed_everything(job.seed)
            loaded = self.instances.get(job.teacher).load(Head("classification", len(benchmark.labels())))
            made["curve"] = self._finetune(job, benchmark, loaded, job.hparams.teacher_finetune, self._ce(),
                                           "teacher_finetune")
            model_cache.save_model(folder, loaded.model, loaded.tokenizer)
            (folder / "curve.json").write_text(json.dumps(made["curve"].__dict__))

        path = self._cached("teacher", job.teacher_key, create, f"fine-tuned teacher {job.teacher.spec}")
        if "curve" not in made and (path / "curve.json").exists():
            cached = Curve(**json.loads((path / "curve.json").read_text()))
            return path, cached if job.stage == "teacher" else None
        return path, made.get("curve")

    def pretrained_student(self, job: Job) -> tuple[Path, Curve | None]:
        """The student distilled from the pre-trained teacher on the corpus (cached per key)."""
        made: dict[str, Curve] = {}

        def create(folder: Path) -> None:
            self._held = None  # the fine-tuned teacher is not needed while pretraining: free its memory
            self.log(f"distilling {job.student.spec} from {job.teacher.spec} on {job.corpus.spec}")
            teacher_plugin = SharedTeacher(self.instances.get(job.teacher))
            loss = job.loss.create()
            seed_everything(job.seed)
            student = self.instances.get(job.student).build(teacher_plugin, Head("mlm"))
            teacher = None
            if loss.uses_teacher:
                if not same_vocabulary(teacher_plugin.tokenizer(), student.tokenizer):
                    raise IncompatiblePluginsError(
                        "KD during pretraining compares masked-LM outputs token by token, which needs "
                        f"teacher and student to share a tokenizer, but {job.student.spec} and "
                        f"{job.teacher.spec} do not; use a student derived from the teacher (layers:k=N or "
                        "small), or this student with --stage finetune or none."
                    )
                teacher = teacher_plugin.distil_from(Head("mlm"), student.model)
            seed_everything(job.seed)
            extra = loss.prepare(geometry(teacher.model) if teacher else None, geometry(student.model),
                                 "pretrain")
            made["curve"] = self._pretrain(job, student, teacher, loss, extra)
            model_cache.save_model(folder, student.model, student.tokenizer)
            (folder / "curve.json").write_text(json.dumps(made["curve"].__dict__))

        path = self._cached("student-pretrained", job.pretrain_key or "", create,
                            f"student {job.student.spec} distilled in pretraining")
        if "curve" not in made and (path / "curve.json").exists():
            return path, Curve(**json.loads((path / "curve.json").read_text()))
        return path, made.get("curve")

    def _cached(self, kind: str, key: str, create: Callable[[Path], None], what: str) -> Path:
        """A cached model, made now if missing; one whose making failed is not tried again in this grid."""
        if (kind, key) in self._failed:
            raise DependencyFailedError(
                f"The {what} this run needs failed earlier in this grid ({self._failed[kind, key]}); "
                "fix that (`kdreg show RUN` gives its traceback) and run again with --retry-failed."
            )
        try:
            path, _ = model_cache.get_or_create(kind, key, create)
        except Exception as exc:
            self._failed[kind, key] = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
            raise
        return path

    def _initial_student(self, job: Job, head: Head, curves: dict[str, Curve]) -> LoadedModel:
        """The student before task fine-tuning: distilled in pretraining (cached), or freshly built."""
        if job.stage in USES_PRETRAIN:
            path, curve = self.pretrained_student(job)
            if curve is not None:
                curves["pretrain_kd"] = curve
            seed_everything(job.seed)  # the classification head is new
            return load_cached(path, head)
        seed_everything(job.seed)
        return self.instances.get(job.student).build(self.instances.get(job.teacher), head)

    def _fine_tuned_model(self, key: str, path: Path, head: Head) -> LoadedModel:
        """The fine-tuned teacher's model, loaded once and kept while jobs keep asking for the same one."""
        if self._held is None or self._held[0] != key:
            self._held = None
            self._held = (key, load_cached(path, head, fine_tuned=True))
        return self._held[1]

    # ------------------------------------------------------------------ phases
    def _pretrain(self, job: Job, student: LoadedModel, teacher: LoadedModel | None, loss: Any,
                  extra: Any) -> Curve:
        from kdreg.sampling import mix_languages

        hp = job.hparams.pretrain
        corpus = self.instances.get(job.corpus)
        total = pretrain_steps(hp, corpus, job.corpus.spec)
        texts = (text for _language, text in mix_languages(corpus, alpha=hp.language_alpha, seed=job.seed))
        batches = mlm_batches(student.tokenizer, texts, batch_size=hp.batch_size, max_length=hp.max_length,
                              mlm_probability=hp.mlm_probability, seed=job.seed)
        teacher_side = self._live_teacher(teacher.model, loss) if teacher is not None else None
        return self._train(job, student, loss, "pretrain", batches, total, hp, teacher_side, extra,
                           "pretrain_kd")

    def _finetune(self, job: Job, benchmark: Any, loaded: LoadedModel, hp: TrainHParams, loss: Any,
                  phase: str) -> Curve:
        source = benchmark.source_language()
        examples = benchmark.examples(source, "train")
        encoded = encode_examples(loaded.tokenizer, examples, hp.max_length)
        if not encoded:
            raise DataError(f"Benchmark {job.benchmark.spec} has no training examples in {source!r}.")
        total = steps_for(len(encoded), hp.batch_size, hp.epochs, hp.max_steps)
        teacher_side, teacher_geometry = None, None
        if loss.uses_teacher:
            teacher_side, teacher_geometry = self._fine_tuned_teacher_side(job, benchmark, examples, loaded,
                                                                           loss)
        seed_everything(job.seed)
        prepare = getattr(loss, "prepare", None)
        extra = prepare(teacher_geometry, geometry(loaded.model), "finetune") if prepare is not None else None
        batches = _endless(encoded, hp.batch_size, loaded.tokenizer.pad_token_id, job.seed)
        return self._train(job, loaded, loss, "finetune", batches, total, hp, teacher_side, extra, phase)

    def _fine_tuned_teacher_side(self, job: Job, benchmark: Any, examples: Any, student: LoadedModel,
                                 loss: Any) -> tuple[Callable[[dict[str, Any]], ModelOutputs], ModelGeometry]:
        """What the fine-tuned teacher contributes to each batch, and its geometry for ``prepare``."""
        from transformers import AutoConfig

        live = not set(loss.needs) <= {"logits"}
        if live:
            self._require_same_tokens(job, benchmark, student.tokenizer)
        path, _ = self.fine_tuned_teacher(job, benchmark)
        head = Head("classification", len(benchmark.labels()))
        teacher_geometry = geometry(AutoConfig.from_pretrained(path))
        if live:
            teacher = self._fine_tuned_model(job.teacher_key, path, head)
            return self._live_teacher(teacher.model, loss), teacher_geometry
        key = (job.teacher_key, job.hparams.teacher_finetune.max_length)
        if key not in self._teacher_logits:
            teacher = self._fine_tuned_model(job.teacher_key, path, head)
            table = logits_for(teacher.model, teacher.tokenizer, examples, max_length=key[1],
                               batch_size=job.hparams.eval_batch_size, device=self.device)
            self._teacher_logits[key] = table.to(self.device.device)
        table = self._teacher_logits[key]
        return (lambda batch: ModelOutputs(logits=table[batch["index"]])), teacher_geometry

    def _require_same_tokens(self, job: Job, benchmark: Any, tokenizer: Any) -> None:
        """Representation losses compare positions: refuse a student with other token ids, before training.

        The teacher's tokenizer is read without training anything when possible (cached
        fine-tuned teacher, or a plugin with ``load_tokenizer()``).
        """
        from transformers import AutoTokenizer

        cached = model_cache.model_path("teacher", job.teacher_key)
        load_tokenizer = getattr(self.instances.get(job.teacher), "load_tokenizer", None)
        if not (cached / model_cache.COMPLETE).exists() and callable(load_tokenizer):
            teacher_tokenizer = load_tokenizer()
        else:
            teacher_tokenizer = AutoTokenizer.from_pretrained(self.fine_tuned_teacher(job, benchmark)[0])
        if not same_vocabulary(teacher_tokenizer, tokenizer):
            raise IncompatiblePluginsError(
                f"Loss {job.loss.spec} compares hidden states or attentions token by token, which needs "
                f"teacher and student to share a tokenizer; {job.student.spec} does not. Use a logit loss "
                "(kl, mse) or a student derived from the teacher (layers:k=N or small)."
            )

    def _train(self, job: Job, loaded: LoadedModel, loss: Any, stage: str, batches: Iterator[dict[str, Any]],
               total: int, hp: TrainHParams, teacher_side: Any, extra: Any, phase: str) -> Curve:
        hook = self.on_step
        return train(
            self.device, student=loaded.model, loss=loss, stage=stage, batches=batches, total_steps=total,
            learning_rate=hp.learning_rate, weight_decay=hp.weight_decay, warmup_ratio=hp.warmup_ratio,
            teacher_side=teacher_side, extra_modules=extra,
            on_step=(lambda step, value: hook(phase, step, total, value)) if hook else None,
        )

    def _live_teacher(self, model: Any, loss: Any) -> Callable[[dict[str, Any]], ModelOutputs]:
        import torch

        model.to(self.device.device)
        model.eval()
        needs = frozenset(loss.needs)
        if "attentions" in needs:
            use_eager_attention(model)

        def side(batch: dict[str, Any]) -> ModelOutputs:
            with torch.no_grad(), self.device.accelerator.autocast():
                return forward(model, batch, needs)

        return side

    def _ce(self) -> Any:
        if self._hard_label_loss is None:
            from kdreg.plugins.registry import registry

            self._hard_label_loss = registry().resolve("loss", "ce").create()
        return self._hard_label_loss

    def _extra_scores(self, benchmark: Any, loaded: LoadedModel) -> list[ResultRecord]:
        out = []
        for score in benchmark.extra_scores(loaded):
            out.append(ResultRecord(score.language, benchmark.normalize_language(score.language), score.split,
                                    score.metric, float(score.value),
                                    score.language == benchmark.source_language()))
        return out
