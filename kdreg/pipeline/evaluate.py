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


Batches = list[tuple[list[int], dict[str, Any]]]
"""(example indices, padded batch) pairs, sorted by length."""


def _logits(model: Any, batches: Batches, size: int, device: Any) -> Any:
    """The model's logits for ``size`` examples given as ``batches``, in example order (on the CPU)."""
    import torch

    rows: list[Any] = [None] * size
    model.to(device.device)
    model.eval()
    with torch.no_grad(), device.accelerator.autocast():
        for order, batch in batches:
            batch = device.to_device(batch)
            inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in batch}
            logits = model(**inputs).logits.float().cpu()
            for position, index in enumerate(order):
                rows[index] = logits[position]
    return torch.stack(rows) if rows else torch.empty(0)


def logits_for(model: Any, tokenizer: Any, examples: Sequence[Any], *, max_length: int, batch_size: int,
               device: Any) -> Any:
    """The model's logits for every example, in example order ([examples, labels], on the CPU).

    Batches are sorted by length (less padding); ``no_grad`` rather than inference mode, so
    the logits can serve as a fixed target in a training graph.
    """
    encoded = encode_examples(tokenizer, examples, max_length)
    batches = list(labelled_batches(encoded, batch_size, tokenizer.pad_token_id, rng=None))
    return _logits(model, batches, len(encoded), device)


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """What a tokenizer does to text, as a hash: equal for two loads of the same tokenizer.

    A fast tokenizer's whole definition (normaliser, pre-tokeniser, vocabulary, special
    tokens) is its JSON; a slow one is described by its class, settings and vocabulary.
    """
    import hashlib

    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        text = backend.to_str()
    else:
        text = repr((type(tokenizer).__name__, sorted(tokenizer.get_vocab().items()),
                     sorted((k, repr(v)) for k, v in getattr(tokenizer, "init_kwargs", {}).items())))
    return hashlib.sha256(text.encode()).hexdigest()


class EvaluationSets:
    """Evaluation sets tokenised and padded once, for every run of a process that evaluates them.

    The runs of a grid evaluate the same benchmark languages and splits, most of them with
    one tokenizer (students derived from the teacher): rendering, tokenising and padding
    them again for every run was most of a small run's cost outside training. Keyed by what
    changes the batches: the tokenizer's fingerprint, the benchmark, language, split, maximum
    length and batch size.
    """

    def __init__(self) -> None:
        self._sets: dict[tuple[str, ...], tuple[Batches, list[int]]] = {}
        self._fingerprints: dict[int, tuple[Any, str]] = {}

    def _fingerprint(self, tokenizer: Any) -> str:
        known = self._fingerprints.get(id(tokenizer))
        if known is None or known[0] is not tokenizer:  # an id is only unique while the object lives
            known = (tokenizer, tokenizer_fingerprint(tokenizer))
            self._fingerprints[id(tokenizer)] = known
        return known[1]

    def get(self, tokenizer: Any, benchmark: Any, benchmark_key: str, language: str, split: str,
            max_length: int, batch_size: int) -> tuple[Batches, list[int]]:
        """(batches, gold labels) of one language and split; empty when it has no examples."""
        key = (self._fingerprint(tokenizer), benchmark_key, language, split, str(max_length), str(batch_size))
        if key not in self._sets:
            examples = benchmark.examples(language, split)
            encoded = encode_examples(tokenizer, examples, max_length)
            batches = list(labelled_batches(encoded, batch_size, tokenizer.pad_token_id, rng=None))
            self._sets[key] = (batches, [e.label for e in examples])
        return self._sets[key]


def evaluate(model: Any, tokenizer: Any, benchmark: Any, languages: Sequence[str], *, max_length: int,
             batch_size: int, device: Any, sets: EvaluationSets | None = None,
             benchmark_key: str | None = None) -> list[ResultRecord]:
    """Scores of ``model`` on every language × evaluation split × metric of ``benchmark``.

    ``sets`` keeps the tokenised evaluation sets for later calls (``benchmark_key`` names the
    benchmark in it, e.g. its spec); without it they are prepared for this call only.
    """
    from kdreg.errors import DataError

    sets = sets if sets is not None else EvaluationSets()
    key = benchmark_key if benchmark_key is not None else f"{type(benchmark).__name__}@{id(benchmark)}"
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
            batches, gold = sets.get(tokenizer, benchmark, key, language, split, max_length, batch_size)
            if not gold:
                continue
            logits = _logits(model, batches, len(gold), device)
            predicted = logits.argmax(dim=-1).tolist()
            for metric in metrics:
                value = METRICS[metric](gold, predicted, num_labels)
                results.append(ResultRecord(language, lang, split, metric, value, language == source))
    return results
