"""What each plugin kind must *do*, checked on tiny real inputs (used by :mod:`kdreg.testing.checks`).

The inputs are shaped like the pipeline's (see :mod:`kdreg.pipeline.training`):

* a **loss** gets random ``ModelOutputs`` with only the outputs in ``needs`` set, a
  teacher with 4 layers and a student with 2 (same width, heads and vocabulary, like a
  ``layers`` student; a plugin's ``check_setup`` may give other sizes), in both stages:
  fine-tuning (class logits ``[batch, labels]``) and pretraining (masked-LM logits
  ``[batch, tokens, vocab]``, labels -100 where nothing is predicted). It must return a
  finite scalar whose gradient reaches the student's outputs and not the teacher's —
  teacher tensors here *require* grad on purpose, so a loss that forgets to detach them
  is caught. A ``prepare`` that refuses these models fails the check (its maths never
  ran) unless ``check_setup.skips`` declares why it cannot apply;
* a **benchmark** must yield valid examples for every language in every evaluation split,
  and training examples in its source language;
* a **corpus** must yield text for every language, the same lines on every call;
* a **teacher** or **student**: see :mod:`kdreg.testing.model_checks`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from kdreg.plugins.spec import CheckSetup, LossBatch, ModelGeometry, ModelOutputs
from kdreg.testing.checks import CheckContext, CheckFailed, CheckSkipped, describe_exception
from kdreg.testing.model_checks import check_student, check_teacher

BATCH, TOKENS, LABELS, VOCAB, WIDTH, HEADS = 3, 6, 3, 40, 16, 2
TEACHER_LAYERS, STUDENT_LAYERS = 4, 2
LENGTHS = (6, 4, 5)
"""Real lengths of the batch's rows: two are padded."""


