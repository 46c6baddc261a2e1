"""KD fine-tuning steps/s: kdreg's training path against a plain PyTorch + transformers loop.

Same models (a 4-layer × 128 BERT teacher, a 2-layer × 64 student), same data (random
word sequences of 8–48 tokens, 3 labels), same batch size, same loss (Hinton KL, T = 2,
α = 0.5), same optimiser and schedule. The baseline is the loop people write by hand:
random batches padded to their longest member, a teacher forward pass every step.
kdreg is measured twice: with a live teacher (apples to apples) and as the pipeline
actually runs a logit-only loss (teacher logits computed once, then looked up; the
one-off cost is included).

    python bench/kd_steps.py [--steps 150] [--batch-size 32]

Prints steps/s of each and the ratio to the baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path


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


def plain_loop(tokenizer, teacher, student, examples, steps: int, batch_size: int) -> float:  # type: ignore[no-untyped-def]
    """The hand-written baseline; returns steps/s."""
    import torch
    import torch.nn.functional as F
    from transformers import get_linear_schedule_with_warmup

    torch.manual_seed(0)
    optimizer = torch.optim.AdamW(student.parameters(), lr=1e-3, weight_decay=0.01)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(0.1 * steps), steps)
    teacher.eval()
    student.train()
    rng = random.Random(0)
    order = list(range(len(examples)))
    temperature, alpha = 2.0, 0.5
    start = time.perf_counter()
    done = 0
    while done < steps:
        rng.shuffle(order)
        for i in range(0, len(order) - batch_size + 1, batch_size):
            chunk = [examples[j] for j in order[i : i + batch_size]]
            enc = tokenizer([e.text for e in chunk], padding=True, truncation=True, max_length=64,
                            return_tensors="pt")
            labels = torch.tensor([e.label for e in chunk])
            with torch.no_grad():
                teacher_logits = teacher(**enc).logits
            student_logits = student(**enc).logits
            kd = F.kl_div(F.log_softmax(student_logits / temperature, -1),
                          F.softmax(teacher_logits / temperature, -1), reduction="batchmean") * temperature**2
            loss = alpha * kd + (1 - alpha) * F.cross_entropy(student_logits, labels)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            done += 1
            if done >= steps:
                break
    return steps / (time.perf_counter() - start)


def kdreg_loop(tokenizer, teacher, student, examples, steps: int, batch_size: int, cached: bool) -> float:  # type: ignore[no-untyped-def]
    """kdreg's path (the functions StageRunner composes); returns steps/s including any logit caching."""
    import torch

    from kdreg.pipeline.data import encode_examples
    from kdreg.pipeline.evaluate import logits_for
    from kdreg.pipeline.stages import _endless
    from kdreg.pipeline.training import Device, forward, train
    from kdreg.plugins.registry import registry
    from kdreg.plugins.spec import ModelOutputs

    torch.manual_seed(0)
    device = Device("cpu")
    loss = registry().resolve("loss", "kl:temperature=2,alpha=0.5").create()
    start = time.perf_counter()
    encoded = encode_examples(tokenizer, examples, 64)
    batches = _endless(encoded, batch_size, tokenizer.pad_token_id, seed=0)
    if cached:
        table = logits_for(teacher, tokenizer, examples, max_length=64, batch_size=128, device=device)

        def side(batch):  # type: ignore[no-untyped-def]
            return ModelOutputs(logits=table[batch["index"]])
    else:
        teacher.eval()

        def side(batch):  # type: ignore[no-untyped-def]
            with torch.no_grad():
                return forward(teacher, batch, frozenset({"logits"}))

    train(device, student=student, loss=loss, stage="finetune", batches=batches, total_steps=steps,
          learning_rate=1e-3, weight_decay=0.01, warmup_ratio=0.1, teacher_side=side)
    return steps / (time.perf_counter() - start)


def main() -> None:
    import copy
    import os

    import torch
    import transformers

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--examples", type=int, default=2048)
    args = parser.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer, teacher, student = build_models(Path(tmp))
        examples = make_examples(args.examples)
        fresh = copy.deepcopy(student.state_dict())
        common = (tokenizer, teacher, student, examples, args.steps, args.batch_size)
        runs = {}
        for name, fn in (
            ("plain PyTorch loop (baseline)", lambda: plain_loop(*common)),
            ("kdreg, live teacher", lambda: kdreg_loop(*common, False)),
            ("kdreg, cached teacher logits", lambda: kdreg_loop(*common, True)),
        ):
            student.load_state_dict(fresh)
            runs[name] = fn()
    base = runs["plain PyTorch loop (baseline)"]
    print(f"KD fine-tuning, {args.steps} steps, batch {args.batch_size}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    for name, rate in runs.items():
        print(f"  {name:32s} {rate:7.1f} steps/s   ratio {rate / base:5.2f}x")


if __name__ == "__main__":
    main()
