"""The one training loop every phase uses, on Accelerate.

Accelerate owns device placement and precision (bf16 autocast on CUDA, fp32 on CPU);
transformers owns the learning-rate schedule (linear warm-up and decay). kdreg's part
is what is specific to distillation: asking the student only for the outputs the loss
needs, getting the teacher's side from a callable (a live forward pass, or logits
computed once and looked up), and stopping with a clear error when the loss is not
finite.

The step itself is the plain PyTorch one (``backward``, ``clip_grad_norm_``,
``step``) on the optimiser and schedule as they are, not as ``Accelerator.prepare``
wraps them: kdreg trains in one process with bf16 or fp32, where those wrappers only
divide the loss by one gradient-accumulation step, look for optional packages and
re-inspect signatures on every step — for a small model a tenth of its time
(``bench/kd_steps.py``). The numbers are the same bit for bit.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from kdreg.errors import KdregError
from kdreg.plugins.spec import LossBatch, ModelOutputs

TeacherSide = Callable[[dict[str, Any]], ModelOutputs | None]
StepCallback = Callable[[int, float], None]


class TrainingDivergedError(KdregError):
    """The loss became NaN or infinite."""


@dataclass
class Curve:
    """Loss per optimiser step of one phase."""

    steps: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0


DEVICES = ("auto", "cpu", "cuda")
"""What ``--device`` takes."""


def check_device_name(requested: str) -> None:
    """Refuse an unknown ``--device`` without importing torch (a dry run checks it too)."""
    if requested not in DEVICES:
        from kdreg.errors import ConfigError

        raise ConfigError(f"Unknown device {requested[:40]!r}; use {', '.join(DEVICES)}.")


def require_device(requested: str) -> None:
    """Refuse ``--device cuda`` on a machine without CUDA, before anything is written (or planned)."""
    check_device_name(requested)
    if requested != "cuda":
        return
    import torch

    if not torch.cuda.is_available():
        from kdreg.errors import ConfigError

        raise ConfigError("--device cuda was asked for but no CUDA device is available; use --device cpu.")


class Device:
    """Where and in which precision a grid trains (one Accelerator per process)."""

    def __init__(self, requested: str = "auto") -> None:
        import torch
        from accelerate import Accelerator

        require_device(requested)
        use_cpu = requested == "cpu" or not torch.cuda.is_available()
        bf16 = not use_cpu and torch.cuda.is_bf16_supported()
        self.accelerator = Accelerator(cpu=use_cpu, mixed_precision="bf16" if bf16 else "no")
        self.device = self.accelerator.device
        self.precision = "bf16" if bf16 else "fp32"

    def describe(self) -> str:
        import torch

        if self.device.type == "cuda":
            return f"cuda ({torch.cuda.get_device_name(self.device)}, {self.precision})"
        return f"cpu ({torch.get_num_threads()} threads, {self.precision})"

    def to_device(self, batch: dict[str, Any]) -> dict[str, Any]:
        return {k: v.to(self.device) if hasattr(v, "to") else v for k, v in batch.items()}


def forward(model: Any, batch: dict[str, Any], needs: frozenset[str]) -> ModelOutputs:
    """Run ``model`` asking only for the outputs in ``needs`` (queries/keys/values through hooks)."""
    from kdreg.pipeline.projections import capture_projections

    inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in batch}
    with capture_projections(model, needs) as projected:
        out = model(
            **inputs,
            output_hidden_states="hidden_states" in needs,
            output_attentions="attentions" in needs,
            return_dict=True,
        )
    return ModelOutputs(
        logits=out.logits if "logits" in needs else None,
        hidden_states=tuple(out.hidden_states) if "hidden_states" in needs else None,
        attentions=tuple(out.attentions) if "attentions" in needs else None,
        **{name: tuple(tensors) for name, tensors in projected.items()},
    )


def use_eager_attention(model: Any) -> None:
    """Switch to eager attention: fused kernels (SDPA, flash) do not return attention maps."""
    if hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation("eager")


def _optimizer(modules: list[Any], learning_rate: float, weight_decay: float) -> Any:
    import torch

    decay, no_decay = [], []
    for module in modules:
        for name, param in module.named_parameters():
            if not param.requires_grad:
                continue
            plain = name.endswith("bias") or "LayerNorm" in name or "layer_norm" in name
            (no_decay if plain else decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=learning_rate)


def train(
    device: Device,
    *,
    student: Any,
    loss: Any,
    stage: str,
    batches: Iterator[dict[str, Any]],
    total_steps: int,
    learning_rate: float,
    weight_decay: float,
    warmup_ratio: float,
    teacher_side: TeacherSide | None = None,
    extra_modules: Any = None,
    on_step: StepCallback | None = None,
    max_grad_norm: float = 1.0,
) -> Curve:
    """Optimise ``student`` (and the loss's own trainable parts) for ``total_steps`` batches."""
    from transformers import get_linear_schedule_with_warmup

    modules = [student] + ([extra_modules] if extra_modules is not None else [])
    for module in modules:
        module.to(device.device)
        module.train()
    optimizer = _optimizer(modules, learning_rate, weight_decay)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(warmup_ratio * total_steps), total_steps)
    needs = frozenset(loss.needs)
    if "attentions" in needs:
        use_eager_attention(student)
    try:
        curve = _loop(device, modules, student, loss, stage, batches, total_steps, optimizer, scheduler,
                      teacher_side, on_step, max_grad_norm, needs)
    finally:
        # On a GPU, give the phase's memory back before the next model is loaded; on the CPU
        # there is nothing to give back, and a full garbage collection per phase costs ~0.5 s.
        if device.device.type == "cuda":
            device.accelerator.free_memory()
    student.eval()
    return curve


