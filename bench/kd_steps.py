"""KD fine-tuning steps/s: kdreg's training loop against a fair hand-written PyTorch loop.

Same models (a 4-layer × 128 BERT teacher, a 2-layer × 64 student), same data (random
word sequences of 8–48 tokens, 3 labels), same loss (Hinton KL, T = 2, α = 0.5), same
optimiser (AdamW, no decay on biases and LayerNorms), schedule (linear warm-up and
decay) and gradient clipping, same dtype (fp32) and threads (one process).

The baseline is the loop a careful person writes by hand, not a straw man:

* the **same batches** as kdreg: the examples are tokenised once and grouped by length
  with kdreg's own order (``length_grouped_order``, same seed), and each batch is
  padded once, before timing;
* the teacher runs under ``no_grad`` in eval mode (**live**), or its logits are computed
  once and looked up per batch (**cached**), as kdreg does for a logit-only loss;
* the loss is written inline; nothing is logged per step.

kdreg is measured through :func:`kdreg.pipeline.training.train` with the batches of
:func:`kdreg.pipeline.phases.endless` and the teacher side the pipeline builds (a
live ``no_grad`` forward pass, or a lookup in the logits table), i.e. everything the
pipeline does per step: padding the batch, Accelerate, recording the loss per step.

Each measurement runs ``--warmup`` steps, then times ``--steps`` steps (steps/s of the
timed part only; the one-off costs — logits table, optimiser set-up — are excluded on
both sides). The four loops take turns for ``--repeat`` rounds, starting from the same
student weights each time, and the median is printed with kdreg's ratio to the
baseline of the same kind.

    python bench/kd_steps.py [--steps 100] [--warmup 10] [--repeat 5] [--batch-size 32]

Goal (issue 15): kdreg ≥ 0.95× the fair loop, live and cached.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

GOAL = 0.95
TEMPERATURE, ALPHA = 2.0, 0.5
LEARNING_RATE, WEIGHT_DECAY, WARMUP_RATIO, MAX_LENGTH = 1e-3, 0.01, 0.1, 64


def build_models(folder: Path):  # type: ignore[no-untyped-def]
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from kdreg.testing.tiny import save_tiny_bert

    save_tiny_bert(folder / "teacher", layers=4, hidden=128, heads=4, intermediate=512, seed=1)
    save_tiny_bert(folder / "student", layers=2, hidden=64, heads=2, intermediate=256, seed=2)
    tokenizer = AutoTokenizer.from_pretrained(folder / "teacher")
    teacher = AutoModelForSequenceClassification.from_pretrained(folder / "teacher", num_labels=3)
    student = AutoModelForSequenceClassification.from_pretrained(folder / "student", num_labels=3)
    return tokenizer, teacher, student


def make_examples(n: int, seed: int = 0):  # type: ignore[no-untyped-def]
    from kdreg.plugins.spec import Example
    from kdreg.testing.tiny import DEFAULT_WORDS

    rng = random.Random(seed)
    return [
        Example(" ".join(rng.choice(DEFAULT_WORDS) for _ in range(rng.randint(8, 48))), rng.randint(0, 2))
        for _ in range(n)
    ]


# --------------------------------------------------------------------------- the fair baseline
def fair_batches(encoded: list[Any], batch_size: int, pad_id: int, count: int) -> list[dict[str, Any]]:
    """``count`` batches in kdreg's order (same seed), padded once, with example indices."""
    import torch

    from kdreg.pipeline.data import length_grouped_order

    lengths = [len(e.input_ids) for e in encoded]
    rng = random.Random(0)
    out: list[dict[str, Any]] = []
    while len(out) < count:
        for order in length_grouped_order(lengths, batch_size, rng):
            rows = [encoded[i] for i in order]
            width = max(len(e.input_ids) for e in rows)
            ids = torch.tensor([e.input_ids + [pad_id] * (width - len(e.input_ids)) for e in rows])
            types = torch.tensor([e.token_type_ids + [0] * (width - len(e.token_type_ids)) for e in rows])
            mask = torch.tensor([[1] * len(e.input_ids) + [0] * (width - len(e.input_ids)) for e in rows])
            out.append({"input_ids": ids, "attention_mask": mask, "token_type_ids": types,
                        "labels": torch.tensor([e.label for e in rows]), "index": torch.tensor(order)})
            if len(out) == count:
                break
    return out


