"""Column lengths, checked the same way on every back-end before anything is written."""

from __future__ import annotations

from typing import Any

from kdreg.errors import StoreError
from kdreg.store.schema import Base


def check_lengths(model: type[Base], values: dict[str, Any], what: str) -> None:
    """Refuse a text longer than its column, the same way on every back-end.

    SQLite ignores ``VARCHAR(n)`` and keeps any length, PostgreSQL refuses it with
    "value too long for type character varying(50)", naming no column. Checking here
    gives one message that names the field on both, and keeps an SQLite store
    copyable to PostgreSQL.
    """
    columns = model.__table__.c  # type: ignore[attr-defined]
    for name, value in values.items():
        length = getattr(columns[name].type, "length", None) if name in columns else None
        if length is not None and isinstance(value, str) and len(value) > length:
            raise StoreError(
                f"The {what}'s {name} is {len(value)} characters ({value[:40]!r}...); the store keeps "
                f"at most {length}. Shorten it (a plugin's name, spec, language, split or metric)."
            )
