"""Turning examples and corpus text into padded batches, grouped by length.

Grouping batches by length (shuffle, then sort inside windows of ~50 batches, then
shuffle the batches) roughly halves CPU time against random batches, because padding
is what a small encoder spends most of its time on. Everything here is deterministic
given the seed.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from kdreg.plugins.spec import Example

WINDOW_BATCHES = 50


@dataclass
class Encoded:
    """Token ids of one example (or corpus line) with its label."""

    input_ids: list[int]
    token_type_ids: list[int] | None
    label: int


def encode_examples(tokenizer: Any, examples: Sequence[Example], max_length: int) -> list[Encoded]:
    """Tokenise examples (text pairs where present), truncated to ``max_length``."""
    if not examples:
        return []
    texts = [e.text for e in examples]
    pairs = [e.text_pair for e in examples]
    has_pairs = any(p is not None for p in pairs)
    enc = tokenizer(
        texts,
        [p or "" for p in pairs] if has_pairs else None,
        truncation=True,
        max_length=max_length,
        padding=False,
    )
    token_types = enc.get("token_type_ids")
    return [
        Encoded(ids, token_types[i] if token_types is not None else None, examples[i].label)
        for i, ids in enumerate(enc["input_ids"])
    ]


def length_grouped_order(lengths: Sequence[int], batch_size: int,
                         rng: random.Random | None) -> list[list[int]]:
    """Batches of indices: similar lengths together; shuffled when ``rng`` is given, else sorted."""
    indices = list(range(len(lengths)))
    if rng is None:
        indices.sort(key=lambda i: lengths[i])
        return [indices[i : i + batch_size] for i in range(0, len(indices), batch_size)]
    rng.shuffle(indices)
    window = batch_size * WINDOW_BATCHES
    batches: list[list[int]] = []
    for start in range(0, len(indices), window):
        chunk = sorted(indices[start : start + window], key=lambda i: lengths[i])
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


def pad_batch(items: Sequence[Encoded], pad_id: int) -> dict[str, Any]:
    """Tensors for a batch: input_ids, attention_mask, (token_type_ids), labels.

    Each tensor is made by one ``torch.tensor`` call over padded rows: filling row by row
    costs a tensor per example, which for a small model is a noticeable share of a step.
    """
    import torch

    lengths = [len(e.input_ids) for e in items]
    width = max(lengths)
    batch: dict[str, Any] = {
        "input_ids": torch.tensor(
            [e.input_ids + [pad_id] * (width - n) for e, n in zip(items, lengths, strict=True)],
            dtype=torch.long,
        ),
        "attention_mask": torch.tensor([[1] * n + [0] * (width - n) for n in lengths], dtype=torch.long),
        "labels": torch.tensor([e.label for e in items], dtype=torch.long),
    }
    if items[0].token_type_ids is not None:
        batch["token_type_ids"] = torch.tensor(
            [(e.token_type_ids if e.token_type_ids is not None else [0] * n) + [0] * (width - n)
             for e, n in zip(items, lengths, strict=True)],
            dtype=torch.long,
        )
    return batch


def labelled_batches(
    encoded: Sequence[Encoded], batch_size: int, pad_id: int, rng: random.Random | None
) -> Iterator[tuple[list[int], dict[str, Any]]]:
    """(indices, batch) pairs over ``encoded``; shuffled and length-grouped when ``rng`` is given."""
    for order in length_grouped_order([len(e.input_ids) for e in encoded], batch_size, rng):
        yield order, pad_batch([encoded[i] for i in order], pad_id)


def mlm_batches(
    tokenizer: Any,
    texts: Iterator[str],
    *,
    batch_size: int,
    max_length: int,
    mlm_probability: float,
    seed: int,
) -> Iterator[dict[str, Any]]:
    """Endless masked-LM batches from a text stream (BERT masking: 80 % [MASK], 10 % random, 10 % kept).

    Lines are read a window at a time and length-grouped; the collator's masking generator is
    seeded from ``seed``, so the batches are the same on every run.
    """
    import torch
    from transformers import DataCollatorForLanguageModeling

    # The collator's own ``seed`` refuses to work outside the main process (it expects a
    # DataLoader worker); a generator seeded here is the same one it would make, anywhere.
    collator = DataCollatorForLanguageModeling(tokenizer, mlm=True, mlm_probability=mlm_probability,
                                               return_tensors="pt")
    collator.generator = torch.Generator().manual_seed(seed)
    rng = random.Random(seed)
    window = batch_size * WINDOW_BATCHES
    while True:
        lines: list[str] = []
        for line in texts:
            if line.strip():
                lines.append(line)
            if len(lines) >= window:
                break
        if not lines:
            return
        enc = tokenizer(lines, truncation=True, max_length=max_length, padding=False)
        ids = enc["input_ids"]
        for order in length_grouped_order([len(x) for x in ids], batch_size, rng):
            yield dict(collator([{"input_ids": ids[i]} for i in order]))
