"""An ``emgfb`` command run as a real process, its stderr read line by line on a thread.

Tests wait on the lines the command prints (never on a fixed sleep) and read the rest of
its stderr after it exits.
"""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence


class EmgfbProcess:
    """``python -m emgfb [-v] ARGV`` with stdout discarded and stderr collected.

    Attributes
    ----------
    proc
        The :class:`subprocess.Popen`.
    seen
        Every stderr line read so far, in order.
    """

    def __init__(self, argv: Sequence[str], *, verbose: bool = True,
                 env: Mapping[str, str] | None = None):
        cmd = [sys.executable, "-m", "emgfb", *(["-v"] if verbose else []), *argv]
        self.proc = subprocess.Popen(cmd, env=None if env is None else dict(env),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True)
        self.seen: list[str] = []
        self._ended = False
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        with self.proc.stderr:
            for line in self.proc.stderr:
                self._lines.put(line)
        self._lines.put("")  # end of stream

    def line(self, timeout: float = 60.0) -> str:
        """The next stderr line ("" at the end of the stream or after ``timeout``)."""
        if self._ended:
            return ""
        try:
            line = self._lines.get(timeout=max(0.0, timeout))
        except queue.Empty:
            return ""
        self._ended = line == ""
        self.seen.append(line)
        return line

    def wait_line(self, needle: str, timeout: float = 60.0) -> str:
        """Read lines until one contains ``needle``; AssertionError with everything read
        when the stream ends or ``timeout`` passes first."""
        deadline = time.monotonic() + timeout
        while True:
            line = self.line(deadline - time.monotonic())
            if needle in line:
                return line
            assert line, f"never saw {needle!r}: {self.text}"

    def finish(self, timeout: float = 10.0) -> str:
        """Kill the process if it still runs, read stderr to its end; all of it."""
        self.proc.kill()
        self.proc.wait()
        while not self._ended and self.line(timeout) != "":
            pass
        return self.text

    @property
    def text(self) -> str:
        """All stderr read so far."""
        return "".join(self.seen)
