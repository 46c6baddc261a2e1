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
from functools import lru_cache

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
