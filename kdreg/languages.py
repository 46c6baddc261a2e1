"""Language codes: one normal form so `kdreg query --lang de` finds `de`, `deu` and `deu_Latn`.

Benchmarks spell languages their own way (XNLI ``de``, SIB-200 ``deu_Latn``); results keep
that spelling and also store the normalised form computed here: the shortest ISO 639
code of the language (639-1 where it exists), with individual languages folded into
their macrolanguage (``arb`` → ``ar``, ``swh`` → ``sw``) and the script dropped.
Codes ``langcodes`` cannot parse (synthetic languages such as ``l3``) are kept,
lower-cased.
"""

from __future__ import annotations

from functools import lru_cache


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
