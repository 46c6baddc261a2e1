"""Grid expansion: the product minus what does not apply, canonical configs and their hashes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kdreg.errors import ConfigError
from kdreg.grid import config_hash, expand_grid
from kdreg.hparams import HParams
from kdreg.request import DEFAULT_GRID, build_request, load_grid_file, split_values


@dataclass
class FakeResolved:
    """Stands in for a ResolvedPlugin: grid expansion only needs name, spec and identity."""

    kind: str
    spec: str

    @property
    def name(self) -> str:
        return self.spec.split(":")[0]

    def identity(self) -> dict[str, Any]:
        return {"name": self.name, "spec": self.spec, "distribution": "kdreg", "version": "0.1.0"}


class FakeBenchmark:
    def languages(self) -> list[str]:
        return ["en", "de"]

    def source_language(self) -> str:
        return "en"


class FakePlugins:
    """Stands in for a PluginSet: resolves any name, and every benchmark has English and German."""

    def resolve(self, kind: str, text: str) -> FakeResolved:
        return FakeResolved(kind, text)

    def resolve_loss(self, text: str) -> FakeResolved:
        return FakeResolved("loss", text)

    def instance(self, plugin: FakeResolved) -> FakeBenchmark:
        return FakeBenchmark()


def _expand(**options: list[str]) -> list[Any]:
    request = build_request(options)
    return expand_grid(request, FakePlugins())  # type: ignore[arg-type]


def test_split_values_keeps_plugin_parameters_together() -> None:
    assert split_values(["kl:temperature=4,alpha=0.5,mse", "ce"]) == (
        "kl:temperature=4,alpha=0.5", "mse", "ce")
    assert split_values(["a,b", "c"]) == ("a", "b", "c")
    assert split_values(["hf:path=/m/x,revision=main"]) == ("hf:path=/m/x,revision=main",)
    # a later parameter whose value holds '+' (a language list) stays with its plugin
    assert split_values(["files:path=task,languages=deu_Latn+fr,source=en", "text"]) == (
        "files:path=task,languages=deu_Latn+fr,source=en", "text")
    assert split_values(["kl:temperature=2,alpha=0.5+0.5*hidden:layers=2,mse+hidden:layers=1"]) == (
        "kl:temperature=2,alpha=0.5+0.5*hidden:layers=2", "mse+hidden:layers=1")


def test_grid_is_the_product_minus_what_does_not_apply() -> None:
    jobs = _expand(teacher=["t"], student=["s1", "s2"], loss=["kl", "mse"], benchmark=["b"],
                   corpus=["c1", "c2"], stage=["none", "finetune", "pretrain", "both"], seed=["0", "1"])
    by_stage: dict[str, int] = {}
    for job in jobs:
        by_stage[job.stage] = by_stage.get(job.stage, 0) + 1
    # per seed: 1 teacher; none ignores loss and corpus: 2 students; finetune ignores corpus: 2×2;
    # pretrain and both use all: 2 students × 2 losses × 2 corpora each.
    assert by_stage == {"teacher": 2, "none": 4, "finetune": 8, "pretrain": 16, "both": 16}
    assert len({j.record.config_hash for j in jobs}) == len(jobs)
    assert jobs[0].stage == "teacher"
    none_job = next(j for j in jobs if j.stage == "none")
    assert none_job.loss is None and none_job.corpus is None and none_job.record.loss is None


def test_teacher_key_is_shared_and_pretrain_key_shared_by_pretrain_and_both() -> None:
    jobs = _expand(teacher=["t"], student=["s1", "s2"], loss=["kl"], benchmark=["b"], corpus=["c"],
                   stage=["finetune", "pretrain", "both"], seed=["0"])
    assert len({j.teacher_key for j in jobs}) == 1
    pretrain = {j.student.spec: j.pretrain_key for j in jobs if j.stage == "pretrain"}
    both = {j.student.spec: j.pretrain_key for j in jobs if j.stage == "both"}
    assert pretrain == both and len(set(pretrain.values())) == 2


def test_canonical_config_identifies_a_run() -> None:
    common = {"teacher": ["t"], "student": ["s"], "loss": ["kl"], "benchmark": ["b"], "stage": ["finetune"]}
    first = _expand(**common, seed=["3"])
    again = _expand(**common, seed=["3"])
    other_seed = _expand(**common, seed=["4"])
    assert [j.record.config_hash for j in first] == [j.record.config_hash for j in again]
    assert first[-1].record.config_hash != other_seed[-1].record.config_hash
    record = first[-1].record
    assert record.config_hash == config_hash(record.config)
    config = record.config
    assert config["seed"] == 3 and config["stage"] == "finetune"
    assert config["student"]["version"] == "0.1.0"
    assert set(config["hparams"]) == {"teacher_finetune", "finetune"}


def test_options_override_grid_file_and_defaults_apply(tmp_path: Path) -> None:
    grid = tmp_path / "grid.toml"
    grid.write_text('teacher = "t"\nstudent = ["a", "b"]\nstage = "none"\n'
                    '[finetune]\nlearning_rate = 3e-5\nepochs = 1\n')
    request = build_request({"student": ["c"]}, grid)
    assert request.get("student") == ("c",)
    assert request.get("teacher") == ("t",)
    assert request.get("stage") == ("none",)
    assert request.hparams.finetune.learning_rate == 3e-5 and request.hparams.finetune.epochs == 1.0
    defaults = build_request({"teacher": ["bert-large"]})
    assert defaults.get("student") == ("layers",) and defaults.get("benchmark") == ("xnli",)
    assert defaults.get("stage") == ("none", "finetune", "pretrain", "both")
    assert defaults.hparams == HParams()


def test_no_options_means_the_default_grid_file() -> None:
    assert DEFAULT_GRID.exists()
    data = load_grid_file(DEFAULT_GRID)
    request = build_request({})
    teachers = data["teacher"] if isinstance(data["teacher"], list) else [data["teacher"]]
    assert request.get("teacher") == tuple(teachers)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('teacher = "t"\nbogus = 1\n', "unknown key"),
        ('teacher = "t"\n[finetune]\nlr = 1\n', "Unknown hyper-parameter"),
        ('teacher = "t"\n[finetune]\nbatch_size = "big"\n', "must be int"),
        ('teacher = "t"\nstage = "sometimes"\n', "Unknown stage"),
        ("teacher = [\n", "not valid TOML"),
    ],
)
def test_bad_grid_files_are_one_line_config_errors(tmp_path: Path, content: str, message: str) -> None:
    grid = tmp_path / "g.toml"
    grid.write_text(content)
    with pytest.raises(ConfigError, match=message) as info:
        build_request({}, grid)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"seed": ["-1"]}, "Seed '-1' is not a whole number from 0 to 4294967295"),
        ({"seed": ["--5"]}, "Seed '--5'"),
        ({"seed": ["²"]}, "Seed '²'"),
        ({"seed": ["٣"]}, "Seed '٣'"),  # a digit to str.isdigit, not a seed
        ({"seed": ["99999999999999999999"]}, "Seed '99999999999999999999'"),
        ({"seed": ["4294967296"]}, "Seed '4294967296'"),
        ({"seed": [""]}, "--seed was given but names nothing"),
        ({"stage": [","]}, "--stage was given but names nothing"),
    ],
)
def test_bad_command_line_values_are_refused_before_anything_runs(options: dict[str, list[str]],
                                                                  message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        build_request({"teacher": ["t"], **options})
    assert build_request({"teacher": ["t"], "seed": ["0,4294967295"]}).get("seed") == ("0", "4294967295")


def test_a_grid_file_that_is_a_folder_or_lists_nothing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"Cannot read grid file .*: Is a directory"):
        build_request({}, tmp_path)
    grid = tmp_path / "g.toml"
    grid.write_text('teacher = "t"\nseed = []\n')
    with pytest.raises(ConfigError, match="seed is empty"):
        build_request({}, grid)


def test_pretrain_without_corpus_is_refused() -> None:
    request = build_request({"teacher": ["t"], "stage": ["pretrain"], "corpus": []})
    request = type(request)(values={**request.values, "corpus": ()}, hparams=request.hparams)
    with pytest.raises(ConfigError, match="corpus"):
        expand_grid(request, FakePlugins())  # type: ignore[arg-type]
