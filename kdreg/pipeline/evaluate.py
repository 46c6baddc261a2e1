"""Zero-shot evaluation: every language, every evaluation split, every metric.

The model was fine-tuned on the source language only; each other language is a
zero-shot transfer score. Results keep the benchmark's own language code and its
normalised form, and flag the source language.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from kdreg.pipeline.data import encode_examples, labelled_batches
from kdreg.records import ResultRecord


def accuracy(gold: Sequence[int], predicted: Sequence[int]) -> float:
    """Fraction of exact matches."""
    return sum(g == p for g, p in zip(gold, predicted, strict=True)) / len(gold) if gold else 0.0


def macro_f1(gold: Sequence[int], predicted: Sequence[int], num_labels: int) -> float:
    """Unweighted mean of per-class F1 over the classes present in gold or predictions."""
    scores = []
    for label in range(num_labels):
        tp = sum(g == label and p == label for g, p in zip(gold, predicted, strict=True))
        fp = sum(g != label and p == label for g, p in zip(gold, predicted, strict=True))
        fn = sum(g == label and p != label for g, p in zip(gold, predicted, strict=True))
        if tp + fp + fn == 0:
            continue
        scores.append(2 * tp / (2 * tp + fp + fn))
    return sum(scores) / len(scores) if scores else 0.0


METRICS: dict[str, Callable[[Sequence[int], Sequence[int], int], float]] = {
    "accuracy": lambda g, p, _n: accuracy(g, p),
    "macro_f1": macro_f1,
}


def logits_for(model: Any, tokenizer: Any, examples: Sequence[Any], *, max_length: int, batch_size: int,
               device: Any) -> Any:
    """The model's logits for every example, in example order ([examples, labels], on the CPU).

    Batches are sorted by length (less padding); ``no_grad`` rather than inference mode, so
    the logits can serve as a fixed target in a training graph.
    """
    import torch

    encoded = encode_examples(tokenizer, examples, max_length)
    rows: list[Any] = [None] * len(encoded)
    model.to(device.device)
    model.eval()
    with torch.no_grad(), device.accelerator.autocast():
        for order, batch in labelled_batches(encoded, batch_size, tokenizer.pad_token_id, rng=None):
            batch = device.to_device(batch)
            inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in batch}
            logits = model(**inputs).logits.float().cpu()
            for position, index in enumerate(order):
                rows[index] = logits[position]
    return torch.stack(rows) if rows else torch.empty(0)


def predict(model: Any, tokenizer: Any, examples: Sequence[Any], *, max_length: int, batch_size: int,
            device: Any) -> list[int]:
    """Predicted label per example."""
    logits = logits_for(model, tokenizer, examples, max_length=max_length, batch_size=batch_size,
                        device=device)
    return logits.argmax(dim=-1).tolist() if len(logits) else []


def evaluate(model: Any, tokenizer: Any, benchmark: Any, languages: Sequence[str], *, max_length: int,
             batch_size: int, device: Any) -> list[ResultRecord]:
    """Scores of ``model`` on every language × evaluation split × metric of ``benchmark``."""
    from kdreg.errors import DataError

    source = benchmark.source_language()
    num_labels = len(benchmark.labels())
    metrics = [m for m in benchmark.metrics if m in METRICS]
    unknown = [m for m in benchmark.metrics if m not in METRICS]
    if unknown:
        raise DataError(f"Benchmark asks for unknown metric(s) {unknown}; kdreg computes {sorted(METRICS)}.")
    results: list[ResultRecord] = []
    for language in languages:
        lang = benchmark.normalize_language(language)
        for split in benchmark.eval_splits:
            examples = benchmark.examples(language, split)
            if not examples:
                continue
            predicted = predict(model, tokenizer, examples, max_length=max_length, batch_size=batch_size,
                                device=device)
            gold = [e.label for e in examples]
            for metric in metrics:
                value = METRICS[metric](gold, predicted, num_labels)
                results.append(ResultRecord(language, lang, split, metric, value, language == source))
    return results
