"""`kdreg compare`: pairs recovered from a store seeded with known differences, statistics equal scipy's."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from scipy import stats
from typer.testing import CliRunner

from kdreg.cli.main import app
from kdreg.errors import ConfigError
from kdreg.reporting.compare import compare, parse_side
from kdreg.reporting.compare_tables import render
from kdreg.store.filters import build_filters
from kdreg.store.reading import open_reader
from kdreg.store.store import open_store
from kdreg.testing.store_data import study_config, write_run

SEEDS = (0, 1, 2, 3, 4)
FINETUNE = {  # seed → (en, de, fr) of stage finetune
    0: (0.80, 0.50, 0.40), 1: (0.82, 0.52, 0.43), 2: (0.79, 0.47, 0.41), 3: (0.81, 0.55, 0.38),
    4: (0.80, 0.49, 0.42),
}
GAIN = {0: (0.01, 0.08, 0.05), 1: (-0.01, 0.11, 0.02), 2: (0.00, 0.06, 0.07), 3: (0.02, 0.09, 0.03),
        4: (0.01, 0.10, 0.06)}
"""seed → what stage pretrain adds to finetune's score in en, de, fr (the known differences)."""


def scores(values: tuple[float, float, float]) -> dict[str, float]:
    return dict(zip(("en", "de", "fr"), values, strict=True))


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> str:
    """pretrain vs finetune over five seeds, plus runs that cannot pair and a none baseline for two losses."""
    url = f"sqlite:///{tmp_path_factory.mktemp('compare') / 'study.db'}"
    store = open_store(url)
    try:
        for seed in SEEDS:
            base = FINETUNE[seed]
            write_run(store, study_config("finetune", seed), scores(base))
            gained = tuple(round(x + g, 6) for x, g in zip(base, GAIN[seed], strict=True))
            write_run(store, study_config("pretrain", seed, corpus="wikipedia"), scores(gained))
            write_run(store, study_config("none", seed), scores((0.80, 0.45, 0.35)))
            mse = scores((0.80, 0.44 + seed / 100, 0.36))
            write_run(store, study_config("finetune", seed, loss="mse"), mse)
        # unpaired: a seed finetune lacks, and a finetune run under other fine-tuning hyper-parameters
        write_run(store, study_config("pretrain", 9, corpus="wikipedia"), scores((0.8, 0.6, 0.5)))
        write_run(store, study_config("finetune", 0, hparams={"finetune": {"learning_rate": 3e-5}}),
                  scores((0.8, 0.5, 0.4)))
        write_run(store, study_config("pretrain", 7, corpus="wikipedia"), {}, status="failed")
    finally:
        store.close()
    return url


def run_compare(url: str, a: list[str], b: list[str], **filters: object):  # type: ignore[no-untyped-def]
    reader = open_reader(url)
    try:
        options = {"status": "succeeded", "keep_unset": True, **filters}
        sides = parse_side(a, "--a"), parse_side(b, "--b")
        return compare(reader, *sides, build_filters(**options))  # type: ignore[arg-type]
    finally:
        reader.close()


def test_mean_difference_interval_and_p_value_are_scipys_on_the_known_pairs(study: str) -> None:
    result = run_compare(study, ["stage=pretrain"], ["stage=finetune"], loss="kl")
    (comparison,) = result.comparisons
    assert comparison.benchmark == "xnli" and comparison.seeds == 5
    assert sorted(seed for _, _, seed in comparison.pairs) == list(SEEDS)
    for index, column in enumerate(("source", "de", "fr")):
        a = [100 * round(FINETUNE[s][index] + GAIN[s][index], 6) for s in SEEDS]
        b = [100 * FINETUNE[s][index] for s in SEEDS]
        expected = stats.ttest_rel(a, b)
        interval = expected.confidence_interval(0.95)
        measure = comparison.measure(column)
        assert measure is not None and measure.n == 5
        assert measure.delta == pytest.approx(100 * sum(GAIN[s][index] for s in SEEDS) / 5)
        assert measure.ci_low == pytest.approx(interval.low)
        assert measure.ci_high == pytest.approx(interval.high)
        assert measure.p_value == pytest.approx(expected.pvalue)
        differences = [x - y for x, y in zip(a, b, strict=True)]
        assert measure.effect == pytest.approx(measure.delta / stats.tstd(differences))
    zero_shot = comparison.measure("zero_shot")
    pretrain = {s: [round(x + g, 6) for x, g in zip(FINETUNE[s], GAIN[s], strict=True)] for s in SEEDS}
    a = [100 * (pretrain[s][1] + pretrain[s][2]) / 2 for s in SEEDS]
    b = [100 * (FINETUNE[s][1] + FINETUNE[s][2]) / 2 for s in SEEDS]
    assert zero_shot.p_value == pytest.approx(stats.ttest_rel(a, b).pvalue)
    assert zero_shot.ci_low > 0  # pretraining's gain in de and fr is real here


