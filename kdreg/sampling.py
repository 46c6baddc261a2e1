"""Mixing a multilingual corpus: the exponentially smoothed language sampling.

Multilingual BERT and XLM (Conneau & Lample 2019) draw each pretraining sentence's
language with probability

    p(l) = n_l^α / Σ_k n_k^α

where n_l is the amount of text in language l. α = 1 keeps the natural proportions
(high-resource languages dominate), α = 0 is uniform (a low-resource language's few
lines are repeated over and over); α = 0.7, the default here (XLM-R used 0.3, mBERT
0.7), boosts the small languages without drowning the large ones. Distillation during
pretraining uses the same rule so the student sees the languages as the teacher did.

API (all the pipeline needs)::

    language_probabilities(sizes, alpha)                      -> {language: p}
    mix_languages(corpus, languages=None, num_texts=None,
                  alpha=0.7, seed=0)                          -> Iterator[(language, text)]

``mix_languages`` draws a language per text from ``p`` with ``random.Random(seed)``,
then takes that language's next line from ``corpus.texts(language)``; a language that
runs out starts again from its first line (that is what up-sampling means). The
stream is endless when ``num_texts`` is None. The same corpus, languages, α and seed
give the same sequence, on every run and machine. Corpus streams are opened lazily,
so a language is not read (or downloaded) before it is first drawn.
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from kdreg.errors import ConfigError, DataError

DEFAULT_ALPHA = 0.7


def language_probabilities(sizes: Mapping[str, int], alpha: float = DEFAULT_ALPHA) -> dict[str, float]:
    """p(l) ∝ n_l^α over the languages of ``sizes`` (in their order); every n_l must be positive."""
    if not alpha >= 0:  # also refuses NaN
        raise ConfigError(
            f"The language sampling exponent α must be >= 0 (0 = uniform, 1 = proportional), got {alpha}."
        )
    if not sizes:
        raise DataError("No languages to sample from: the corpus has none (or none were selected).")
    empty = [language for language, n in sizes.items() if n <= 0]
    if empty:
        raise DataError(
            f"The corpus has no text in {', '.join(empty)}; remove it from the languages or add text."
        )
    weights = {language: float(n) ** alpha for language, n in sizes.items()}
    total = sum(weights.values())
    return {language: w / total for language, w in weights.items()}


def resolve_languages(corpus: Any, languages: Sequence[str] | None) -> list[str]:
    """The corpus's own codes for ``languages`` (exact, or equal once normalised: de ~ deu_Latn)."""
    from kdreg.languages import normalize_language

    available = list(corpus.languages())
    if languages is None:
        return available
    by_normal: dict[str, str] = {}
    for code in available:
        by_normal.setdefault(normalize_language(code), code)
    chosen: list[str] = []
    for code in languages:
        match = code if code in available else by_normal.get(normalize_language(code))
        if match is None:
            raise DataError(f"The corpus has no text in {code!r} (its languages: {' '.join(available)}).")
        if match not in chosen:
            chosen.append(match)
    return chosen


def mix_languages(
    corpus: Any,
    languages: Sequence[str] | None = None,
    num_texts: int | None = None,
    alpha: float = DEFAULT_ALPHA,
    seed: int = 0,
) -> Iterator[tuple[str, str]]:
    """(language, text) pairs with languages drawn ∝ n_l^α (see the module docstring).

    ``corpus`` is a :class:`kdreg.plugins.spec.Corpus`; its ``sizes()`` gives n_l (None
    samples the languages uniformly). ``languages`` restricts the mix (None: all of the
    corpus's); ``num_texts`` bounds it (None: endless).
    """
    chosen = resolve_languages(corpus, languages)
    sizes = corpus.sizes()
    if sizes is None:
        counts = {language: 1 for language in chosen}
    else:
        missing = [language for language in chosen if language not in sizes]
        if missing:
            raise DataError(
                f"The corpus reports no size for {', '.join(missing)}; its sizes() must cover every language."
            )
        counts = {language: int(sizes[language]) for language in chosen}
    probabilities = language_probabilities(counts, alpha)
    if num_texts is not None and num_texts < 0:
        raise ConfigError(f"The number of texts to sample must be >= 0, got {num_texts}.")
    return _draw(corpus, list(probabilities), list(probabilities.values()), num_texts, seed)


def _draw(
    corpus: Any, names: list[str], probabilities: list[float], num_texts: int | None, seed: int
) -> Iterator[tuple[str, str]]:
    rng = random.Random(seed)
    cumulative = list(itertools.accumulate(probabilities))
    streams: dict[str, Iterator[str]] = {}
    drawn = 0
    while num_texts is None or drawn < num_texts:
        # bisect on the cumulative distribution; min() guards against float round-off at 1.0
        language = names[min(bisect.bisect_right(cumulative, rng.random() * cumulative[-1]), len(names) - 1)]
        yield language, _next_text(corpus, language, streams)
        drawn += 1


def _next_text(corpus: Any, language: str, streams: dict[str, Iterator[str]]) -> str:
    """The language's next line, starting its stream again from the top when it runs out."""
    for _attempt in range(2):
        stream = streams.get(language)
        if stream is None:
            stream = streams[language] = iter(corpus.texts(language))
        try:
            return next(stream)
        except StopIteration:
            del streams[language]
    raise DataError(f"The corpus yielded no text in {language!r}; check its files or remove the language.")
