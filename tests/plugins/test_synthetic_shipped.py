"""The default synthetic teachers ship pretrained, made by kdreg's own code (``synthetic.ship``).

If a change to the world, tokenizer, pretraining or sizes changes a default teacher's
key, the first test fails until ``python -m kdreg_plugins.synthetic.ship`` is run and its
folders are committed: the package never ships weights that its code would not make.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kdreg.plugins.spec import Head
from kdreg_plugins.synthetic import ship as ship_module
from kdreg_plugins.synthetic.teacher import CODE_VERSION, COMPLETE, SHIPPED, SyntheticTeacher, TeacherParams

TINY = dict(languages=2, topics=2, nouns_per_topic=2, verbs_per_topic=1, generic_nouns=2, generic_verbs=1,
            adjectives=1, documents=100, layers=1, hidden=16, heads=2, intermediate=32, steps=6, batch_size=8)


def _no_pretraining(*args: object, **kwargs: object) -> None:
    raise AssertionError("a shipped teacher was pretrained again")


def test_the_default_teachers_ship_pretrained_and_load_without_training(
        monkeypatch: pytest.MonkeyPatch, kdreg_home: Path) -> None:
    import torch

    teachers = ship_module.default_teachers()
    assert set(teachers) == {"base", "large"}
    expected = {teacher.cache_key() for teacher in teachers.values()}
    assert {p.name for p in SHIPPED.iterdir() if p.is_dir()} == expected  # nothing stale, nothing missing
    monkeypatch.setattr(SyntheticTeacher, "_pretrain_into", _no_pretraining)
    sizes = {}
    for size, teacher in teachers.items():
        summary = json.loads((teacher.shipped_path() / COMPLETE).read_text())
        assert summary["key"] == teacher.cache_key() and summary["code"] == CODE_VERSION
        assert summary["params"]["size"] == size
        assert teacher.ensure_pretrained() == teacher.shipped_path()
        assert teacher.first_use() is None  # nothing to say before a run: it is shipped
        loaded = teacher.load(Head("mlm"))
        assert loaded.load_report is not None and loaded.load_report.clean
        assert {p.dtype for p in loaded.model.parameters()} == {torch.float32}  # stored in 16 bits
        sizes[size] = sum(p.numel() for p in loaded.model.bert.encoder.parameters())
    assert sizes["large"] >= 3 * sizes["base"]
    assert not (kdreg_home / "cache" / "synthetic").exists()  # nothing pretrained, nothing cached


def test_ship_makes_exactly_what_first_use_makes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                 kdreg_home: Path) -> None:
    tiny = SyntheticTeacher(TeacherParams(**TINY))
    monkeypatch.setattr(ship_module, "default_teachers", lambda: {"base": tiny})
    (tmp_path / "0123stale").mkdir()
    [folder] = ship_module.ship(target=tmp_path)
    assert folder.name == tiny.cache_key() and (folder / COMPLETE).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == [folder.name]  # the stale teacher is gone
    cached = tiny.ensure_pretrained()  # first use on a user's machine: the same code, into the cache
    assert cached.is_relative_to(kdreg_home)
    assert (cached / "model.safetensors").read_bytes() == (folder / "model.safetensors").read_bytes()
    monkeypatch.setattr(SyntheticTeacher, "_pretrain_into", _no_pretraining)
    assert ship_module.ship(target=tmp_path) == [folder]  # there already: left alone