def test_unpaired_runs_are_counted_and_listed_never_dropped(study: str) -> None:
    result = run_compare(study, ["stage=pretrain"], ["stage=finetune"], loss="kl")
    assert [(r.seed, r.specs["stage"]) for r in result.unpaired_a] == [(9, "pretrain")]
    assert [(r.seed, r.specs["stage"]) for r in result.unpaired_b] == [(0, "finetune")]
    assert [r.seed for r in result.without_results] == []  # the failed run is not 'succeeded'
    text = render(result, "terminal")
    assert "1 run(s) of A without a partner in B:" in text and "(seed 9)" in text
    assert "1 run(s) of B without a partner in A:" in text
    data = json.loads(render(result, "json"))
    assert [r["seed"] for r in data["unpaired_a"]] == [9] and len(data["unpaired_b"]) == 1

    everything = run_compare(study, ["stage=pretrain"], ["stage=finetune"], loss="kl", status=None)
    assert [r.seed for r in everything.without_results] == [7]  # a run with no score is named too


def test_kd_losses_against_one_shared_baseline_are_separate_comparisons(study: str) -> None:
    result = run_compare(study, ["stage=finetune"], ["stage=none"])
    labels = [c.label for c in result.comparisons]
    assert labels == ["loss=kl", "loss=mse"]
    assert [len(c.pairs) for c in result.comparisons] == [5, 5]
    mse = result.comparisons[1].measure("de")
    assert mse.delta == pytest.approx(100 * (sum(0.44 + s / 100 for s in SEEDS) / 5 - 0.45))
    assert [r.seed for r in result.unpaired_a] == [0]  # the finetune run with another learning rate


def test_split_by_a_dimension_and_every_format(study: str) -> None:
    result = run_compare(study, ["stage=pretrain,finetune"], ["stage=none"], loss="kl")
    assert [c.label for c in result.comparisons] == ["A.stage=finetune", "A.stage=pretrain"]
    rows = list(csv.DictReader(io.StringIO(render(result, "csv"))))
    assert {r["column"] for r in rows} == {"en", "de", "fr", "zero_shot"}
    assert all(r["test"].startswith("paired t-test") for r in rows)
    markdown = render(result, "markdown")
    assert "| zero-shot avg |" in markdown and "scipy.stats.ttest_rel" in markdown
    latex = render(result, "latex")
    assert r"\begin{tabular}" in latex and r"$\Delta$" in latex


def test_sides_read_like_query_options() -> None:
    side = parse_side(["loss=kl:alpha=1,temperature=2,stage=pretrain,both", "seed=0"])
    assert side.filters.loss == ("kl:alpha=1,temperature=2",)
    assert side.filters.stage == ("pretrain", "both") and side.filters.seed == (0,)
    assert side.dimensions == ("loss", "stage", "seed")
    assert parse_side(["grid=3"]).dimensions == ()
    for bad, message in ((["pretrain"], "takes FILTER=VALUE"), (["lang=de"], "give them once with --lang"),
                         (["stage=later"], "Unknown --stage"), ([], "needs at least one")):
        with pytest.raises(ConfigError, match=message):
            parse_side(bad)


