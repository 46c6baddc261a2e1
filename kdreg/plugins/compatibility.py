"""Pairings that would train but give meaningless numbers, refused before anything trains.

* **KD from a head that was never trained.** A loss that reads the teacher's masked-LM
  logits during pretraining (``kl``, ``mse``...) learns nothing from a teacher whose
  checkpoint has no masked-LM head (sentence-transformers models, most fine-tuned
  encoders): transformers initialises the head randomly and the run would be logged as
  a normal result. The preflight refuses it from the checkpoint's weight names
  (``Teacher.preview_load``); the run refuses it again from the real loading report, for
  teachers that cannot be previewed. A teacher parameter ``allow_new_head=true`` (the
  ``hf`` teacher has it) opts in, for studies of exactly that.
* **KD during pretraining across vocabularies.** Masked-LM outputs are compared token
  by token, so teacher and student must share a tokenizer; when both plugins can give
  theirs without weights (``load_tokenizer``), the preflight compares them, before any
  teacher is fine-tuned.
"""

from __future__ import annotations

from typing import Any

from kdreg.errors import IncompatiblePluginsError
from kdreg.plugins.load_report import LoadReport

OPT_IN = "allow_new_head"
"""The teacher parameter that accepts KD from a randomly initialised masked-LM head."""


def reads_teacher_mlm(loss: Any) -> bool:
    """Whether a loss, in pretraining, reads the teacher's masked-LM logits."""
    return bool(getattr(loss, "uses_teacher", True)) and "logits" in frozenset(loss.needs)


def new_head_allowed(teacher: Any) -> bool:
    """Whether the teacher's parameters opt in to KD from a random masked-LM head."""
    return bool(getattr(getattr(teacher, "params", None), OPT_IN, False))


def refuse_untrained_mlm_head(report: LoadReport | None, *, teacher: str, loss: str) -> None:
    """Raise when ``report`` says the teacher's masked-LM head would be (or was) initialised randomly."""
    if report is None or not report.new_head:
        return
    raise IncompatiblePluginsError(
        f"Teacher {teacher} has no trained masked-LM head (its checkpoint lacks "
        f"{len(report.new_head)} head weights, {', '.join(report.new_head[:2])}...), so KD with loss {loss} "
        "during pretraining would distil from random logits; use a checkpoint with its masked-LM head, a "
        "loss on hidden states (hidden, cosine, minilm), --stage finetune, or add allow_new_head=true to "
        "the teacher to do it on purpose."
    )


def same_vocabulary(a: Any, b: Any) -> bool:
    """Whether two tokenizers map text to the same ids."""
    return a is b or (len(a) == len(b) and a.get_vocab() == b.get_vocab())


def refuse_other_vocabulary(teacher: Any, student: Any, *, teacher_spec: str, student_spec: str) -> None:
    """Raise when both plugins can give their tokenizer without weights and the vocabularies differ."""
    load_teacher = getattr(teacher, "load_tokenizer", None)
    load_student = getattr(student, "load_tokenizer", None)
    if not (callable(load_teacher) and callable(load_student)):
        return  # a student derived from the teacher shares its tokenizer by construction
    if same_vocabulary(load_teacher(), load_student()):
        return
    raise other_vocabulary_error(teacher_spec, student_spec)


def other_vocabulary_error(teacher_spec: str, student_spec: str) -> IncompatiblePluginsError:
    """The error of KD during pretraining between different vocabularies."""
    return IncompatiblePluginsError(
        "KD during pretraining compares masked-LM outputs token by token, which needs teacher and "
        f"student to share a tokenizer, but {student_spec} and {teacher_spec} do not; use a student "
        "derived from the teacher (layers:k=N or small), or this student with --stage finetune or none."
    )
