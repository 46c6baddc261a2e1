"""Read statements as portable SQL text with named parameters, built without SQLAlchemy.

The read commands (`kdreg query`, `report`, `status`, …) should answer in about a tenth of
a second, and importing SQLAlchemy alone costs that (it imports asyncio whatever one uses).
So the statements they run are SQL text that SQLite and PostgreSQL both accept, with every
value bound as a ``:name`` parameter — which the standard library's ``sqlite3`` and
SQLAlchemy's ``text()`` both take — and :mod:`kdreg.store.reading` runs it through whichever
the database needs. One text, one implementation, for every back-end.

Only kdreg's own identifiers (table, column and label names written in this package) ever
become SQL text; a user's filter value is always a parameter (:class:`Params`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

NOTHING = "1 = 0"
"""A condition no row meets (``x IN ()`` is not valid PostgreSQL)."""


@dataclass(frozen=True)
class Sql:
    """A statement: its text, the values of its ``:name`` parameters, and names for some columns.

    ``names`` maps an SQL label to the name its column has in the rows: a column named
    after a user's language code is labelled ``lang_0`` in SQL, so no user text is SQL.
    """

    text: str
    params: dict[str, Any] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)


class Params:
    """The bound values of one statement, named ``:p0``, ``:p1``… in the order they are added."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def __call__(self, value: Any) -> str:
        """The placeholder of a new parameter holding ``value``."""
        name = f"p{len(self.values)}"
        self.values[name] = value
        return f":{name}"

    def is_in(self, column: str, values: Iterable[Any]) -> str:
        """``column IN (:p1, :p2…)``; a condition nothing meets for no values."""
        placeholders = [self(value) for value in values]
        return f"{column} IN ({', '.join(placeholders)})" if placeholders else NOTHING

    def sql(self, text: str) -> Sql:
        return Sql(text, dict(self.values))


def any_of(conditions: Iterable[str]) -> str:
    """The conditions OR-ed (each in parentheses); nothing meets an empty list."""
    parts = [f"({c})" for c in conditions]
    return " OR ".join(parts) if parts else NOTHING


def where(conditions: Iterable[str]) -> str:
    """`` WHERE a AND b`` for the conditions, or nothing when there are none."""
    parts = [f"({c})" for c in conditions]
    return f" WHERE {' AND '.join(parts)}" if parts else ""
