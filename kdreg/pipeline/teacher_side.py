"""What the teacher contributes to a training batch: a live forward pass, or logits computed once.

When the loss reads only logits, the fine-tuned teacher's logits on the training set are
computed once and looked up by example — the same numbers as a live teacher in eval mode,
at a fraction of the cost, and valid even when the student has a tokenizer of its own.
Losses that compare hidden states or attention maps get a live teacher and need teacher
and student to read the same token ids; that is checked before any training.

:class:`FineTunedTeacher` keeps the fine-tuned teacher last used (and its logits) for the
next task of this process that needs the same one.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kdreg.errors import IncompatiblePluginsError
from kdreg.grid import Job
from kdreg.pipeline import model_cache
from kdreg.pipeline.artifacts import load_cached
from kdreg.pipeline.evaluate import logits_for
from kdreg.pipeline.loads import LoadLog
from kdreg.pipeline.phases import geometry
from kdreg.pipeline.training import Device, TeacherSide, forward, use_eager_attention
from kdreg.plugins.compatibility import same_vocabulary
from kdreg.plugins.spec import Example, Head, LoadedModel, ModelGeometry, ModelOutputs


def live_side(model: Any, loss: Any, device: Device) -> TeacherSide:
    """The teacher's outputs the loss needs, computed for each batch under no_grad."""
    import torch

    model.to(device.device)
    model.eval()
    needs = frozenset(loss.needs)
    if "attentions" in needs:
        use_eager_attention(model)

    def side(batch: dict[str, Any]) -> ModelOutputs:
        with torch.no_grad(), device.accelerator.autocast():
            return forward(model, batch, needs)

    return side


class FineTunedTeacher:
    """The fine-tuned teachers of one process's tasks: the model last used and logits per training set."""

    def __init__(self, device: Device, loads: LoadLog) -> None:
        self.device = device
        self.loads = loads
        self._held: tuple[str, LoadedModel] | None = None
        self._logits: dict[tuple[str, int], Any] = {}

    def model(self, key: str, head: Head) -> LoadedModel:
        """The fine-tuned teacher ``key`` loaded from the cache, kept while tasks keep asking for it."""
        if self._held is None or self._held[0] != key:
            self._held = None  # free the previous one before loading the next
            self._held = (key, load_cached(model_cache.require("teacher", key), head, fine_tuned=True))
        return self._held[1]

    def release(self) -> None:
        """Forget the held model (pretraining needs the memory)."""
        self._held = None

    def side(self, job: Job, benchmark: Any, examples: Sequence[Example], student: LoadedModel,
             loss: Any) -> tuple[TeacherSide, ModelGeometry]:
        """The fine-tuned teacher's side of each KD fine-tuning batch, and its geometry for ``prepare``."""
        from transformers import AutoConfig

        path = model_cache.require("teacher", job.teacher_key)
        self.loads.add_artifact(path, "fine-tuned teacher")
        head = Head("classification", len(benchmark.labels()))
        teacher_geometry = geometry(AutoConfig.from_pretrained(path))
        if not set(loss.needs) <= {"logits"}:
            self._require_same_tokens(job, path, student.tokenizer)
            return live_side(self.model(job.teacher_key, head).model, loss, self.device), teacher_geometry
        key = (job.teacher_key, job.hparams.teacher_finetune.max_length)
        if key not in self._logits:
            teacher = self.model(job.teacher_key, head)
            table = logits_for(teacher.model, teacher.tokenizer, examples, max_length=key[1],
                               batch_size=job.hparams.eval_batch_size, device=self.device)
            self._logits[key] = table.to(self.device.device)
        table = self._logits[key]
        return (lambda batch: ModelOutputs(logits=table[batch["index"]])), teacher_geometry

    @staticmethod
    def _require_same_tokens(job: Job, path: Path, tokenizer: Any) -> None:
        """Representation losses compare positions: refuse a student with other token ids, before training."""
        from transformers import AutoTokenizer

        if not same_vocabulary(AutoTokenizer.from_pretrained(path), tokenizer):
            raise IncompatiblePluginsError(
                f"Loss {job.loss.spec if job.loss else '?'} compares hidden states, attentions or their "
                "relations token by token, which needs teacher and student to share a tokenizer; "
                f"{job.student.spec if job.student else '?'} does not. Use a logit loss (kl, mse) or a "
                "student derived from the teacher (layers:k=N or small)."
            )
