"""Seed aggregation: SQL sums turned into mean ± sample std (n), checked against hand computation."""

from __future__ import annotations

import random
import statistics
from collections import defaultdict
from pathlib import Path

import pytest

from kdreg.reporting.aggregate import Aggregate, seed_groups, zero_shot_average
from kdreg.store.filters import build_filters
from kdreg.store.queries import read_connection
from kdreg.store.store import open_store
from kdreg.testing.store_data import study_config, write_run


def test_aggregate_of_values_is_mean_sample_std_and_n() -> None:
    values = [0.71, 0.69, 0.74]
    agg = Aggregate.of(values)
    assert agg.mean == pytest.approx(statistics.mean(values))
    assert agg.std == pytest.approx(statistics.stdev(values))  # ddof = 1
    assert agg.n == 3
    assert Aggregate.of([0.5]) == Aggregate(0.5, None, 1)
    assert Aggregate.of([]) is None


def test_sums_agree_with_the_two_pass_computation() -> None:
    rng = random.Random(3)
    for n in (2, 3, 5, 30):
        values = [rng.uniform(0.3, 0.9) for _ in range(n)]
        from_sums = Aggregate.from_sums(n, sum(values) / n, sum(v * v for v in values))
        reference = Aggregate.of(values)
        assert from_sums.mean == pytest.approx(reference.mean, abs=1e-12)
        assert from_sums.std == pytest.approx(reference.std, rel=1e-7)
    # identical values: rounding must not turn a zero variance into a negative one
    assert Aggregate.from_sums(3, 0.7, 3 * 0.7 * 0.7 - 1e-17).std == 0.0
    assert Aggregate.from_sums(0, None, None) is None
    assert Aggregate.from_sums(1, 0.4, 0.16) == Aggregate(0.4, None, 1)


def test_text_and_scaling() -> None:
    agg = Aggregate(0.7123, 0.0081, 3).scaled(100)
    assert agg.text(1) == "71.2 ± 0.8 (3)"
    assert Aggregate(0.5, None, 1).scaled(100).text(2) == "50.00 (1)"


def test_zero_shot_average_leaves_the_source_out() -> None:
    assert zero_shot_average({"en": 0.9, "de": 0.6, "fr": 0.8}, "en") == pytest.approx(0.7)
    assert zero_shot_average({"en": 0.9}, "en") is None


@pytest.mark.parametrize(("metric", "split"), [("accuracy", "test"), ("macro_f1", "validation")])
def test_seed_groups_match_hand_computed_means_and_stds(seeded, metric: str, split: str) -> None:
    store, runs = seeded
    truth: dict[tuple, list] = defaultdict(list)
    for run in runs:
        if run.status == "succeeded":
            truth[run.group].append(run.scores(metric, split))
    with read_connection(store) as conn:
        groups = seed_groups(conn, build_filters(status="succeeded"), metric, split)
    assert len(groups) == len(truth) == 2 * 2 * (1 + 2 * 10)
    for group in groups:
        k = group.key
        per_run = truth[(k["teacher"], k["student"], k["stage"], k["loss"], k["benchmark"], k["corpus"])]
        assert group.runs == group.seeds == len(per_run) == 3 and group.setup == ""
        assert group.source_lang == "en"
        for lang in ("de", "fr", "zh"):
            values = [scores[lang] for scores in per_run]
            cell = group.languages[lang]
            assert (cell.mean, cell.std, cell.n) == (
                pytest.approx(statistics.mean(values), abs=1e-12),
                pytest.approx(statistics.stdev(values), rel=1e-6),
                3,
            )
        source = [scores["en"] for scores in per_run]
        assert group.source.mean == pytest.approx(statistics.mean(source), abs=1e-12)
        assert group.source.std == pytest.approx(statistics.stdev(source), rel=1e-6)
        zero_shot = [zero_shot_average(scores, "en") for scores in per_run]
        assert group.zero_shot.mean == pytest.approx(statistics.mean(zero_shot), abs=1e-12)
        assert group.zero_shot.std == pytest.approx(statistics.stdev(zero_shot), rel=1e-6)


def test_groups_follow_the_study_order(seeded) -> None:
    store, _ = seeded
    with read_connection(store) as conn:
        groups = seed_groups(
            conn,
            build_filters(
                teacher="mbert", benchmark="xnli", student="distil", status="succeeded", keep_unset=True
            ),
            "accuracy",
            "test",
        )
    stages = [g.key["stage"] for g in groups]
    assert stages == ["teacher", "none"] + ["finetune"] * 3 + ["pretrain"] * 3 + ["both"] * 3


def test_a_run_without_results_counts_as_a_run_but_not_as_a_value(seeded) -> None:
    store, _ = seeded
    with read_connection(store) as conn:
        (group,) = seed_groups(
            conn,
            build_filters(teacher="mbert", benchmark="xnli", student="distil", stage="finetune", loss="mse"),
            "accuracy",
            "test",
        )
    assert (group.runs, group.seeds) == (4, 4)  # seeds 0-2 succeeded, seed 7 failed
    assert group.zero_shot.n == 3 and group.languages["de"].n == 3


def test_two_setups_of_the_same_plugins_are_two_groups_labelled_by_what_differs(tmp_path: Path) -> None:
    """Runs that differ only in a hyper-parameter are never pooled: one group per setup."""
    store = open_store(f"sqlite:///{tmp_path / 'setups.db'}")
    try:
        for lr, de in ((3e-5, (0.60, 0.62)), (5e-5, (0.70, 0.74))):
            for seed in (0, 1):
                config = study_config("none", seed, hparams={"finetune": {"learning_rate": lr}})
                write_run(store, config, {"en": 0.8, "de": de[seed]})
        with read_connection(store) as conn:
            groups = seed_groups(conn, build_filters(), "accuracy", "test")
    finally:
        store.close()
    assert [(g.setup, g.runs, g.seeds) for g in groups] == [
        ("finetune.learning_rate=3e-5", 2, 2), ("finetune.learning_rate=5e-5", 2, 2)]
    assert [g.languages["de"].mean for g in groups] == [pytest.approx(0.61), pytest.approx(0.72)]
    assert groups[0].key["setup_hash"] != groups[1].key["setup_hash"]
    assert groups[0].record()["setup"] == "finetune.learning_rate=3e-5"


def test_a_group_alone_with_its_specs_has_no_setup_label(seeded) -> None:
    store, _ = seeded
    with read_connection(store) as conn:
        groups = seed_groups(conn, build_filters(teacher="mbert", benchmark="xnli"), "accuracy", "test")
    assert groups and all(g.setup == "" for g in groups)


def test_a_reader_runs_the_statements_in_parallel_with_the_same_result(seeded) -> None:
    from kdreg.store.reading import open_reader

    store, _ = seeded
    f = build_filters(teacher="xlmr", status="succeeded")
    with read_connection(store) as conn:
        sequential = seed_groups(conn, f, "accuracy", "test")
    reader = open_reader(store.url)
    try:
        parallel = seed_groups(reader, f, "accuracy", "test")
    finally:
        reader.close()
    assert parallel == sequential and len(parallel) == 2 * 21