def fair_loop(teacher: Any, student: Any, batches: list[dict[str, Any]], table: Any, warmup: int) -> float:
    """The hand-written loop over prepared batches; steps/s after ``warmup`` steps."""
    import torch
    import torch.nn.functional as F
    from transformers import get_linear_schedule_with_warmup

    decay = [p for n, p in student.named_parameters() if not (n.endswith("bias") or "LayerNorm" in n)]
    plain = [p for n, p in student.named_parameters() if n.endswith("bias") or "LayerNorm" in n]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": WEIGHT_DECAY},
                                   {"params": plain, "weight_decay": 0.0}], lr=LEARNING_RATE)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(WARMUP_RATIO * len(batches)), len(batches))
    params = list(student.parameters())
    teacher.eval()
    student.train()
    t = TEMPERATURE
    start = 0.0
    for step, batch in enumerate(batches):
        if step == warmup:
            start = time.perf_counter()
        inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
        if table is None:
            with torch.no_grad():
                teacher_logits = teacher(**inputs).logits
        else:
            teacher_logits = table[batch["index"]]
        logits = student(**inputs).logits
        kd = F.kl_div(F.log_softmax(logits / t, -1), F.log_softmax(teacher_logits / t, -1),
                      log_target=True, reduction="batchmean")
        loss = ALPHA * t * t * kd + (1 - ALPHA) * F.cross_entropy(logits, batch["labels"])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
    return (len(batches) - warmup) / (time.perf_counter() - start)


# --------------------------------------------------------------------------- kdreg
def kdreg_loop(device: Any, teacher: Any, student: Any, encoded: list[Any], pad_id: int, batch_size: int,
               table: Any, steps: int, warmup: int) -> float:
    """kdreg's ``train`` with the pipeline's batches and teacher side; steps/s after ``warmup`` steps."""
    import torch

    from kdreg.pipeline.phases import endless
    from kdreg.pipeline.training import forward, train
    from kdreg.plugins.registry import registry
    from kdreg.plugins.spec import ModelOutputs

    loss = registry().resolve("loss", f"kl:temperature={TEMPERATURE},alpha={ALPHA}").create()
    if table is None:
        teacher.eval()
        needs = frozenset(loss.needs)

        def side(batch: dict[str, Any]) -> ModelOutputs:  # what teacher_side.live_side builds
            with torch.no_grad(), device.accelerator.autocast():
                return forward(teacher, batch, needs)
    else:
        def side(batch: dict[str, Any]) -> ModelOutputs:  # FineTunedTeacher.side, for cached logits
            return ModelOutputs(logits=table[batch["index"]])

    marks: dict[int, float] = {}

    def mark(step: int, _loss: float) -> None:
        if step in (warmup, warmup + steps):
            marks[step] = time.perf_counter()

    train(device, student=student, loss=loss, stage="finetune",
          batches=endless(encoded, batch_size, pad_id, seed=0), total_steps=warmup + steps,
          learning_rate=LEARNING_RATE, weight_decay=WEIGHT_DECAY, warmup_ratio=WARMUP_RATIO,
          teacher_side=side, on_step=mark)
    return steps / (marks[warmup + steps] - marks[warmup])


def main() -> None:
    import copy

    import torch
    import transformers

    from kdreg.pipeline.data import encode_examples
    from kdreg.pipeline.evaluate import logits_for
    from kdreg.pipeline.training import Device

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--examples", type=int, default=2048)
    args = parser.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    device = Device("cpu")
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer, teacher, student = build_models(Path(tmp))
    examples = make_examples(args.examples)
    encoded = encode_examples(tokenizer, examples, MAX_LENGTH)
    pad_id = tokenizer.pad_token_id
    table = logits_for(teacher, tokenizer, examples, max_length=MAX_LENGTH, batch_size=128, device=device)
    batches = fair_batches(encoded, args.batch_size, pad_id, args.warmup + args.steps)
    fresh = copy.deepcopy(student.state_dict())
    cases = {
        "fair loop, live teacher": lambda: fair_loop(teacher, student, batches, None, args.warmup),
        "kdreg, live teacher": lambda: kdreg_loop(device, teacher, student, encoded, pad_id, args.batch_size,
                                                  None, args.steps, args.warmup),
        "fair loop, cached logits": lambda: fair_loop(teacher, student, batches, table, args.warmup),
        "kdreg, cached logits": lambda: kdreg_loop(device, teacher, student, encoded, pad_id, args.batch_size,
                                                   table, args.steps, args.warmup),
    }
    rates: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.repeat):
        for name, run in cases.items():
            student.load_state_dict(fresh)
            torch.manual_seed(0)
            rates[name].append(run())
    median = {name: statistics.median(values) for name, values in rates.items()}
    print(f"KD fine-tuning, {args.steps} timed steps after {args.warmup}, batch {args.batch_size}, "
          f"median of {args.repeat}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"load average {os.getloadavg()[0]:.2f}")
    for name, rate in median.items():
        spread = f"{min(rates[name]):.1f}–{max(rates[name]):.1f}"
        line = f"  {name:26s} {rate:7.1f} steps/s  ({spread})"
        if name.startswith("kdreg"):
            base = median["fair loop, " + name.split(", ", 1)[1]]
            verdict = "ok" if rate / base >= GOAL else "MISSED"
            line += f"   {rate / base:5.2f}x the fair loop (goal ≥ {GOAL}: {verdict})"
        print(line)


if __name__ == "__main__":
    main()
