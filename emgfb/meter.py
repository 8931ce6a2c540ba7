"""Progress of long offline work: one percentage line every few seconds.

This module owns :class:`ProgressMeter`, the one way every offline command (``process``,
``report``) shows how far a long pass over a recording has got. It writes lines to a
callback (the commands print them on stderr); it imports nothing of emgfb.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class ProgressMeter:
    """Percent done of long work as lines on a callback, at most every 2 s and only for
    work that lasts longer than that (the lines ``emgfb process`` prints)."""

    def __init__(self, say: Callable[[str], None] | None, what: str, total: int,
                 every_s: float = 2.0) -> None:
        self.say, self.what, self.total = say, what, max(1, total)
        self.every_s = every_s
        self.t0 = time.monotonic()
        self.next = self.t0 + every_s
        self.shown = False

    def update(self, done: int) -> None:
        """``done`` of ``total`` units finished."""
        now = time.monotonic()
        if self.say is not None and now >= self.next:
            self.say(f"{self.what}: {100 * done / self.total:.0f} % ({now - self.t0:.0f} s)")
            self.next, self.shown = now + self.every_s, True

    def done(self) -> None:
        """The work is finished (a last line only if a percentage was shown)."""
        if self.say is not None and self.shown:
            self.say(f"{self.what}: 100 % ({time.monotonic() - self.t0:.0f} s)")