def _loop(device: Device, modules: list[Any], student: Any, loss: Any, stage: str,
          batches: Iterator[dict[str, Any]], total_steps: int, optimizer: Any, scheduler: Any,
          teacher_side: TeacherSide | None, on_step: StepCallback | None, max_grad_norm: float,
          needs: frozenset[str]) -> Curve:
    from torch.nn.utils import clip_grad_norm_

    curve = Curve()
    parameters = [p for m in modules for p in m.parameters()]
    autocast = device.accelerator.autocast
    started = time.perf_counter()
    for step in range(1, total_steps + 1):
        try:
            batch = device.to_device(next(batches))
        except StopIteration:
            break
        teacher_out = teacher_side(batch) if teacher_side is not None else None
        with autocast():
            student_out = forward(student, batch, needs)
            value = loss.compute(
                student_out, teacher_out, LossBatch(batch["labels"], batch["attention_mask"], stage)  # type: ignore[arg-type]
            )
        number = float(value.detach())
        if not math.isfinite(number):
            raise TrainingDivergedError(
                f"The {stage} loss became {number} at step {step}; lower the learning rate or check the loss."
            )
        value.backward()
        clip_grad_norm_(parameters, max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        curve.steps.append(step)
        curve.losses.append(number)
        if on_step is not None:
            on_step(step, number)
    curve.seconds = time.perf_counter() - started
    return curve


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (every device), before anything random happens.

    The pipeline calls this right before each random step (a new head, a projection, a
    training phase), not once per run, so a run's numbers do not depend on what else the
    process did first, e.g. whether the fine-tuned teacher was already cached.
    """
    from transformers import set_seed

    set_seed(seed)


def steps_for(num_examples: int, batch_size: int, epochs: float, max_steps: int) -> int:
    """Optimiser steps of a phase: ``max_steps`` if set, else ``epochs`` over the data."""
    if max_steps > 0:
        return max_steps
    return max(1, math.ceil(epochs * math.ceil(num_examples / batch_size)))
