"""Language codes: one normal form so `kdreg query --lang de` finds `de`, `deu` and `deu_Latn`.

Benchmarks spell languages their own way (XNLI ``de``, SIB-200 ``deu_Latn``); results keep
that spelling and also store the normalised form computed here: the shortest ISO 639
code of the language (639-1 where it exists), with individual languages folded into
their macrolanguage (``arb`` → ``ar``, ``swh`` → ``sw``) and the script dropped.
Codes ``langcodes`` cannot parse (synthetic languages such as ``l3``) are kept,
lower-cased.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any


@lru_cache(maxsize=4096)
def normalize_language(code: str) -> str:
    """The normalised language code for ``code`` (see the module docstring)."""
    cleaned = code.strip().replace("_", "-")
    if not cleaned:
        return ""
    try:
        import langcodes

        language = langcodes.Language.get(langcodes.standardize_tag(cleaned, macro=True)).language
    except (ValueError, LookupError, ImportError):
        language = None
    return (language or cleaned.split("-")[0]).lower()


# ------------------------------------------------------------ a benchmark's languages
LISTED_LANGUAGES = 20
"""How many of a benchmark's languages an error message lists (SIB-200 has over 200)."""


def evaluation_languages(benchmark: Any, requested: Sequence[str], name: str | None = None) -> list[str]:
    """The source language plus the requested targets (all when none requested), in benchmark order.

    A requested code matches the benchmark's own code exactly (``zho_Hant``), ignoring case, or
    else every language with the same normalised form, so ``--lang de`` selects ``deu_Latn`` in
    SIB-200 and ``--lang zh`` both Chinese scripts. An unknown code is a ConfigError.
    """
    from kdreg.errors import ConfigError

    available = list(benchmark.languages())
    if not requested:
        return available
    chosen: set[str] = set()
    missing: list[str] = []
    for raw in requested:
        code = raw.strip()
        matches = [lang for lang in available if lang == code] or [
            lang for lang in available if lang.lower() == code.lower()
        ] or [lang for lang in available if benchmark.normalize_language(lang) == normalize_language(code)]
        if matches:
            chosen.update(matches)
        else:
            missing.append(code)
    if missing:
        shown = ", ".join(available[:LISTED_LANGUAGES])
        more = f" and {len(available) - LISTED_LANGUAGES} more" if len(available) > LISTED_LANGUAGES else ""
        raise ConfigError(
            f"Language(s) {', '.join(missing)} not in benchmark {name or type(benchmark).__name__} (it has "
            f"{shown}{more}); --lang takes those codes or their ISO 639 forms (de for deu_Latn)."
        )
    source = benchmark.source_language()
    return [lang for lang in available if lang == source or lang in chosen]


def selected_languages(benchmark: Any, requested: Sequence[str], name: str | None = None) -> tuple[str, ...]:
    """What a run's canonical config records for ``--lang``: the evaluated codes, or () for all.

    Spelling does not matter (``de``, ``DE``, ``deu`` and ``en,de`` on an English-source
    benchmark are one selection), so equal selections are one run.
    """
    evaluated = evaluation_languages(benchmark, requested, name)
    return () if len(evaluated) == len(list(benchmark.languages())) else tuple(evaluated)
