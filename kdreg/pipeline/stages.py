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
:mod:`kdreg.pipeline.model_cache`), shared by every job with the same key. When the
loss reads only logits, the fine-tuned teacher's logits on the training set are
computed once and looked up — the same numbers as a live teacher in eval mode, at a
fraction of the cost.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from kdreg.errors import IncompatiblePluginsError
from kdreg.grid import Job
from kdreg.pipeline import model_cache
from kdreg.pipeline.data import Encoded, encode_examples, labelled_batches, mlm_batches
from kdreg.pipeline.evaluate import evaluate, evaluation_languages, logits_for
from kdreg.pipeline.hparams import TrainHParams
from kdreg.pipeline.training import Curve, Device, forward, steps_for, train, use_eager_attention
from kdreg.plugins.spec import Head, LoadedModel, ModelGeometry, ModelOutputs
from kdreg.store.store import ResultRecord

Log = Callable[[str], None]
StepHook = Callable[[str, int, int, float], None]
"""(phase, step, total_steps, loss) after every optimiser step."""


def geometry(model: Any) -> ModelGeometry:
    """Sizes a loss may check, read from a transformers config (BERT, XLM-R and DistilBERT names)."""
    cfg = model.config
    return ModelGeometry(
        vocab_size=int(cfg.vocab_size),
        hidden_size=int(cfg.hidden_size),
        num_layers=int(getattr(cfg, "num_hidden_layers", None) or cfg.n_layers),
        num_heads=int(getattr(cfg, "num_attention_heads", None) or cfg.n_heads),
    )


def same_vocabulary(a: Any, b: Any) -> bool:
    """Whether two tokenizers map text to the same ids."""
    return len(a) == len(b) and a.get_vocab() == b.get_vocab()


def load_cached(path: Path, head: Head) -> LoadedModel:
    """A cached model folder loaded with the requested head."""
    from transformers import AutoModelForMaskedLM, AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    if head.kind == "mlm":
        model = AutoModelForMaskedLM.from_pretrained(path)
    else:
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


