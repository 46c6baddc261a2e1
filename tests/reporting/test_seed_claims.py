"""The seed study's claims, each supported, contradicted or inconclusive as its numbers say."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from scipy import stats
from typer.testing import CliRunner

from kdreg.cli.main import app
from kdreg.reporting.claims import CONTRADICTED, INCONCLUSIVE, SUPPORTED, evaluate_claims
from kdreg.store.filters import build_filters
from kdreg.store.reading import open_reader
from kdreg.store.store import open_store
from kdreg.testing.store_data import study_config, write_run

SMALL, LARGE = "synthetic", "synthetic:size=large"
NOISE = (0.01, -0.01, 0.02, -0.02, 0.0)
"""Per-seed wobble around an effect (mean 0), so the intervals are real ones."""


def effect(mean: float, seeds: Sequence[int], noise: Sequence[float] = NOISE) -> list[float]:
    return [mean + noise[i % len(noise)] for i in range(len(seeds))]


def write_study(path: Path, *, seeds: Sequence[int], pretrain: list[float], finetune: list[float],
                larger: list[float], sizes: tuple[float | None, float | None] = (1e6, 4e6)) -> str:
    """Two teachers' studies; pretrain/finetune: per-seed effect on the targets of KD in that stage
    (stage pretrain = finetune's + pretrain's, both = pretrain's + finetune's again), larger: per-seed
    lift of every student of the large teacher."""
    url = f"sqlite:///{path}"
    store = open_store(url)
    try:
        for teacher, size, lift in ((SMALL, sizes[0], [0.0] * len(seeds)), (LARGE, sizes[1], larger)):
            for i, seed in enumerate(seeds):
                extra = (("parameters", "model", size),) if size else ()
                write_run(store, study_config("teacher", seed, teacher=teacher),
                          {"en": 0.95, "de": 0.7, "fr": 0.6}, extra=extra)
                base = 0.40 + 0.01 * i + lift[i]
                for stage, gain in (("none", 0.0), ("finetune", finetune[i]),
                                    ("pretrain", finetune[i] + pretrain[i]),
                                    ("both", 2 * finetune[i] + pretrain[i])):
                    corpus = "wikipedia" if stage in ("pretrain", "both") else None
                    write_run(store, study_config(stage, seed, teacher=teacher, corpus=corpus),
                              {"en": round(0.80 + lift[i], 6), "de": round(base + gain, 6),
                               "fr": round(base - 0.05 + gain, 6)})
    finally:
        store.close()
    return url


def claims_of(url: str, **filters: object):  # type: ignore[no-untyped-def]
    reader = open_reader(url)
    try:
        options = {"status": "succeeded", "keep_unset": True, **filters}
        return evaluate_claims(reader, build_filters(**options))  # type: ignore[arg-type]
    finally:
        reader.close()


SEEDS = (0, 1, 2, 3, 4)


def test_each_claim_supported_with_the_numbers_behind_it(tmp_path: Path) -> None:
    url = write_study(tmp_path / "s.db", seeds=SEEDS, pretrain=effect(0.10, SEEDS),
                      finetune=effect(-0.05, SEEDS), larger=effect(0.05, SEEDS))
    first, second, third = claims_of(url)
    assert [first.verdict, second.verdict, third.verdict] == [SUPPORTED] * 3
    (evidence,) = first.evidence
    assert evidence.measure.n == 10 and evidence.seeds == 5  # 2 teachers × 5 seeds
    assert evidence.measure.delta == pytest.approx(10.0) and evidence.measure.ci_low > 0
    assert [e.comparison for e in second.evidence] == ["finetune − none on xnli", "both − pretrain on xnli"]
    assert all(e.measure.delta == pytest.approx(-5.0) and e.measure.ci_high < 0 for e in second.evidence)
    assert "of synthetic:size=large (4.00 M, A) − students of synthetic (1.00 M, B)" in third.compared
    assert {e.measure.column for e in third.evidence} == {"source", "zero_shot"}
    assert all(e.measure.delta == pytest.approx(5.0) and e.verdict == SUPPORTED for e in third.evidence)
    assert third.evidence[0].measure.n == 15  # finetune, pretrain and both students, 5 seeds


def test_the_p_value_behind_a_verdict_is_scipys(tmp_path: Path) -> None:
    gains = effect(0.01, SEEDS, (0.03, -0.02, 0.0, 0.01, -0.01))
    url = write_study(tmp_path / "p.db", seeds=SEEDS, pretrain=gains, finetune=effect(0.0, SEEDS),
                      larger=effect(0.0, SEEDS))
    (evidence,) = claims_of(url)[0].evidence
    # zero-shot averages of finetune (the teacher's lift and finetune's wobble cancel in the pairs)
    finetune = [100 * (0.375 + 0.01 * i) for i in range(5)] * 2
    pretrain = [x + 100 * g for x, g in zip(finetune, gains * 2, strict=True)]
    expected = stats.ttest_rel(pretrain, finetune)
    assert evidence.measure.p_value == pytest.approx(expected.pvalue, rel=1e-6)
    assert evidence.measure.ci_low == pytest.approx(expected.confidence_interval().low, rel=1e-6)
    interval = expected.confidence_interval()
    assert interval.low < 0 < interval.high and expected.pvalue > 0.05  # this wobble drowns the gain
    assert evidence.verdict == INCONCLUSIVE


def test_each_claim_contradicted(tmp_path: Path) -> None:
    url = write_study(tmp_path / "c.db", seeds=SEEDS, pretrain=effect(-0.10, SEEDS),
                      finetune=effect(0.05, SEEDS), larger=effect(-0.05, SEEDS))
    claims = claims_of(url)
    assert [c.verdict for c in claims] == [CONTRADICTED] * 3
    assert claims[0].evidence[0].measure.ci_high < 0 and claims[1].evidence[0].measure.ci_low > 0
    assert "contradict it, none supports it" in claims[2].reason


def test_each_claim_inconclusive_when_the_intervals_include_zero(tmp_path: Path) -> None:
    url = write_study(tmp_path / "i.db", seeds=SEEDS, pretrain=effect(0.0, SEEDS),
                      finetune=effect(0.0, SEEDS), larger=effect(0.0, SEEDS))
    claims = claims_of(url)
    assert [c.verdict for c in claims] == [INCONCLUSIVE] * 3
    for claim in claims:
        assert claim.reason == "every 95% interval includes 0"
        assert all(e.measure.ci_low < 0 < e.measure.ci_high for e in claim.evidence)


def test_one_seed_says_an_interval_needs_more_seeds(tmp_path: Path) -> None:
    url = write_study(tmp_path / "one.db", seeds=(0,), pretrain=[0.10], finetune=[-0.05], larger=[0.05])
    claims = claims_of(url)
    assert [c.verdict for c in claims] == [INCONCLUSIVE] * 3
    assert all("one seed: an interval needs more seeds (kdreg run --seed 0,1,2)" == c.reason for c in claims)
    assert claims[0].evidence[0].measure.delta == pytest.approx(10.0)  # the numbers are still shown


def test_the_larger_teacher_needs_two_known_sizes(tmp_path: Path) -> None:
    url = write_study(tmp_path / "sizes.db", seeds=SEEDS, pretrain=effect(0.1, SEEDS),
                      finetune=effect(0.0, SEEDS), larger=effect(0.05, SEEDS), sizes=(1e6, None))
    third = claims_of(url)[2]
    assert third.verdict == INCONCLUSIVE and "synthetic (1.00 M)" in third.reason
    assert third.notes == ("size unknown (no teacher row records its parameters) for: synthetic:size=large",)
    only_small = claims_of(url, teacher=SMALL)[2]
    assert "two teachers of different sizes" in only_small.reason


def test_a_store_without_the_stages_has_nothing_to_compare(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'none.db'}"
    store = open_store(url)
    try:
        write_run(store, study_config("none", 0), {"en": 0.8, "de": 0.5})
    finally:
        store.close()
    claims = claims_of(url)
    assert [c.verdict for c in claims] == [INCONCLUSIVE] * 3
    assert claims[0].reason == "no pretrain and finetune runs that pair" and claims[0].evidence == ()


def test_the_command_prints_every_verdict_in_every_format(tmp_path: Path) -> None:
    url = write_study(tmp_path / "cmd.db", seeds=SEEDS, pretrain=effect(0.10, SEEDS),
                      finetune=effect(0.0, SEEDS), larger=effect(-0.05, SEEDS))
    done = CliRunner().invoke(app, ["claims", "--db", url])
    assert done.exit_code == 0, done.output
    lines = done.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80  # wrapped to the terminal, continuations indented
    import re  # never between a number and what it is: "p" / "0.003", "Δ" / "+10.0", "[+1.2," / "+3.4]"
    assert not [line for line in lines if re.search(r"(\bp|\bn|Δ|\[[+-][\d.]+,|\bn \d+)$", line)]
    assert "\u00a0" not in done.stdout
    text = " ".join(done.stdout.split())
    assert text.startswith("Claims of the seed study — Δ = A − B in accuracy on test ×100; paired t-test")
    assert "1. KD in pretraining beats KD in fine-tuning on zero-shot targets: SUPPORTED" in text
    assert "2. KD in fine-tuning may hurt zero-shot transfer (vs. no KD): INCONCLUSIVE" in text
    assert "3. A larger teacher distils a better student (source and targets): CONTRADICTED" in text
    assert any(line.startswith("3. ") for line in lines)
    assert "zero-shot avg: Δ +10.0 [" in text and "n 10 pairs — supports" in text
    data = json.loads(CliRunner().invoke(app, ["claims", "--db", url, "--format", "json"]).stdout)
    assert [c["verdict"] for c in data["claims"]] == [SUPPORTED, INCONCLUSIVE, CONTRADICTED]
    assert data["claims"][0]["evidence"][0]["delta"] == pytest.approx(10.0)
    markdown = CliRunner().invoke(app, ["claims", "--db", url, "--format", "markdown"]).stdout
    assert "**supported**" in markdown and "*contradicted*" in markdown


def test_filters_that_match_no_run_say_so_instead_of_three_inconclusive_verdicts(tmp_path: Path) -> None:
    url = write_study(tmp_path / "none.db", seeds=SEEDS, pretrain=effect(0.10, SEEDS),
                      finetune=effect(0.0, SEEDS), larger=effect(-0.05, SEEDS))
    for argv in (["--teacher", "mbert"], ["--seed", "99"], ["--grid", "42"], ["--student", "nosuch"],
                 ["--loss", "nosuch"], ["--corpus", "nosuch"]):  # teacher and no-KD rows match the last 3
        done = CliRunner().invoke(app, ["claims", "--db", url, *argv])
        assert done.exit_code == 0, done.output
        assert done.stdout == "", argv
        assert "No succeeded runs match in" in done.stderr and "INCONCLUSIVE" not in done.output, argv
    done = CliRunner().invoke(app, ["claims", "--db", url, "--teacher", "mbert"])
    assert "no run has teacher 'mbert'; stored teachers: " in " ".join(done.stderr.split())
    assert CliRunner().invoke(app, ["claims", "--db", url, "--lang", "de"]).exit_code == 2  # no such option
    empty = CliRunner().invoke(app, ["claims", "--db", url, "--loss", "nosuch", "--format", "json"])
    assert json.loads(empty.stdout)["claims"] == []  # scripts still get a document


def test_compare_sends_a_run_named_both_ways_to_the_side_naming_its_spec(tmp_path: Path) -> None:
    """`--b teacher=synthetic` matches the large teacher by name too; its runs stay on side A."""
    from kdreg.reporting.compare import compare, parse_side

    url = write_study(tmp_path / "t.db", seeds=SEEDS, pretrain=effect(0.1, SEEDS),
                      finetune=effect(0.0, SEEDS), larger=effect(0.05, SEEDS))
    reader = open_reader(url)
    try:
        result = compare(reader, parse_side([f"teacher={LARGE}"]), parse_side([f"teacher={SMALL}"], "--b"),
                         build_filters(status="succeeded", stage=["finetune", "pretrain"]))
    finally:
        reader.close()
    assert [len(c.pairs) for c in result.comparisons] == [10]  # finetune and pretrain, 5 seeds
    assert result.comparisons[0].measure("zero_shot").delta == pytest.approx(5.0)
    assert not result.unpaired_a and not result.unpaired_b
