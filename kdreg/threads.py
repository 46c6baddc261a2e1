"""kdreg's CPU thread policy: how torch's threads wait, and how many there are.

torch's OpenMP threads *spin* while they wait for work by default (``OMP_WAIT_POLICY``
unset behaves like ACTIVE in GNU OpenMP). On a machine where anything else runs — a
laptop, a shared node, kdreg's own parallel workers — a spinning thread burns the core
another process needs, and each parallel region waits for the slowest, descheduled
thread: KD training was measured 10–150× slower that way. Purely passive waiting (sleep
at once) fixes that but costs a wake-up per parallel region, which small models pay on
every op: two passive threads trained a grid of tiny runs 2.6× slower than one thread
(bench/executors.py at 200 steps: 32.2 s against 12.2 s). So kdreg's threads spin
*briefly* — ``GOMP_SPINCOUNT`` = :data:`SPIN_COUNT`, tens of microseconds, enough to catch
the next op of the same step — then sleep (``OMP_WAIT_POLICY=PASSIVE``): 13.7 s on that
grid, and on bench/threads.py 1.06× torch's default on a quiet machine and about twice it
beside two busy processes. It is set before torch is imported, because OpenMP reads it
once, and only when the user has set neither variable.

The number of threads is torch's default (one per core) unless the user asks
(``kdreg run --threads N`` or ``KDREG_THREADS``), or several kdreg workers share the
machine (``local:workers=N`` gives each its share). Library users call
:func:`prepare_threads` before importing torch.
"""

from __future__ import annotations

import os
import sys

THREADS_ENV = "KDREG_THREADS"
SPIN_COUNT = "3000"
"""Spins of GNU OpenMP's waiting threads before they sleep (its default: 300,000, or 0 when passive)."""


def requested_threads(option: int | None = None) -> int | None:
    """Threads asked for: ``--threads`` if given, else ``KDREG_THREADS``, else None (torch's default)."""
    from kdreg.errors import ConfigError

    if option is not None:
        if not 1 <= option <= 1024:
            raise ConfigError(f"--threads must be from 1 to 1024, not {option}.")
        return option
    raw = os.environ.get(THREADS_ENV, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or not 1 <= int(raw) <= 1024:
        raise ConfigError(f"{THREADS_ENV}={raw[:20]!r} must be a whole number of threads from 1 to 1024.")
    return int(raw)


def prepare_threads(threads: int | None = None) -> None:
    """Before torch is imported: spin briefly, then wait passively (unless the user chose); ``threads``."""
    if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
        os.environ["GOMP_SPINCOUNT"] = SPIN_COUNT
    if threads is not None:
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[name] = str(threads)
    if threads is not None and "torch" in sys.modules:  # too late for the variables: tell torch itself
        sys.modules["torch"].set_num_threads(threads)
