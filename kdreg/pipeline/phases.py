"""The two kinds of training phase: fine-tuning on the source-language task, KD during pretraining.

Both end in :func:`kdreg.pipeline.training.train`; what differs is where the batches
come from (labelled examples grouped by length, or masked-LM batches from the corpus
with α-smoothed language sampling) and what the teacher contributes (a callable given by
the caller: :mod:`kdreg.pipeline.teacher_side`). Every random step is seeded just before
it happens, so a phase's numbers do not depend on what the process did before.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from kdreg.errors import ConfigError, DataError
from kdreg.grid import Job
from kdreg.hparams import PretrainHParams, TrainHParams
from kdreg.pipeline.data import Encoded, encode_examples, labelled_batches, mlm_batches
from kdreg.pipeline.training import Curve, Device, TeacherSide, seed_everything, steps_for, train
from kdreg.plugins.spec import Example, LoadedModel, ModelGeometry

StepHook = Callable[[str, int, int, float], None]
"""(phase, step, total_steps, loss) after every optimiser step."""
TeacherFor = Callable[[Sequence[Example], LoadedModel], tuple[TeacherSide, ModelGeometry]]
"""Given the training examples and the student, the teacher's side of each batch and its geometry."""


def geometry(config: Any) -> ModelGeometry:
    """Sizes a loss may check, read from a transformers config (BERT, XLM-R and DistilBERT names)."""
    cfg = getattr(config, "config", config)
    return ModelGeometry(
        vocab_size=int(cfg.vocab_size),
        hidden_size=int(cfg.hidden_size),
        num_layers=int(getattr(cfg, "num_hidden_layers", None) or cfg.n_layers),
        num_heads=int(getattr(cfg, "num_attention_heads", None) or cfg.n_heads),
    )


def endless(encoded: list[Encoded], batch_size: int, pad_id: int, seed: int) -> Iterator[dict[str, Any]]:
    """Length-grouped labelled batches, reshuffled every epoch, each with the indices of its examples."""
    import torch

    rng = random.Random(seed)
    while True:
        for order, batch in labelled_batches(encoded, batch_size, pad_id, rng):
            batch["index"] = torch.tensor(order, dtype=torch.long)
            yield batch


def pretrain_steps(hp: PretrainHParams, corpus: Any, corpus_spec: str) -> int:
    """Optimiser steps of KD during pretraining: ``max_steps``, or epochs over the corpus's lines.

    The one place this is decided; the grid's preflight calls it too, so a corpus that
    cannot tell its size is refused before anything is written.
    """
    if hp.max_steps > 0:
        return hp.max_steps
    sizes = corpus.sizes()
    if not sizes:
        raise ConfigError(
            f"[pretrain] epochs needs to know the corpus size, but {corpus_spec} does not report one; "
            "set [pretrain] max_steps instead."
        )
    return steps_for(sum(int(n) for n in sizes.values()), hp.batch_size, hp.epochs, 0)


@dataclass
class Trainer:
    """Runs training phases on one device, telling ``on_step`` about every optimiser step."""

    device: Device
    on_step: StepHook | None = None
    seconds: float = 0.0
    """Time spent in training loops since the caller last reset it (what a run's overhead excludes)."""

    def finetune(self, job: Job, benchmark: Any, loaded: LoadedModel, hp: TrainHParams, loss: Any,
                 phase: str, teacher_for: TeacherFor | None = None) -> Curve:
        """Train ``loaded`` on the source language's training split (KD when the loss uses a teacher)."""
        source = benchmark.source_language()
        examples = benchmark.examples(source, "train")
        encoded = encode_examples(loaded.tokenizer, examples, hp.max_length)
        if not encoded:
            raise DataError(f"Benchmark {job.benchmark.spec} has no training examples in {source!r}.")
        total = steps_for(len(encoded), hp.batch_size, hp.epochs, hp.max_steps)
        teacher_side, teacher_geometry = None, None
        if loss.uses_teacher:
            if teacher_for is None:
                raise ConfigError(f"Loss {getattr(job.loss, 'spec', loss)} needs a teacher in phase {phase}.")
            teacher_side, teacher_geometry = teacher_for(examples, loaded)
        seed_everything(job.seed)
        prepare = getattr(loss, "prepare", None)
        extra = prepare(teacher_geometry, geometry(loaded.model), "finetune") if prepare is not None else None
        batches = endless(encoded, hp.batch_size, loaded.tokenizer.pad_token_id, job.seed)
        return self.train(loaded, loss, "finetune", batches, total, hp, teacher_side, extra, phase)

    def pretrain(self, job: Job, corpus: Any, student: LoadedModel, loss: Any,
                 teacher_side: TeacherSide | None, extra: Any) -> Curve:
        """KD during pretraining: masked-LM batches from the corpus, languages sampled p(l) ∝ n_l^α."""
        from kdreg.sampling import mix_languages

        hp = job.hparams.pretrain
        assert job.corpus is not None
        total = pretrain_steps(hp, corpus, job.corpus.spec)
        texts = (text for _language, text in mix_languages(corpus, alpha=hp.language_alpha, seed=job.seed))
        batches = mlm_batches(student.tokenizer, texts, batch_size=hp.batch_size, max_length=hp.max_length,
                              mlm_probability=hp.mlm_probability, seed=job.seed)
        return self.train(student, loss, "pretrain", batches, total, hp, teacher_side, extra, "pretrain_kd")

    def train(self, loaded: LoadedModel, loss: Any, stage: str, batches: Iterator[dict[str, Any]],
              total: int, hp: TrainHParams, teacher_side: TeacherSide | None, extra: Any,
              phase: str) -> Curve:
        hook = self.on_step
        curve = train(
            self.device, student=loaded.model, loss=loss, stage=stage, batches=batches, total_steps=total,
            learning_rate=hp.learning_rate, weight_decay=hp.weight_decay, warmup_ratio=hp.warmup_ratio,
            teacher_side=teacher_side, extra_modules=extra,
            on_step=(lambda step, value: hook(phase, step, total, value)) if hook else None,
        )
        self.seconds += curve.seconds
        return curve