def test_overlapping_or_uncontrasted_selections_are_refused(study: str) -> None:
    with pytest.raises(ConfigError, match="in both A and B"):
        run_compare(study, ["stage=pretrain"], ["loss=kl"])
    with pytest.raises(ConfigError, match="must differ in a run dimension"):
        run_compare(study, ["grid=1"], ["status=failed"])


def test_the_command(study: str) -> None:
    done = CliRunner().invoke(app, ["compare", "--db", study, "--a", "stage=pretrain",
                                    "--b", "stage=finetune", "--loss", "kl", "--lang", "de"])
    assert done.exit_code == 0, done.output
    assert "A: stage=pretrain  vs  B: stage=finetune" in done.stdout
    assert "paired t-test (scipy.stats.ttest_rel, two-sided)" in done.stdout
    assert "de " in done.stdout and "\nfr " not in done.stdout and "zero-shot avg" in done.stdout
    bad = CliRunner().invoke(app, ["compare", "--db", study, "--a", "stage=pretrain",
                                   "--b", "stage=pretrain"])
    assert bad.exit_code == 1 and "in both A and B" in bad.stderr
    missing = CliRunner().invoke(app, ["compare", "--db", study, "--a", "stage=pretrain",
                                       "--b", "stage=finetune", "--lang", "de,sw"])
    assert missing.exit_code == 0, missing.output
    assert "no run has language 'sw'; stored languages: " in " ".join(missing.stderr.split())
    assert "'de'" not in missing.stderr  # only the language the store lacks is named


def test_compare_imports_neither_torch_nor_scipy_before_it_computes(study: str, tmp_path: Path) -> None:
    import subprocess
    import sys

    probe = ("import sys\nfrom kdreg.cli.main import main\n"
             "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
             "print('HEAVY', sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'transformers', "
             "'datasets', 'scipy'}))")
    for argv, allowed in ((["compare", "--help"], []), (["compare", "--db", study, "--a", "stage=pretrain",
                                                          "--b", "stage=finetune"], ["scipy"])):
        done = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True, text=True,
                              timeout=120)
        assert f"HEAVY {allowed}" in done.stdout, done.stdout + done.stderr


def test_the_python_api_compares_like_the_command(study: str) -> None:
    from kdreg.api import connect

    with connect(study.removeprefix("sqlite:///")) as store:
        result = store.compare("stage=pretrain", "stage=finetune", loss="kl", lang="de")
    (comparison,) = result.comparisons
    assert [m.column for m in comparison.measures] == ["source", "de", "zero_shot"]
    assert len(comparison.pairs) == 5 and [r.seed for r in result.unpaired_a] == [9]


def test_contrasting_benchmarks_compares_what_both_have(tmp_path: Path) -> None:
    """Two benchmarks with different target languages: the source, the shared language, the average."""
    url = f"sqlite:///{tmp_path / 'benchmarks.db'}"
    store = open_store(url)
    try:
        for seed in (0, 1, 2):
            xnli = scores((0.8, 0.5 + seed / 100, 0.4))
            write_run(store, study_config("none", seed, benchmark="xnli"), xnli)
            write_run(store, study_config("none", seed, benchmark="pawsx"), {"en": 0.9, "de": 0.6, "ja": 0.3})
    finally:
        store.close()
    result = run_compare(url, ["benchmark=pawsx"], ["benchmark=xnli"])
    (comparison,) = result.comparisons
    assert comparison.benchmark == "pawsx vs xnli" and len(comparison.pairs) == 3
    assert [m.column for m in comparison.measures] == ["source", "de", "zero_shot"]
    assert comparison.measure("source").delta == pytest.approx(10.0)
    assert comparison.measure("zero_shot").delta == pytest.approx(45.0 - 45.5)


def test_a_side_that_selects_nothing_says_what_the_store_has(study: str) -> None:
    with pytest.raises(ConfigError) as info:
        run_compare(study, ["loss=kl:temperature=4"], ["stage=finetune"])
    message = str(info.value)
    assert message.startswith("--a loss=kl:temperature=4 selects no succeeded run: no run has loss")
    assert "stored losses: kl, mse" in message
