"""Setups: one report row per setup, labelled by what sets it apart (report, query, API)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kdreg.api import connect
from kdreg.cli.main import app
from kdreg.reporting.report import build_report
from kdreg.reporting.setups import difference_labels
from kdreg.reporting.tables import render
from kdreg.store.filters import build_filters
from kdreg.store.reading import open_reader
from kdreg.store.store import open_store
from kdreg.testing.store_data import study_config, write_run


def test_labels_name_only_the_leaves_that_differ() -> None:
    a = study_config("finetune", 0, hparams={"finetune": {"learning_rate": 3e-5}})
    b = study_config("finetune", 1, hparams={"finetune": {"learning_rate": 5e-5}})
    c = {**study_config("finetune", 0), "languages": ["de", "fr"], "pipeline": "3"}
    assert difference_labels({"a": a, "b": b}) == {"a": "finetune.learning_rate=3e-5",
                                                    "b": "finetune.learning_rate=5e-5"}
    assert difference_labels({"a": a, "c": c}) == {
        "a": "finetune.learning_rate=3e-5, languages=all, pipeline=2",
        "c": "finetune.learning_rate=5e-5, languages=de+fr, pipeline=3",
    }
    versions = {"old": a, "new": {**a, "loss": {**a["loss"], "version": "0.2.0"}}}  # type: ignore[dict-item]
    assert difference_labels(versions) == {"old": "loss.version=0.1.0", "new": "loss.version=0.2.0"}
    extra = {**a, "hparams": {**a["hparams"], "pretrain": {"learning_rate": 1e-4}}}  # type: ignore[dict-item]
    assert difference_labels({"a": a, "x": extra}) == {"a": "pretrain.learning_rate=—",
                                                       "x": "pretrain.learning_rate=0.0001"}
    assert difference_labels({"a": a, "a0": {**a, "seed": 7}}) == {"a": "", "a0": ""}  # seeds are not setups


@pytest.fixture
def two_setups(tmp_path: Path) -> str:
    """A store where stage 'none' ran under two fine-tuning learning rates, two seeds each."""
    url = f"sqlite:///{tmp_path / 'setups.db'}"
    store = open_store(url)
    try:
        write_run(store, study_config("teacher", 0), {"en": 0.9, "de": 0.8})
        for lr, de in ((3e-5, (0.60, 0.62)), (5e-5, (0.70, 0.74))):
            for seed in (0, 1):
                write_run(store, study_config("none", seed, hparams={"finetune": {"learning_rate": lr}}),
                          {"en": 0.8, "de": de[seed]})
    finally:
        store.close()
    return url


def test_report_has_one_row_per_setup_labelled_by_the_difference(two_setups: str) -> None:
    reader = open_reader(two_setups)
    try:
        (table,) = build_report(reader, build_filters(status="succeeded"))
    finally:
        reader.close()
    assert table.label_columns == ("teacher", "student", "stage", "loss", "setup")
    assert [(r.label[2], r.label[4], r.runs, r.seeds) for r in table.rows] == [
        ("teacher", "—", 1, 1),
        ("none", "finetune.learning_rate=3e-5", 2, 2),
        ("none", "finetune.learning_rate=5e-5", 2, 2),
    ]
    assert [r.cells[1].mean for r in table.rows] == [pytest.approx(80), pytest.approx(61), pytest.approx(72)]
    assert table.notes == ()
    text = render([table], "markdown")
    assert "| loss | setup |" in text and "| finetune.learning_rate=5e-5 |" in text


def test_query_group_seeds_and_the_api_show_the_setups(two_setups: str) -> None:
    done = CliRunner().invoke(app, ["query", "--db", two_setups, "--group-seeds", "--stage", "none",
                                    "--format", "json"])
    assert done.exit_code == 0, done.output
    rows = json.loads(done.stdout)
    assert [(r["setup"], r["runs"]) for r in rows] == [("finetune.learning_rate=3e-5", 2),
                                                        ("finetune.learning_rate=5e-5", 2)]
    assert len({r["setup_hash"] for r in rows}) == 2
    table = CliRunner().invoke(app, ["query", "--db", two_setups, "--group-seeds", "--stage", "none"])
    assert "finetune.learning_rate=5e-5" in table.stdout
    with connect(two_setups.removeprefix("sqlite:///")) as store:
        groups = store.seed_groups(stage="none", frame=False)
    assert [g["setup"] for g in groups] == ["finetune.learning_rate=3e-5", "finetune.learning_rate=5e-5"]
