"""kdreg's training loop is the plain PyTorch step, bit for bit, without Accelerate's per-step wrappers."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest


def _setup(tiny_bert: Path) -> tuple[Any, Any, Any, list[Any]]:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from kdreg.pipeline.data import encode_examples
    from kdreg.plugins.spec import Example

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    teacher = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=3)
    rng = random.Random(0)
    words = ["hello", "world", "der", "die", "das", "le", "la"]
    examples = [Example(" ".join(rng.choice(words) for _ in range(rng.randint(2, 12))), rng.randint(0, 2))
                for _ in range(40)]
    return tokenizer, teacher, examples, encode_examples(tokenizer, examples, 32)


def _reference_loop(student: Any, teacher: Any, batches: list[dict[str, Any]], loss: Any) -> list[float]:
    """What a hand-written loop computes: kdreg's numbers must be these, exactly."""
    import torch
    from transformers import get_linear_schedule_with_warmup

    from kdreg.plugins.spec import LossBatch, ModelOutputs

    decay = [p for n, p in student.named_parameters() if not (n.endswith("bias") or "LayerNorm" in n)]
    plain = [p for n, p in student.named_parameters() if n.endswith("bias") or "LayerNorm" in n]
    groups = [{"params": decay, "weight_decay": 0.01}, {"params": plain, "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=1e-3)
    scheduler = get_linear_schedule_with_warmup(optimizer, 1, len(batches))
    student.train()
    teacher.eval()
    losses = []
    for batch in batches:
        inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
        with torch.no_grad():
            teacher_logits = teacher(**inputs).logits
        value = loss.compute(
            ModelOutputs(logits=student(**inputs).logits), ModelOutputs(logits=teacher_logits),
            LossBatch(batch["labels"], batch["attention_mask"], "finetune"),
        )
        losses.append(float(value.detach()))
        value.backward()
        torch.nn.utils.clip_grad_norm_(list(student.parameters()), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
    return losses


def test_train_matches_a_hand_written_loop_and_skips_accelerates_wrappers(
    tiny_bert: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import copy
    import itertools

    import torch
    from transformers import AutoModelForSequenceClassification

    from kdreg.pipeline.phases import endless as _endless
    from kdreg.pipeline.training import Device, forward, train
    from kdreg.plugins.registry import registry

    tokenizer, teacher, _examples, encoded = _setup(tiny_bert)
    torch.manual_seed(0)
    student = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=3)
    twin = copy.deepcopy(student)
    loss = registry().resolve("loss", "kl:temperature=2,alpha=0.5").create()
    steps = 12
    batches = list(itertools.islice(_endless(encoded, 8, tokenizer.pad_token_id, seed=0), steps))

    device = Device("cpu")
    for wrapper in ("prepare", "backward", "clip_grad_norm_"):  # per-step overhead kdreg does without
        monkeypatch.setattr(device.accelerator, wrapper,
                            lambda *a, _name=wrapper, **k: pytest.fail(f"train() called Accelerator.{_name}"))
    torch.manual_seed(1)

    def side(batch: dict[str, Any]) -> Any:
        with torch.no_grad():
            return forward(teacher, batch, frozenset({"logits"}))

    curve = train(device, student=student, loss=loss, stage="finetune", batches=iter(batches),
                  total_steps=steps, learning_rate=1e-3, weight_decay=0.01, warmup_ratio=0.1,
                  teacher_side=side)
    torch.manual_seed(1)
    expected = _reference_loop(twin, teacher, batches, loss)

    assert curve.steps == list(range(1, steps + 1))
    assert curve.losses == expected  # exactly: same operations in the same order
    for (name, a), (_, b) in zip(student.state_dict().items(), twin.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


def test_pad_batch_rows_with_and_without_token_types() -> None:
    from kdreg.pipeline.data import Encoded, pad_batch

    items = [Encoded([5, 6], [0, 1], 2), Encoded([7, 8, 9, 3], None, 0), Encoded([4], [1], 1)]
    batch = pad_batch(items, pad_id=0)
    assert list(batch) == ["input_ids", "attention_mask", "labels", "token_type_ids"]
    assert batch["input_ids"].tolist() == [[5, 6, 0, 0], [7, 8, 9, 3], [4, 0, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]]
    assert batch["token_type_ids"].tolist() == [[0, 1, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0]]
    assert batch["labels"].tolist() == [2, 0, 1]
    assert all(t.dtype.is_floating_point is False and t.dtype.itemsize == 8 for t in batch.values())
    assert "token_type_ids" not in pad_batch([Encoded([5], None, 0), Encoded([6, 7], [0, 0], 1)], pad_id=0)
