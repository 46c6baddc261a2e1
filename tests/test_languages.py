"""One normal form per language, whatever spelling a benchmark uses."""

from __future__ import annotations

import pytest

from kdreg.languages import normalize_language


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
    ],
)
def test_normalize_language(code: str, expected: str) -> None:
    assert normalize_language(code) == expected
