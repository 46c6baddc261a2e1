"""When a filter matches nothing, say what the store does have.

``kdreg query --lang de`` on a store whose languages are ``l0``–``l5`` would otherwise
print "No runs match" and leave the user guessing whether the command, the spelling or
the data is wrong. :func:`explain_no_match` names each filter value that no stored run
has, with the values the store holds for that filter::

    no run has language 'de'; stored languages: l0, l1, l2, l3, l4, l5
    no run has teacher 'mbert'; stored teachers: synthetic (as synthetic:size=large)

It runs after a result came back empty (and for ``compare`` and ``claims`` whenever a
language or plugin filter could leave a row without pairs) and costs a few small ``SELECT DISTINCT``
statements, each only when its filter was given: one over the runs (100,000 rows in a
large store), one over the results' languages and one over their metrics and splits,
both answered from the results' indexes (tens of milliseconds on 1.6 M results).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kdreg.store.filters import Filters
from kdreg.store.reading import read_connection
from kdreg.store.sqltext import Sql

SHOWN = 20
"""Stored values listed per filter before '… (N in all)'."""
SPECS_SHOWN = 3
"""Specs listed per plugin name (a sweep of 50 ``kl:…`` settings is not one line of 50)."""

RUN_FILTERS = {
    "teacher": ("teacher", "teachers"),
    "student": ("student", "students"),
    "loss": ("loss", "losses"),
    "benchmark": ("benchmark", "benchmarks"),
    "corpus": ("corpus", "corpora"),
    "stage": ("stage", "stages"),
}
"""Run filters that get a hint: Filters field → (singular, plural) as people read them."""


def _listing(values: Iterable[str], specs: dict[str, set[str]] | None = None) -> str:
    """Sorted values, the first :data:`SHOWN`; a plugin name stored with other specs shows them too."""
    ordered = sorted(set(values))
    if not ordered:
        return "none"

    def shown_as(name: str) -> str:
        other = sorted((specs or {}).get(name, set()) - {name})
        more = f"; … ({len(other)} specs)" if len(other) > SPECS_SHOWN else ""
        return f"{name} (as {'; '.join(other[:SPECS_SHOWN])}{more})" if other else name

    shown = ", ".join(shown_as(name) for name in ordered[:SHOWN])
    return shown + (f", … ({len(ordered)} in all)" if len(ordered) > SHOWN else "")


def _line(what: str, plural: str, missing: list[str], stored: Iterable[str],
          specs: dict[str, set[str]] | None = None) -> str:
    values = " or ".join(repr(v) for v in missing)
    return f"no run has {what} {values}; stored {plural}: {_listing(stored, specs)}"


def explain_no_match(reader: Any, filters: Filters) -> list[str]:
    """One line per filter whose values match no stored run at all (empty when each matches some).

    Each filter is judged on its own: when every filter matches some run but not all of
    them together, there is nothing to name and the list is empty. ``reader``: a
    :class:`~kdreg.store.reading.Reader` or a Store.
    """
    active = [name for name in RUN_FILTERS if getattr(filters, name)]
    lines: list[str] = []
    with read_connection(reader) as connection:
        if active:
            parts = [  # `name` is one of RUN_FILTERS' own keys, never user text
                f'SELECT DISTINCT \'{name}\' AS "filter", runs.{name} AS name,'
                f' runs.{name if name == "stage" else f"{name}_spec"} AS spec'
                f" FROM runs WHERE runs.{name} IS NOT NULL"
                for name in active
            ]
            stored: dict[str, dict[str, set[str]]] = {name: {} for name in active}  # plugin name → its specs
            for which, name, spec in connection.execute(Sql(" UNION ALL ".join(parts))).all():
                stored[which].setdefault(name, set()).add(spec)
            for name in active:
                known = set(stored[name]).union(*stored[name].values())  # names and full specs
                missing = [v for v in getattr(filters, name) if v not in known]
                if missing:
                    lines.append(_line(*RUN_FILTERS[name], missing, stored[name].keys(), specs=stored[name]))
        if filters.language_columns:
            # DISTINCT on the leading column of ix_results_lang_run_id: SQLite skips through the index.
            langs = set(connection.execute(Sql("SELECT DISTINCT lang FROM results")).scalars())
            missing_langs = [
                typed
                for column in filters.language_columns
                if column.code not in langs
                for typed in column.typed
            ]
            if missing_langs:
                lines.append(_line("language", "languages", missing_langs, langs))
        if filters.metric or filters.split:
            pairs = connection.execute(Sql("SELECT DISTINCT metric, split FROM results")).all()
            for option, wanted, have in (("metric", filters.metric, {p[0] for p in pairs}),
                                         ("split", filters.split, {p[1] for p in pairs})):
                missing = [v for v in wanted if v not in have]
                if missing:
                    lines.append(_line(option, f"{option}s", missing, have))
    return lines