class StageRunner:
    """Executes jobs on one device, sharing cached models and teacher logits across them."""

    def __init__(self, device: Device, *, log: Log, on_step: StepHook | None = None) -> None:
        self.device = device
        self.log = log
        self.on_step = on_step
        self._teacher_logits: dict[tuple[str, int], Any] = {}
        self._hard_label_loss: Any = None

    # ------------------------------------------------------------------ entry
    def run(self, job: Job) -> tuple[list[ResultRecord], dict[str, Curve]]:
        """Train what the job's stage needs and evaluate it on every language."""
        from transformers import set_seed

        set_seed(job.seed)
        benchmark = job.benchmark.create()
        languages = evaluation_languages(benchmark, job.languages)
        num_labels = len(benchmark.labels())
        curves: dict[str, Curve] = {}
        if job.stage == "teacher":
            path, curve = self.fine_tuned_teacher(job, benchmark)
            if curve is not None:
                curves["teacher_finetune"] = curve
            loaded = load_cached(path, Head("classification", num_labels))
        else:
            loaded = self._student_for_finetuning(job, benchmark, num_labels, curves)
            hp = job.hparams.finetune
            if job.stage in ("finetune", "both"):
                loss = job.loss.create()
                curves["finetune_kd"] = self._finetune(job, benchmark, loaded, hp, loss, "finetune_kd")
            else:
                curves["finetune"] = self._finetune(job, benchmark, loaded, hp, self._ce(), "finetune")
        max_length = job.hparams.finetune.max_length if job.stage != "teacher" else job.hparams.teacher_finetune.max_length
        results = evaluate(loaded.model, loaded.tokenizer, benchmark, languages, max_length=max_length,
                           batch_size=job.hparams.eval_batch_size, device=self.device)
        results += self._extra_scores(benchmark, loaded)
        return results, curves

    # ------------------------------------------------------------------ models
    def fine_tuned_teacher(self, job: Job, benchmark: Any) -> tuple[Path, Curve | None]:
        """The teacher fine-tuned on the source language (trained once per key, then cached)."""
        made: dict[str, Curve] = {}

        def create(folder: Path) -> None:
            from transformers import set_seed

            set_seed(job.seed)
            self.log(f"fine-tuning teacher {job.teacher.spec} on {job.benchmark.spec}")
            teacher = job.teacher.create()
            loaded = teacher.load(Head("classification", len(benchmark.labels())))
            made["curve"] = self._finetune(job, benchmark, loaded, job.hparams.teacher_finetune, self._ce(),
                                           "teacher_finetune")
            model_cache.save_model(folder, loaded.model, loaded.tokenizer)
            (folder / "curve.json").write_text(json.dumps(made["curve"].__dict__))

        path, _ = model_cache.get_or_create("teacher", job.teacher_key, create)
        if "curve" not in made and (path / "curve.json").exists():
            cached = Curve(**json.loads((path / "curve.json").read_text()))
            return path, cached if job.stage == "teacher" else None
        return path, made.get("curve")

    def _student_for_finetuning(self, job: Job, benchmark: Any, num_labels: int,
                                curves: dict[str, Curve]) -> LoadedModel:
        head = Head("classification", num_labels)
        if job.stage in ("pretrain", "both"):
            path, curve = self.pretrained_student(job)
            if curve is not None:
                curves["pretrain_kd"] = curve
            return load_cached(path, head)
        return job.student.create().build(job.teacher.create(), head)

    def pretrained_student(self, job: Job) -> tuple[Path, Curve | None]:
        """The student distilled from the pre-trained teacher on the corpus (cached per key)."""
        made: dict[str, Curve] = {}

        def create(folder: Path) -> None:
            from transformers import set_seed

            set_seed(job.seed)
            self.log(f"distilling {job.student.spec} from {job.teacher.spec} on {job.corpus.spec}")
            teacher_plugin = job.teacher.create()
            student = job.student.create().build(teacher_plugin, Head("mlm"))
            loss = job.loss.create()
            teacher = teacher_plugin.load(Head("mlm")) if loss.uses_teacher else None
            if teacher is not None and not same_vocabulary(teacher.tokenizer, student.tokenizer):
                raise IncompatiblePluginsError(
                    f"KD during pretraining needs teacher and student to share a tokenizer, but "
                    f"{job.student.spec} and {job.teacher.spec} do not; use a student derived from the teacher "
                    "(e.g. layers:k=6 or small)."
                )
            extra = loss.prepare(geometry(teacher.model) if teacher else None, geometry(student.model), "pretrain")
            made["curve"] = self._pretrain(job, student, teacher, loss, extra)
            model_cache.save_model(folder, student.model, student.tokenizer)
            (folder / "curve.json").write_text(json.dumps(made["curve"].__dict__))

        path, _ = model_cache.get_or_create("student-pretrained", job.pretrain_key or "", create)
        if "curve" not in made and (path / "curve.json").exists():
            return path, Curve(**json.loads((path / "curve.json").read_text()))
        return path, made.get("curve")

    # ------------------------------------------------------------------ phases
    def _pretrain(self, job: Job, student: LoadedModel, teacher: LoadedModel | None, loss: Any,
                  extra: Any) -> Curve:
        from kdreg.sampling import mix_languages

        hp = job.hparams.pretrain
        corpus = job.corpus.create()
        texts = (text for _language, text in mix_languages(corpus, alpha=hp.language_alpha, seed=job.seed))
        batches = mlm_batches(student.tokenizer, texts, batch_size=hp.batch_size, max_length=hp.max_length,
                              mlm_probability=hp.mlm_probability, seed=job.seed)
        teacher_side = self._live_teacher(teacher.model, loss) if teacher is not None else None
        return self._train(job, student, loss, "pretrain", batches, hp.max_steps or 1, hp, teacher_side, extra,
                           "pretrain_kd")

    def _finetune(self, job: Job, benchmark: Any, loaded: LoadedModel, hp: TrainHParams, loss: Any,
                  phase: str) -> Curve:
        source = benchmark.source_language()
        examples = benchmark.examples(source, "train")
        encoded = encode_examples(loaded.tokenizer, examples, hp.max_length)
        if not encoded:
            from kdreg.errors import DataError

            raise DataError(f"Benchmark {job.benchmark.spec} has no training examples in {source!r}.")
        total = steps_for(len(encoded), hp.batch_size, hp.epochs, hp.max_steps)
        batches = _endless(encoded, hp.batch_size, loaded.tokenizer.pad_token_id, job.seed)
        teacher_side = None
        extra = None
        if loss.uses_teacher:
            teacher_path, _ = self.fine_tuned_teacher(job, benchmark)
            teacher = load_cached(teacher_path, Head("classification", len(benchmark.labels())))
            extra = loss.prepare(geometry(teacher.model), geometry(loaded.model), "finetune")
            if set(loss.needs) <= {"logits"}:
                key = (job.teacher_key, job.hparams.teacher_finetune.max_length)
                if key not in self._teacher_logits:
                    self._teacher_logits[key] = logits_for(
                        teacher.model, teacher.tokenizer, examples, max_length=key[1],
                        batch_size=job.hparams.eval_batch_size, device=self.device,
                    )
                table = self._teacher_logits[key]
                teacher_side = lambda batch: ModelOutputs(logits=table.to(batch["index"].device)[batch["index"]])  # noqa: E731
            else:
                if not same_vocabulary(teacher.tokenizer, loaded.tokenizer):
                    raise IncompatiblePluginsError(
                        f"Loss {job.loss.spec} compares hidden states or attentions token by token, which needs "
                        f"teacher and student to share a tokenizer; {job.student.spec} does not. Use a logit loss "
                        "(kl, mse) or a student derived from the teacher."
                    )
                teacher_side = self._live_teacher(teacher.model, loss)
        elif hasattr(loss, "prepare"):
            extra = loss.prepare(None, geometry(loaded.model), "finetune")
        return self._train(job, loaded, loss, "finetune", batches, total, hp, teacher_side, extra, phase)

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
