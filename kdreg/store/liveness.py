"""Whether a running run (or task) is alive: heartbeats, the stale limit, and whose clock decides.

A process that runs something writes a heartbeat every :func:`heartbeat_seconds`; a row
still marked running whose heartbeat is older than :func:`stale_seconds` was left by a
process that died, and may be claimed again. The limit is ``KDREG_STALE_SECONDS``
(default 120 s): cluster file systems and busy databases need more, tests less.

Heartbeats are compared with *the database's* clock: on PostgreSQL that is the server's
``now()``, so machines with skewed clocks that share a team database never misjudge each
other's runs; an SQLite file is only ever shared by processes of one machine, whose
clock it is.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from kdreg.errors import ConfigError

if TYPE_CHECKING:  # SQLAlchemy is not imported by the light commands that read liveness
    from sqlalchemy import Connection
    from sqlalchemy.orm import Session

STALE_ENV = "KDREG_STALE_SECONDS"
DEFAULT_STALE_SECONDS = 120.0
MAX_HEARTBEAT_SECONDS = 15.0


def stale_seconds() -> float:
    """Seconds without a heartbeat after which a running row counts as left by a dead process."""
    raw = os.environ.get(STALE_ENV, "").strip()
    if not raw:
        return DEFAULT_STALE_SECONDS
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not 1.0 <= value <= 7 * 24 * 3600:  # also refuses nan
        raise ConfigError(f"{STALE_ENV}={raw[:30]!r} must be a number of seconds from 1 to 604800.")
    return value


def heartbeat_seconds() -> float:
    """How often a running row's heartbeat is written: often enough for four beats per stale limit."""
    return min(MAX_HEARTBEAT_SECONDS, stale_seconds() / 4)


def aware(moment: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes (stored as UTC): make them aware."""
    return moment.replace(tzinfo=timezone.utc) if moment is not None and moment.tzinfo is None else moment


def db_now(session: Session | Connection) -> datetime:
    """Now by the database's clock (PostgreSQL's ``now()``; this machine's for SQLite), aware UTC."""
    from sqlalchemy import Connection, func, select

    dialect = session.dialect if isinstance(session, Connection) else session.get_bind().dialect
    if dialect.name == "postgresql":
        value = session.scalar(select(func.now()))
        if value is not None:
            return aware(value).astimezone(timezone.utc)  # type: ignore[union-attr]
    return datetime.now(timezone.utc)


def stale_cutoff(now: datetime) -> datetime:
    """Heartbeats before this moment are stale."""
    return now - timedelta(seconds=stale_seconds())


def is_stale(heartbeat: datetime | None, now: datetime) -> bool:
    """Whether a running row with this heartbeat was left by a process that died."""
    beat = aware(heartbeat)
    return beat is None or beat < stale_cutoff(now)


def liveness(status: str, heartbeat: datetime | None, now: datetime) -> tuple[str, float | None]:
    """A run's status as people should read it ('stale' for a dead process's run), and its heartbeat's age."""
    beat = aware(heartbeat)
    age = None if beat is None else max(0.0, (now - beat).total_seconds())
    if status == "running" and is_stale(heartbeat, now):
        return "stale", age
    return status, age if status == "running" else None


def describe_age(seconds: float | None) -> str:
    """'12s', '3m05s', '2h10m': how long ago, for people."""
    if seconds is None:
        return ""
    value = int(seconds)
    if value < 120:
        return f"{value}s"
    if value < 7200:
        return f"{value // 60}m{value % 60:02d}s"
    return f"{value // 3600}h{value % 3600 // 60:02d}m"