# ------------------------------------------------------------------------ loss
def _outputs(needs: frozenset[str], stage: str, geometry: ModelGeometry, seed: int) -> ModelOutputs:
    """Random leaf tensors (requiring grad) for the outputs in ``needs``; the others None."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    layers, width, heads = geometry.num_layers, geometry.hidden_size, geometry.num_heads

    def leaf(*shape: int, softmax: bool = False) -> torch.Tensor:
        value = torch.randn(*shape, generator=gen)
        return (value.softmax(-1) if softmax else value).requires_grad_(True)

    def per_layer(name: str, *shape: int, softmax: bool = False, count: int = layers) -> Any:
        return tuple(leaf(*shape, softmax=softmax) for _ in range(count)) if name in needs else None

    logits_shape = (BATCH, LABELS) if stage == "finetune" else (BATCH, TOKENS, geometry.vocab_size)
    head_dim = max(1, width // heads)
    return ModelOutputs(
        logits=leaf(*logits_shape) if "logits" in needs else None,
        hidden_states=per_layer("hidden_states", BATCH, TOKENS, width, count=layers + 1),
        attentions=per_layer("attentions", BATCH, heads, TOKENS, TOKENS, softmax=True),
        queries=per_layer("queries", BATCH, heads, TOKENS, head_dim),
        keys=per_layer("keys", BATCH, heads, TOKENS, head_dim),
        values=per_layer("values", BATCH, heads, TOKENS, head_dim),
    )


def _loss_batch(stage: str) -> LossBatch:
    import torch

    mask = torch.zeros(BATCH, TOKENS, dtype=torch.long)
    for row, length in enumerate(LENGTHS):
        mask[row, :length] = 1
    if stage == "finetune":
        labels = torch.arange(BATCH) % LABELS
    else:
        labels = torch.full((BATCH, TOKENS), -100, dtype=torch.long)
        for row, length in enumerate(LENGTHS):
            labels[row, 1] = (7 * row + 3) % VOCAB
            labels[row, length - 2] = (5 * row + 11) % VOCAB
    return LossBatch(labels=labels, attention_mask=mask, stage=stage)  # type: ignore[arg-type]


def _tensors(outputs: ModelOutputs | None) -> list[tuple[str, Any]]:
    if outputs is None:
        return []
    named: list[tuple[str, Any]] = []
    if outputs.logits is not None:
        named.append(("logits", outputs.logits))
    for field_name in ("hidden_states", "attentions", "queries", "keys", "values"):
        for index, tensor in enumerate(getattr(outputs, field_name) or ()):
            named.append((f"{field_name}[{index}]", tensor))
    return named


def _geometry_text(g: ModelGeometry) -> str:
    return f"vocabulary {g.vocab_size}, width {g.hidden_size}, {g.num_layers} layers, {g.num_heads} heads"


def exercise_loss(loss: Any, stage: str, setup: CheckSetup | None = None) -> str:
    """prepare + compute + backward on a tiny batch; the pass reason, or CheckFailed/CheckSkipped.

    A loss whose ``prepare`` refuses the tiny models fails (its maths never ran) unless its
    ``check_setup`` declares that refusal in ``skips``; ``check_setup`` may also give the
    geometry to use instead.
    """
    import torch

    from kdreg.errors import IncompatiblePluginsError

    setup = setup or CheckSetup()
    needs = frozenset(loss.needs)
    uses_teacher = bool(loss.uses_teacher)
    student_geometry = setup.student or ModelGeometry(VOCAB, WIDTH, STUDENT_LAYERS, HEADS)
    teacher_geometry = setup.teacher or ModelGeometry(VOCAB, WIDTH, TEACHER_LAYERS, HEADS)
    if not uses_teacher:
        teacher_geometry = None
    row = f"loss: {stage}"
    try:
        extra = loss.prepare(teacher_geometry, student_geometry, stage)
    except IncompatiblePluginsError as exc:
        refusal = str(exc).strip().rstrip(".")
        if row in setup.skips:
            raise CheckSkipped(f"declared by the plugin: {setup.skips[row]} (prepare: {refusal})") from None
        models = f"student {_geometry_text(student_geometry)}" + (
            f"; teacher {_geometry_text(teacher_geometry)}" if teacher_geometry else "")
        raise CheckFailed(
            f"prepare refused the check's tiny models in the {stage} stage ({models}), so compute never ran: "
            f"{refusal}. To fix, set check_setup = CheckSetup(...) on the class (kdreg.plugins.spec): "
            "params= or teacher=/student=ModelGeometry(...) that fit, "
            f"or skips={{{row!r}: '<why it cannot apply>'}}"
        ) from None
    if extra is not None and not isinstance(extra, torch.nn.Module):
        raise CheckFailed(f"prepare must return a torch.nn.Module or None, not {type(extra).__name__}")
    student = _outputs(needs, stage, student_geometry, seed=1)
    teacher = _outputs(needs, stage, teacher_geometry, seed=2) if teacher_geometry else None
    try:
        value = loss.compute(student, teacher, _loss_batch(stage))
    except Exception as exc:
        raise CheckFailed(
            f"compute raised {describe_exception(exc)} (it received only {sorted(needs)}: does 'needs' list "
            "every output compute reads?)"
        ) from None
    if not isinstance(value, torch.Tensor):
        raise CheckFailed(f"compute returned {type(value).__name__}, not a torch.Tensor")
    if value.dim() != 0:
        raise CheckFailed(f"compute must return a scalar (0-dim) tensor, got shape {tuple(value.shape)}")
    if not value.is_floating_point():
        raise CheckFailed(f"compute returned a {value.dtype} tensor; a loss is a floating-point scalar")
    number = float(value.detach())
    if not torch.isfinite(value.detach()):
        raise CheckFailed(f"compute returned {number}, which is not finite, on a tiny random batch")
    if not value.requires_grad:
        raise CheckFailed("compute returned a tensor without a graph: no gradient can reach the student")
    value.backward()
    return _gradient_report(number, student, teacher, extra)


def _gradient_report(number: float, student: ModelOutputs, teacher: ModelOutputs | None, extra: Any) -> str:
    import torch

    reached = []
    for name, tensor in _tensors(student):
        if tensor.grad is None:
            continue
        if not torch.isfinite(tensor.grad).all():
            raise CheckFailed(f"the gradient for student {name} is not finite")
        if tensor.grad.abs().sum() > 0:
            reached.append(name)
    if not reached:
        raise CheckFailed("compute returned a value, but no gradient reaches the student's outputs")
    leaked = [
        name for name, tensor in _tensors(teacher) if tensor.grad is not None and tensor.grad.abs().sum() > 0
    ]
    if leaked:
        raise CheckFailed(
            f"gradients reach the teacher's {', '.join(leaked[:3])}: detach the teacher outputs "
            "(the teacher is never trained)"
        )
    trainable = [p for p in extra.parameters() if p.requires_grad] if extra is not None else []
    if trainable and all(p.grad is None for p in trainable):
        raise CheckFailed(
            "prepare returned trainable parameters, but compute's value does not depend on them"
        )
    kinds = sorted({name.split("[")[0] for name in reached})
    extra_note = (
        f"; {sum(p.numel() for p in trainable)} trainable parameters from prepare" if trainable else ""
    )
    return f"value {number:.4g}; gradients reach student {', '.join(kinds)} only{extra_note}"


def check_loss(ctx: CheckContext) -> None:
    for stage in ("finetune", "pretrain"):
        with ctx.row(f"loss: {stage}") as note:
            note[0] = exercise_loss(ctx.instance, stage, ctx.setup)


# ------------------------------------------------------------------- benchmark
def _validate_examples(examples: Any, num_labels: int, where: str) -> int:
    """Raise CheckFailed naming ``where`` unless ``examples`` is a non-empty sequence of valid examples."""
    try:
        items = list(examples)
    except TypeError:
        raise CheckFailed(f"examples({where}) returned {type(examples).__name__}, not a sequence") from None
    if not items:
        raise CheckFailed(f"examples({where}) is empty")
    for index, example in enumerate(items):
        text = getattr(example, "text", None)
        label = getattr(example, "label", None)
        pair = getattr(example, "text_pair", None)
        problem = None
        if not isinstance(text, str) or not text.strip():
            problem = f"text is {text!r}, not a non-empty string"
        elif pair is not None and not isinstance(pair, str):
            problem = f"text_pair is {type(pair).__name__}, not a string or None"
        elif isinstance(label, bool) or not isinstance(label, int):
            problem = f"label is {label!r}, not an int"
        elif not 0 <= label < num_labels:
            problem = f"label {label} is outside range(len(labels())) = range({num_labels})"
        if problem:
            raise CheckFailed(f"examples({where}) item {index}: {problem}")
    return len(items)


def check_benchmark(ctx: CheckContext) -> None:
    bench = ctx.instance
    state: dict[str, Any] = {}
    with ctx.row("benchmark: languages") as note:
        languages = list(bench.languages())
        bad = [lang for lang in languages if not isinstance(lang, str) or not lang.strip()]
        if not languages or bad:
            raise CheckFailed(f"languages() must be non-empty language codes, got {languages[:5]!r}")
        if len(set(languages)) != len(languages):
            raise CheckFailed("languages() lists a language twice")
        state["languages"] = languages
        note[0] = _listing(languages)
    with ctx.row("benchmark: source_language") as note:
        source = bench.source_language()
        if source not in state.get("languages", [source]):
            raise CheckFailed(f"source_language() {source!r} is not among languages()")
        state["source"] = source
        note[0] = str(source)
    with ctx.row("benchmark: labels") as note:
        labels = list(bench.labels())
        if len(labels) < 2 or len(set(labels)) != len(labels) or not all(isinstance(x, str) for x in labels):
            raise CheckFailed(f"labels() must be two or more distinct strings, got {labels[:5]!r}")
        state["labels"] = labels
        note[0] = _listing(labels)
    with ctx.row("benchmark: normalize_language") as note:
        pairs = [(lang, bench.normalize_language(lang)) for lang in state.get("languages", [])]
        bad = [lang for lang, code in pairs if not isinstance(code, str) or not code]
        if bad:
            raise CheckFailed(f"normalize_language({bad[0]!r}) returned an empty or non-string code")
        note[0] = _listing([f"{a}→{b}" for a, b in pairs])
    if not {"languages", "source", "labels"} <= set(state):
        ctx.skip("benchmark: examples", "not run: languages, source or labels failed")
        return
    num_labels, source = len(state["labels"]), state["source"]

    def count(language: str, split: str) -> int:
        where = f"{language!r}, {split!r}"
        return _validate_examples(bench.examples(language, split), num_labels, where)

    with ctx.row(f"examples: {source}/train") as note:
        note[0] = f"{count(source, 'train')} examples"
    for split in bench.eval_splits:
        with ctx.row(f"examples: {split}") as note:
            note[0] = _listing([f"{lang} {count(lang, split)}" for lang in state["languages"]])


def _listing(items: list[str], limit: int = 8) -> str:
    shown = ", ".join(str(i) for i in items[:limit])
    return shown + (f" … ({len(items)} in all)" if len(items) > limit else "")


# ---------------------------------------------------------------------- corpus
def check_corpus(ctx: CheckContext) -> None:
    corpus = ctx.instance
    languages: list[str] = []
    with ctx.row("corpus: languages") as note:
        languages = list(corpus.languages())
        if not languages or not all(isinstance(x, str) and x for x in languages):
            raise CheckFailed(f"languages() must be non-empty language codes, got {languages[:5]!r}")
        note[0] = _listing(languages)
    with ctx.row("corpus: texts") as note:
        counts = []
        for language in languages:
            first = list(itertools.islice(iter(corpus.texts(language)), 20))
            if not first:
                raise CheckFailed(f"texts({language!r}) yields no text")
            bad = [line for line in first if not isinstance(line, str) or not line.strip()]
            if bad:
                raise CheckFailed(f"texts({language!r}) yields {bad[0]!r}; lines must be non-empty strings")
            if list(itertools.islice(iter(corpus.texts(language)), 20)) != first:
                raise CheckFailed(
                    f"texts({language!r}) yields different lines on a second call; kdreg needs a "
                    "deterministic order so runs can be repeated"
                )
            counts.append(f"{language} ✓")
        note[0] = _listing(counts)
    with ctx.row("corpus: sizes") as note:
        sizes = corpus.sizes()
        if sizes is None:
            note[0] = "None: languages are sampled uniformly"
        else:
            missing = [lang for lang in languages if lang not in sizes]
            wrong = {k: v for k, v in sizes.items() if isinstance(v, bool) or not isinstance(v, int) or v < 0}
            if missing or wrong:
                raise CheckFailed(
                    f"sizes() must give a line count ≥ 0 for every language; missing {missing}, bad {wrong}"
                )
            note[0] = _listing([f"{k} {v}" for k, v in sizes.items()])


def check_executor(ctx: CheckContext) -> None:
    """Run a probe task graph through the executor (see :mod:`kdreg.testing.executor_checks`)."""
    from kdreg.testing.executor_checks import check_executor as run_probe

    run_probe(ctx)


BEHAVIOURS: dict[str, Callable[[CheckContext], None]] = {
    "loss": check_loss,
    "benchmark": check_benchmark,
    "corpus": check_corpus,
    "teacher": check_teacher,
    "student": check_student,
    "executor": check_executor,
}
