"""``python -m kdreg`` is the same as the ``kdreg`` command."""

from __future__ import annotations

from kdreg.cli.main import main

if __name__ == "__main__":
    main()
