"""`kdreg cache`: what each cached model is, its size and last use; `cache clear` by name, kind, age.

The models here are folders made through the model cache's own API (what the pipeline's
``_save`` writes is checked end to end in tests/pipeline/test_run_cli.py).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kdreg.cli.main import app
from kdreg.pipeline import model_cache

DAY = 86400


def make_model(kind: str, key: str, about: dict[str, object] | None, size: int = 1000,
               age_days: float = 0) -> Path:
    def create(folder: Path) -> None:
        (folder / "model.safetensors").write_bytes(b"w" * size)
        if about is not None:
            model_cache.write_about(folder, about)

    path, made = model_cache.get_or_create(kind, key, create)
    assert made
    if age_days:
        past = time.time() - age_days * DAY
        os.utime(path / model_cache.COMPLETE, (past, past))
    return path


@pytest.fixture
def models() -> dict[str, Path]:
    return {
        "teacher": make_model("teacher", "a" * 64, {"kind": "teacher", "teacher": "bert-large",
                                                   "benchmark": "xnli", "seed": 0}, size=5000),
        "student": make_model("student-pretrained", "b" * 64, {
            "kind": "student-pretrained", "teacher": "bert-large", "student": "layers:k=6", "loss": "kl",
            "corpus": "wikipedia", "seed": 1}, age_days=40),
        "old": make_model("teacher", "c" * 64, None, age_days=10),  # written before metadata existed
    }


def cache(*args: str):  # type: ignore[no-untyped-def]
    done = CliRunner().invoke(app, ["cache", *args])
    assert done.exit_code == 0, done.output
    return done


def test_the_listing_says_what_each_model_is(models: dict[str, Path],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    listed = {m["name"]: m for m in json.loads(cache("--json").stdout)["models"]}
    # most recently used first
    assert list(listed) == ["teacher-aaaaaaaa", "teacher-cccccccc", "student-pretrained-bbbbbbbb"]
    assert listed["teacher-aaaaaaaa"]["description"] == "teacher bert-large fine-tuned on xnli, seed 0"
    assert listed["student-pretrained-bbbbbbbb"]["description"] == (
        "student layers:k=6 ← teacher bert-large, loss kl, corpus wikipedia, seed 1")
    assert listed["teacher-cccccccc"]["description"].startswith("(written before kdreg recorded")
    assert listed["teacher-aaaaaaaa"]["bytes"] > 5000 and listed["teacher-aaaaaaaa"]["kind"] == "teacher"
    monkeypatch.setenv("COLUMNS", "200")
    table = cache().stdout
    assert "teacher bert-large fine-tuned on xnli, seed 0" in table and "40d ago" in table


def test_loading_a_model_is_its_last_use(models: dict[str, Path]) -> None:
    before = {m["name"]: m["last_used"] for m in json.loads(cache("--json").stdout)["models"]}
    model_cache.require("student-pretrained", "b" * 64)
    after = {m["name"]: m["last_used"] for m in json.loads(cache("--json").stdout)["models"]}
    assert after["student-pretrained-bbbbbbbb"] > before["student-pretrained-bbbbbbbb"]
    assert after["teacher-cccccccc"] == before["teacher-cccccccc"]


def test_clear_selects_by_kind_and_age_and_dry_run_deletes_nothing(models: dict[str, Path]) -> None:
    dry = cache("clear", "--kind", "teacher", "--dry-run")
    assert "would be freed; nothing was deleted" in dry.stdout
    assert all(path.exists() for path in models.values())
    cache("clear", "--kind", "teacher", "--unused-for", "7d", "--yes")
    assert not models["old"].exists() and models["teacher"].exists() and models["student"].exists()
    cache("clear", "student-pretrained-bb", "--yes")  # by (the start of) its name
    assert not models["student"].exists() and models["teacher"].exists()
    assert "No cached model matches" in cache("clear", "--unused-for", "30d", "--yes").stdout
    assert models["teacher"].exists()


@pytest.mark.parametrize(("args", "message"), [
    (["--kind", "teachers"], "Unknown model kind 'teachers'; use one of: student-pretrained, teacher"),
    (["--unused-for", "a month"], "--unused-for 'a month': write a number and a unit m, h, d or w"),
    (["nothing-like-it"], "No cached model is named 'nothing-like-it'"),
])
def test_bad_selections_are_one_line(models: dict[str, Path], args: list[str], message: str) -> None:
    done = CliRunner().invoke(app, ["cache", "clear", *args, "--yes"])
    assert done.exit_code == 1 and message in done.output and len(done.output.strip().splitlines()) == 1
    assert all(path.exists() for path in models.values())
