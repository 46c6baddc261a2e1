"""Language codes: one normal form so `kdreg query --lang de` finds `de`, `deu` and `deu_Latn`.

Benchmarks spell languages their own way (XNLI ``de``, SIB-200 ``deu_Latn``, a user's
folders ``german`` or ``toba_batak``); results keep that spelling and also store the
normalised form computed here: the shortest ISO 639 code of the language (639-1 where it
exists), with individual languages folded into their macrolanguage (``arb`` → ``ar``,
``swh`` → ``sw``) and the script dropped.

Text shaped like a code (two or three letters, then optional subtags: ``de``, ``deu_Latn``,
``zh-Hans``) is read as a BCP 47 tag. Anything else is looked up as a language *name*, in
English or in the language itself (``indonesian`` → ``id``, ``Toba Batak`` → ``bbc``,
``Deutsch`` → ``de``; ``_`` and ``-`` count as spaces), with langcodes' name tables (the
``language_data`` package). What neither reading resolves — invented languages such as
the synthetic world's ``l3`` — is kept, lower-cased, up to its first ``-``/``_``;
:func:`resolve_language` tells such text apart, so a benchmark can refuse it instead.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

_CODE_SHAPED = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*")
"""An ISO 639 language subtag (2–3 letters), then optional script, region or variant subtags."""


def looks_like_code(text: str) -> bool:
    """Whether ``text`` is spelled like a language code (``de``, ``deu_Latn``) rather than a name.

    Cheap (no langcodes): reports use it to show a language spelled by name (``toba_batak``)
    under that name rather than under its code.
    """
    return _CODE_SHAPED.fullmatch(text.strip()) is not None


def _tag_language(langcodes: object, tag: str) -> str:
    """The macrolanguage-folded language subtag of a BCP 47 tag ('' when there is none)."""
    standard = langcodes.standardize_tag(tag, macro=True)  # type: ignore[attr-defined]
    return (langcodes.Language.get(standard).language or "").lower()  # type: ignore[attr-defined]


def _named_language(langcodes: object, name: str) -> str | None:
    """The code of a language name (any language's name for it), or None."""
    try:
        found = langcodes.find(name.replace("-", " "))  # type: ignore[attr-defined]
    except (LookupError, ImportError):  # ImportError: language_data (the name tables) is missing
        return None
    return _tag_language(langcodes, found.to_tag()) or None


@lru_cache(maxsize=4096)
def resolve_language(text: str) -> str | None:
    """The normalised code of a registered language code or a language name; None otherwise.

    ``xx`` or ``l3`` (shaped like codes, but no language has them) and unknown names are None.
    """
    cleaned = text.strip().replace("_", "-")
    if not cleaned:
        return None
    try:
        import langcodes
    except ImportError:
        return None
    if looks_like_code(cleaned):
        if not langcodes.tag_is_valid(cleaned):
            return None
        try:
            return _tag_language(langcodes, cleaned) or None
        except (ValueError, LookupError):
            return None
    return _named_language(langcodes, cleaned)


@lru_cache(maxsize=4096)
def normalize_language(code: str) -> str:
    """The normalised language code for ``code`` (see the module docstring)."""
    cleaned = code.strip().replace("_", "-")
    if not cleaned:
        return ""
    language = None
    try:
        import langcodes

        if looks_like_code(cleaned):
            language = _tag_language(langcodes, cleaned)
        else:
            language = _named_language(langcodes, cleaned)
    except (ValueError, LookupError, ImportError):
        language = None
    return language or cleaned.split("-")[0].lower()


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
