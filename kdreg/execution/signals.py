"""Termination signals handled like Ctrl-C: the run in progress is marked interrupted, then kdreg exits.

``timeout``, ``docker stop``, systemd and Slurm (time limit, preemption, ``scancel``) send
SIGTERM before they kill; a closed terminal sends SIGHUP. Python's default for both is
to die on the spot, leaving the run in progress marked running until its heartbeat goes
stale. Here they raise :class:`Terminated`, a :class:`KeyboardInterrupt`, so every path
that handles Ctrl-C (mark the run interrupted, keep what is stored, stop the workers)
handles them too; the command then exits with the shell's code for the signal
(128 + its number: 143 for SIGTERM, 129 for SIGHUP; 130 for Ctrl-C).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

SIGNALS = tuple(s for s in (getattr(signal, name, None) for name in ("SIGTERM", "SIGHUP")) if s is not None)


class Terminated(KeyboardInterrupt):
    """A termination signal arrived (SIGTERM, SIGHUP): stop as after Ctrl-C."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"terminated by {signal.Signals(signum).name}")
        self.signum = signum


@contextmanager
def deferred() -> Iterator[None]:
    """Hold termination signals while recording an interruption, so a second one cannot cut it short.

    Slurm sends SIGTERM right after a preemption signal, and an impatient user presses Ctrl-C
    twice: the record of the first interruption must still land. Signals that arrive meanwhile
    are delivered when the block ends (the task is being interrupted anyway).

    Blocking the signals (``pthread_sigmask``) holds them only from this thread: a process
    with other threads (a worker's watcher, a heartbeat) has the kernel hand them to one of
    those, and Python still runs its handler here. So kdreg's handlers also look at
    :data:`_holding` and leave the signal pending, to be raised when the block ends.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    global _holding
    _holding += 1
    interrupt = signal.getsignal(signal.SIGINT)
    if interrupt is signal.default_int_handler:  # Ctrl-C's default raises at once: hold it too
        signal.signal(signal.SIGINT, _hold_interrupt)
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {*SIGNALS, signal.SIGINT}) if _MASKS else None
    try:
        yield
    finally:
        _holding -= 1
        if previous is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        if interrupt is signal.default_int_handler:
            signal.signal(signal.SIGINT, interrupt)
        if not _holding and _held:
            signum = _held.pop()
            _held.clear()
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            raise Terminated(signum)


_MASKS = hasattr(signal, "pthread_sigmask")
_holding = 0
"""How many :func:`deferred` blocks the main thread is in."""
_held: list[int] = []
"""Signals that arrived inside them, raised when the outermost one ends."""


def _hold_interrupt(signum: int, _frame: FrameType | None) -> None:
    _held.append(signum)


def exit_code(interrupt: BaseException) -> int:
    """The shell's exit code for an interruption: 128 + the signal's number."""
    return 128 + (interrupt.signum if isinstance(interrupt, Terminated) else signal.SIGINT)


def interrupted_by(interrupt: BaseException) -> str:
    """How a run was interrupted, in words for its error field."""
    if isinstance(interrupt, Terminated):
        return f"Interrupted ({signal.Signals(interrupt.signum).name})"
    if isinstance(interrupt, SystemExit):
        return "Interrupted (preempted or out of time: the engine requeues it)"
    return "Interrupted (Ctrl-C)"


_received: list[int] = []


def termination_requested() -> int | None:
    """The termination signal this process received, if any (an error after it is part of stopping)."""
    return _received[-1] if _received else None


def _raise_terminated(signum: int, _frame: FrameType | None) -> None:
    _received.append(signum)
    if _holding:  # inside deferred(): raised when it ends
        _held.append(signum)
        return
    raise Terminated(signum)


def handle_termination() -> None:
    """From now on in this process, SIGTERM and SIGHUP raise :class:`Terminated` (main thread only).

    For a command's whole life (``kdreg run``: a signal while it plans or imports ends it
    with the shell's code, 143 or 129, and one line, as one while it trains does).
    """
    if threading.current_thread() is threading.main_thread():
        for s in SIGNALS:
            signal.signal(s, _raise_terminated)


@contextmanager
def termination_as_interrupt() -> Iterator[None]:
    """While inside, SIGTERM and SIGHUP raise :class:`Terminated` (main thread only; a no-op elsewhere)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _raise_terminated) for s in SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
