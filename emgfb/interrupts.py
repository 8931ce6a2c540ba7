"""Ctrl-C and SIGTERM end every command cleanly: one convention, process-wide.

This module owns :class:`Interrupted` (a :class:`KeyboardInterrupt` that remembers its
signal), :func:`install` (SIGINT and SIGTERM raise it in the main thread, so ``finally``
blocks close files and the command exits with ``128 + signal``: 130 or 143) and
:func:`divert` (while an event loop runs, e.g. Qt's, a signal calls a function instead of
raising inside some callback; the loop then ends on its own). A second signal while the
first is being handled is logged and ignored, so the clean-up that completes a recording
is not cut short (SIGKILL still works). Imports nothing from emgfb.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator

#: The signals that end a command.
SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM arrived; :attr:`signum` says which.

    Attributes
    ----------
    signum
        The signal number (2 for SIGINT, 15 for SIGTERM).
    """

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)

    @property
    def exit_code(self) -> int:
        """The shell convention: 128 + the signal number."""
        return 128 + self.signum


_received: list[int] = []
_diverted: list[Callable[[int], None]] = []


def exit_code(exc: BaseException) -> int:
    """Exit code for an interrupt: 130 for Ctrl-C, 143 for SIGTERM."""
    return 128 + int(getattr(exc, "signum", signal.SIGINT))


def _handler(signum: int, _frame: object) -> None:
    if _diverted:
        _received.append(signum)
        _diverted[-1](signum)
        return
    if _received:
        # not through logging: the handler may run while the main thread is inside a
        # logging call, holding its handler's lock and half-way through a line
        with contextlib.suppress(OSError):
            os.write(2, f"emgfb: {signal.Signals(signum).name} ignored: already finishing "
                        f"after {signal.Signals(_received[0]).name}\n".encode())
        return
    _received.append(signum)
    raise Interrupted(signum)


def install() -> None:
    """Make SIGINT and SIGTERM raise :class:`Interrupted` (main thread only; else a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        return
    _received.clear()
    for sig in SIGNALS:
        signal.signal(sig, _handler)


@contextlib.contextmanager
def installed() -> Iterator[None]:
    """:func:`install` for the duration, in a process that goes on afterwards (a test
    runner): on leaving, the previous handlers come back and the signals received are
    forgotten."""
    saved = {sig: signal.getsignal(sig) for sig in SIGNALS}
    install()
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
        _received.clear()


def received() -> int | None:
    """The first signal received since :func:`install`, or None."""
    return _received[0] if _received else None


@contextlib.contextmanager
def divert(callback: Callable[[int], None]) -> Iterator[None]:
    """While inside, a signal calls ``callback(signum)`` instead of raising.

    For event loops (Qt): the callback asks the loop to end; afterwards :func:`received`
    says which signal ended it.
    """
    _diverted.append(callback)
    try:
        yield
    finally:
        _diverted.remove(callback)
