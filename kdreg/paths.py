"""Where kdreg keeps things: its home, the default database, and the model cache.

``KDREG_HOME`` moves everything (tests point it at a temporary folder); otherwise
the platform's user data and cache folders are used via ``platformdirs``.
``KDREG_DB`` (or ``--db``) names any SQLAlchemy URL instead of the default file.
"""

from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "kdreg"


def home() -> Path:
    """kdreg's data folder: ``$KDREG_HOME`` or the platform's user data dir."""
    env = os.environ.get("KDREG_HOME")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def cache_dir() -> Path:
    """Folder for intermediate models (fine-tuned teachers, distilled students, synthetic teachers)."""
    env = os.environ.get("KDREG_CACHE")
    if env:
        return Path(env).expanduser()
    if os.environ.get("KDREG_HOME"):
        return home() / "cache"
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))


def default_db_path() -> Path:
    """The SQLite file used when no URL is given."""
    return home() / "kdreg.db"


def default_db_url() -> str:
    """SQLAlchemy URL of the default database."""
    return f"sqlite:///{default_db_path()}"


def resolve_db_url(url: str | None) -> tuple[str, bool]:
    """The database URL to use and whether it is the default one.

    Precedence: the explicit ``url`` (``--db``), then ``$KDREG_DB``, then the default
    file. A bare filesystem path is accepted and turned into an SQLite URL.
    """
    chosen = url or os.environ.get("KDREG_DB")
    if not chosen:
        return default_db_url(), True
    if "://" not in chosen:
        chosen = f"sqlite:///{Path(chosen).expanduser().resolve()}"
    return chosen, False
