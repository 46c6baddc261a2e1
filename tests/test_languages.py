"""One normal form per language, whatever spelling a benchmark uses."""

from __future__ import annotations

import pytest

from kdreg.languages import looks_like_code, normalize_language, resolve_language


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("de", "de"),
        ("DE", "de"),
        ("deu_Latn", "de"),
        ("deu", "de"),
        ("zh-Hans", "zh"),
        ("zho_Hans", "zh"),
        ("arb", "ar"),  # an individual language folds into its macrolanguage
        ("swh_Latn", "sw"),
        ("en-US", "en"),
        ("l3", "l3"),  # synthetic languages are kept
        ("  ", ""),
        ("english", "en"),  # language names, as a user's folders spell them
        ("indonesian", "id"),
        ("toba_batak", "bbc"),  # not cut to "toba"
        ("Toba Batak", "bbc"),
        ("Deutsch", "de"),  # a language's own name for itself
        ("mandarin", "zh"),  # folded into the macrolanguage, like cmn
    ],
)
def test_normalize_language(code: str, expected: str) -> None:
    assert normalize_language(code) == expected


@pytest.mark.parametrize("text", ["l3", "xx", "old_tongue", "my_data", ""])
def test_what_names_no_language_is_not_resolved(text: str) -> None:
    assert resolve_language(text) is None


def test_resolve_language_agrees_with_normalize_language_where_it_resolves() -> None:
    for text in ("de", "deu_Latn", "zho_Hans", "english", "toba_batak", "in"):
        assert resolve_language(text) == normalize_language(text)


def test_codes_and_names_are_told_apart_without_langcodes() -> None:
    assert looks_like_code("de") and looks_like_code("deu_Latn") and looks_like_code("zh-Hans")
    assert not looks_like_code("toba_batak") and not looks_like_code("english") and not looks_like_code("l3")
