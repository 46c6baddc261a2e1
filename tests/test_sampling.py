"""The α-smoothed language sampling: p(l) ∝ n_l^α, deterministic given the seed."""

from __future__ import annotations

import math
from collections import Counter
from itertools import islice
from pathlib import Path

import pytest

from kdreg.errors import ConfigError, DataError
from kdreg.sampling import language_probabilities, mix_languages

SIZES = {"en": 2000, "de": 200, "sw": 20}


@pytest.fixture
def corpus(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Three local text files of very different sizes, read by the real `text` corpus plugin."""
    from kdreg_plugins.corpora.text import TextFiles

    for language, n in SIZES.items():
        lines = [f"{language} line {i}" for i in range(n)]
        (tmp_path / f"{language}.txt").write_text("\n".join(lines) + "\n\n", encoding="utf-8")
    return TextFiles(TextFiles.Params(path=tmp_path))


def test_probabilities_follow_the_smoothing_rule() -> None:
    p = language_probabilities(SIZES, alpha=0.7)
    assert math.isclose(sum(p.values()), 1.0)
    assert math.isclose(p["en"] / p["de"], 10**0.7) and math.isclose(p["de"] / p["sw"], 10**0.7)
    assert language_probabilities(SIZES, alpha=0.0) == pytest.approx({k: 1 / 3 for k in SIZES})
    assert language_probabilities(SIZES, alpha=1.0) == pytest.approx({k: v / 2220 for k, v in SIZES.items()})
    with pytest.raises(ConfigError):
        language_probabilities(SIZES, alpha=-0.5)
    with pytest.raises(DataError, match="no text in de"):
        language_probabilities({"en": 5, "de": 0})


@pytest.mark.parametrize("alpha", [0.3, 0.7, 1.0])
def test_language_mix_matches_the_smoothed_distribution(corpus, alpha: float) -> None:  # type: ignore[no-untyped-def]
    n = 6000
    sample = list(mix_languages(corpus, num_texts=n, alpha=alpha, seed=13))
    assert len(sample) == n
    counts = Counter(language for language, _ in sample)
    expected = language_probabilities(corpus.sizes(), alpha)
    for language, p in expected.items():
        sigma = math.sqrt(n * p * (1 - p))
        assert abs(counts[language] - n * p) < 4 * sigma, (language, counts[language], n * p)
    # every text comes from its own language, in the file's order, starting again when it runs out
    sw = [text for language, text in sample if language == "sw"]
    assert all(t.startswith("sw ") for t in sw)
    assert sw[: SIZES["sw"] + 3] == [f"sw line {i}" for i in range(SIZES["sw"])] + [
        f"sw line {i}" for i in range(3)
    ]


def test_mixing_is_deterministic_for_a_seed(corpus) -> None:  # type: ignore[no-untyped-def]
    first = list(mix_languages(corpus, None, 500, 0.7, 1))
    assert first == list(mix_languages(corpus, None, 500, 0.7, 1))
    assert first != list(mix_languages(corpus, None, 500, 0.7, 2))


def test_language_subset_by_normalised_code_and_endless_stream(corpus) -> None:  # type: ignore[no-untyped-def]
    stream = mix_languages(corpus, languages=["deu_Latn", "swh_Latn"], seed=0)  # num_texts=None: endless
    head = list(islice(stream, 3000))
    assert len(head) == 3000 and {language for language, _ in head} == {"de", "sw"}
    with pytest.raises(DataError, match="no text in 'fr'"):
        mix_languages(corpus, languages=["fr"])


def test_corpus_without_sizes_is_sampled_uniformly(corpus) -> None:  # type: ignore[no-untyped-def]
    class NoSizes:
        def languages(self) -> list[str]:
            return corpus.languages()

        def texts(self, language: str):  # type: ignore[no-untyped-def]
            return corpus.texts(language)

        def sizes(self) -> None:
            return None

    counts = Counter(language for language, _ in mix_languages(NoSizes(), num_texts=3000, seed=5))
    assert all(abs(c - 1000) < 4 * math.sqrt(3000 * (1 / 3) * (2 / 3)) for c in counts.values())


def test_a_language_with_no_text_fails_instead_of_looping(tmp_path: Path) -> None:
    class Empty:
        def languages(self) -> list[str]:
            return ["xx"]

        def texts(self, language: str):  # type: ignore[no-untyped-def]
            return iter(())

        def sizes(self) -> dict[str, int]:
            return {"xx": 3}

    with pytest.raises(DataError, match="yielded no text in 'xx'"):
        next(mix_languages(Empty(), num_texts=1))
