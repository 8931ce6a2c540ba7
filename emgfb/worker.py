"""One lifecycle for every background thread: start, stop with a timeout, state, error.

This module owns :class:`Worker` and :class:`WorkerState`. Every thread emgfb runs (the
session writer, the serial reader, the live acquisition and processing workers, the board
emulators, the LSL marker inlet) is a :class:`Worker`, so they all start, stop, fail and
report the same way: a stop event the loop watches, ``stop(timeout)`` that joins and says
whether the thread ended, the exception that ended it kept as :attr:`Worker.error` (logged
once, never swallowed) and a :class:`WorkerState` for status lines. Modelled on pyacq's
node lifecycle and mne-lsl's acquisition executor. Imports nothing from emgfb.
"""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class WorkerState(enum.Enum):
    """Where a :class:`Worker` is in its lifecycle."""

    #: Constructed, not started.
    IDLE = "idle"
    #: The thread runs.
    RUNNING = "running"
    #: :meth:`Worker.stop` was asked; the thread has not ended yet.
    STOPPING = "stopping"
    #: The thread ended after a stop request.
    STOPPED = "stopped"
    #: The thread's work ended on its own (a finite source, a sentinel).
    FINISHED = "finished"
    #: The thread ended with an exception (see :attr:`Worker.error`).
    FAILED = "failed"

    @property
    def ended(self) -> bool:
        """True for the states after the thread ended."""
        return self in (WorkerState.STOPPED, WorkerState.FINISHED, WorkerState.FAILED)


class Worker:
    """A named daemon thread with one lifecycle and one error convention.

    Lifecycle: construct (nothing runs) -> :meth:`start` -> the target runs, watching
    :attr:`stop_event` -> :meth:`stop` (sets the event, wakes the target, joins with a
    timeout). The target either returns (``FINISHED``, or ``STOPPED`` after a stop request)
    or raises (``FAILED``: the exception is logged once and kept in :attr:`error`; the
    owner decides whether to surface it as state or re-raise it with
    :meth:`raise_if_failed`). ``with Worker(...):`` starts and stops.

    Parameters
    ----------
    name
        Thread name, shown in logs and by debuggers.
    target
        Called once on the thread with the stop event; ``None`` to override :meth:`run`.
    wake
        Called by :meth:`stop` after setting the event, to unblock a target waiting on
        something else (e.g. put a sentinel into its queue).
    on_exit
        Called on the thread after the target returned or raised (state already set),
        e.g. to notify waiters.
    """

    def __init__(
        self,
        name: str,
        target: Callable[[threading.Event], None] | None = None,
        *,
        wake: Callable[[], None] | None = None,
        on_exit: Callable[[Worker], None] | None = None,
    ) -> None:
        self.name = name
        self._target = target
        self._wake = wake
        self._on_exit = on_exit
        self.stop_event = threading.Event()
        self._state = WorkerState.IDLE
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- state ---------------------------------------------------------------------------
    @property
    def state(self) -> WorkerState:
        """The current :class:`WorkerState`."""
        return self._state

    @property
    def error(self) -> BaseException | None:
        """The exception that ended the thread, or None."""
        return self._error

    @property
    def alive(self) -> bool:
        """True while the thread runs."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def stopping(self) -> bool:
        """True once a stop was requested (the target's loop condition)."""
        return self.stop_event.is_set()

    def raise_if_failed(self) -> None:
        """Re-raise the exception that ended the thread, if any (in the caller's thread)."""
        if self._error is not None:
            raise self._error

    # -- lifecycle -----------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """The work; runs on the thread. Default: call ``target(stop)``."""
        if self._target is None:
            raise NotImplementedError(f"{type(self).__name__} needs a target or run()")
        self._target(stop)

    def start(self) -> Worker:
        """Start the thread (once).

        Raises
        ------
        RuntimeError
            If the worker was started before.
        """
        with self._lock:
            if self._thread is not None:
                raise RuntimeError(f"worker {self.name!r} started twice")
            self._state = WorkerState.RUNNING
            self._thread = threading.Thread(target=self._main, name=self.name, daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = 5.0) -> bool:
        """Ask the thread to end and wait up to ``timeout`` s (None: for ever).

        Idempotent; a no-op on a worker never started. Never call it from the worker's own
        thread with a timeout (it cannot join itself; it only sets the event then).

        Returns
        -------
        bool
            True if the thread has ended (or never started).
        """
        self.stop_event.set()
        with self._lock:
            if self._state is WorkerState.RUNNING:
                self._state = WorkerState.STOPPING
        if self._wake is not None:
            self._wake()
        thread = self._thread
        if thread is None or thread is threading.current_thread():
            return thread is None
        thread.join(timeout)
        if thread.is_alive():
            log.error("%s did not stop within %.1f s", self.name, timeout or 0.0)
            return False
        return True

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread to end on its own; True if it has (or never started)."""
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            return not thread.is_alive()
        return thread is None

    def _main(self) -> None:
        try:
            self.run(self.stop_event)
        except BaseException as exc:  # noqa: BLE001 - kept as .error and logged, never lost
            self._error = exc
            self._state = WorkerState.FAILED
            log.error("%s failed: %s: %s", self.name, type(exc).__name__, exc,
                      exc_info=not isinstance(exc, KeyboardInterrupt))
        else:
            with self._lock:
                self._state = (WorkerState.STOPPED if self.stop_event.is_set()
                               else WorkerState.FINISHED)
        finally:
            if self._on_exit is not None:
                self._on_exit(self)

    def __enter__(self) -> Worker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        err = f", error={self._error!r}" if self._error is not None else ""
        return f"<Worker {self.name!r} {self._state.value}{err}>"
