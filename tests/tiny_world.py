"""The tiny world of the end-to-end `kdreg run` tests: a benchmark and a corpus written to disk.

A two-topic classification task in three languages (training data in English only) and
an unlabeled corpus in two, over the words w0–w59 of the tiny BERT's vocabulary
(:func:`kdreg.testing.tiny.save_tiny_bert`), and hyper-parameters that train for a
handful of steps. The fixture ``world`` (conftest.py) puts them in a temporary folder.
"""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from kdreg.cli.main import app

LANGUAGES = ("en", "de", "fr")
GRID = """
[teacher_finetune]
max_steps = 6
batch_size = 8
max_length = 24
learning_rate = 1e-3
[finetune]
max_steps = 6
batch_size = 8
max_length = 24
learning_rate = 1e-3
[pretrain]
max_steps = 4
batch_size = 8
max_length = 24
"""


def write_benchmark(root: Path, languages: tuple[str, ...] = LANGUAGES) -> Path:
    """A two-topic task: topic 0 uses words w0–w29, topic 1 words w30–w59 (every language alike).

    The first of ``languages`` is the source (the only one with a train split).
    """
    rng = random.Random(0)
    for language in languages:
        for split, n in (("train", 48 if language == languages[0] else 0), ("dev", 16), ("test", 16)):
            if n == 0:
                continue
            folder = root / language
            folder.mkdir(parents=True, exist_ok=True)
            rows = ["text\tlabel"]
            for _ in range(n):
                topic = rng.randint(0, 1)
                words = " ".join(f"w{rng.randint(0, 29) + 30 * topic}" for _ in range(rng.randint(3, 9)))
                rows.append(f"{words}\t{'sports' if topic else 'health'}")
            (folder / f"{split}.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root


def write_corpus(root: Path) -> Path:
    rng = random.Random(1)
    root.mkdir(parents=True, exist_ok=True)
    for language, n in (("en", 200), ("de", 80)):
        lines = [" ".join(f"w{rng.randint(0, 59)}" for _ in range(rng.randint(4, 12))) for _ in range(n)]
        (root / f"{language}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    """The rows of one SQL query on an SQLite file."""
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


def invoke(*args: str) -> Any:
    """``kdreg ARGS`` in-process (Typer's CliRunner); stdout and stderr together in ``.output``."""
    return CliRunner().invoke(app, list(args))
