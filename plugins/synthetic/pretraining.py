"""A compact, seeded masked-LM pretraining loop for the synthetic teacher.

The synthetic teacher stands in for mBERT, which kdreg does not train; so it is
pretrained here, once per machine, by a loop small enough to read in one sitting:
BERT masking (15 % of the non-special tokens; of those 80 % [MASK], 10 % a random
word, 10 % kept), AdamW, linear warm-up and decay, gradient clipping. Batches are
grouped by length (sorted inside windows, then shuffled), which halves CPU time
against random batches because padding is most of a small encoder's work.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

WINDOW_BATCHES = 50


@dataclass(frozen=True)
class MLMSettings:
    """How the teacher is pretrained (part of its cache key)."""

    steps: int = 2000
    batch_size: int = 32
    learning_rate: float = 2e-3
    warmup_ratio: float = 0.05
    weight_decay: float = 0.01
    mlm_probability: float = 0.3
    dropout: float = 0.0
    max_length: int = 64
    seed: int = 0


def length_grouped_batches(lengths: Sequence[int], batch_size: int,
                           rng: random.Random) -> Iterator[list[int]]:
    """Endless batches of indices with similar lengths, in a seeded random order."""
    window = batch_size * WINDOW_BATCHES
    while True:
        indices = list(range(len(lengths)))
        rng.shuffle(indices)
        batches: list[list[int]] = []
        for start in range(0, len(indices), window):
            chunk = sorted(indices[start : start + window], key=lambda i: lengths[i])
            batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
        rng.shuffle(batches)
        yield from batches


def mask_tokens(ids: Any, special: Any, vocab_size: int, mask_id: int, probability: float,
                generator: Any) -> tuple[Any, Any]:
    """BERT masking of a padded id tensor; returns (inputs, labels with -100 where not predicted)."""
    import torch

    labels = ids.clone()
    chosen = (torch.rand(ids.shape, generator=generator) < probability) & ~special
    labels[~chosen] = -100
    inputs = ids.clone()
    replace = chosen & (torch.rand(ids.shape, generator=generator) < 0.8)
    inputs[replace] = mask_id
    randomise = chosen & ~replace & (torch.rand(ids.shape, generator=generator) < 0.5)
    inputs[randomise] = torch.randint(vocab_size, ids.shape, generator=generator)[randomise]
    return inputs, labels


def pretrain_mlm(model: Any, tokenizer: Any, texts: Sequence[str], settings: MLMSettings,
                 on_step: Callable[[int, float], None] | None = None) -> list[float]:
    """Train ``model`` (a BertForMaskedLM) on ``texts``; returns the loss of every step."""
    import torch
    from transformers import get_linear_schedule_with_warmup

    torch.manual_seed(settings.seed)
    generator = torch.Generator().manual_seed(settings.seed)
    encoded = tokenizer(list(texts), truncation=True, max_length=settings.max_length)["input_ids"]
    special_ids = torch.tensor(sorted(set(tokenizer.all_special_ids)))
    lengths = [len(x) for x in encoded]
    order = length_grouped_batches(lengths, settings.batch_size, random.Random(settings.seed))
    decay = [p for n, p in model.named_parameters() if not (n.endswith("bias") or "LayerNorm" in n)]
    no_decay = [p for n, p in model.named_parameters() if n.endswith("bias") or "LayerNorm" in n]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": settings.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=settings.learning_rate,
    )
    scheduler = get_linear_schedule_with_warmup(
        optimizer, int(settings.warmup_ratio * settings.steps), settings.steps
    )
    pad_id = tokenizer.pad_token_id
    model.train()
    losses: list[float] = []
    for step in range(1, settings.steps + 1):
        rows = [encoded[i] for i in next(order)]
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
        for r, row in enumerate(rows):
            ids[r, : len(row)] = torch.tensor(row)
        attention = (ids != pad_id).long()
        special = torch.isin(ids, special_ids)
        inputs, labels = mask_tokens(ids, special, len(tokenizer), tokenizer.mask_token_id,
                                     settings.mlm_probability, generator)
        loss = model(input_ids=inputs, attention_mask=attention, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
        if on_step is not None:
            on_step(step, losses[-1])
    model.eval()
    return losses


class Stopwatch:
    """Seconds since creation (for the one progress line at the end)."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def seconds(self) -> float:
        return time.perf_counter() - self.start
