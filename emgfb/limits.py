"""The bounds of every number a user can give: command-line options, URL parameters and
configuration values, written once.

Each kind of quantity is one :class:`Limit` (``SAMPLE_RATE_HZ``, ``CHANNELS``,
``RECORD_SECONDS`` ...). Every room checks a value against the same object, and every
failure is the one-line format of :meth:`emgfb.config.Table.fail`::

    <where>: <name> = <value>: expected <what>

Command-line options declare their limit as the argparse ``type`` (``type=SECONDS.arg``), so
the check happens once, while parsing; TOML values pass it to
:meth:`emgfb.config.Table.get` (``limit=``); URL parameters and constructors call
:meth:`Limit.check`. Imports only ``errors``.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from typing import Any

from emgfb.errors import ConfigError


@dataclass(frozen=True)
class Limit:
    """The allowed range of one kind of number.

    Attributes
    ----------
    kind
        ``int`` or ``float`` (integers are accepted where floats are expected).
    low, high
        Smallest and largest allowed value (``None``: unbounded on that side).
    low_open
        ``low`` itself is not allowed (``0 < x``).
    unit
        Unit named in messages (``Hz``, ``s``, ``px``).
    note
        Extra words for messages, e.g. ``0 = unpaced``.
    """

    kind: type
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    unit: str = ""
    note: str = ""

    @property
    def expected(self) -> str:
        """What a valid value is, in words (the ``expected ...`` part of an error)."""
        noun = "an integer" if self.kind is int else "a number"
        unit = f" {self.unit}" if self.unit else ""
        lo, hi = _fmt(self.low), _fmt(self.high)
        if self.low is not None and self.high is not None:
            rng = f"in {lo}..{hi}" if not self.low_open else f"in {lo} < x <= {hi}"
        elif self.low is not None:
            rng = f"> {lo}" if self.low_open else f">= {lo}"
        elif self.high is not None:
            rng = f"<= {hi}"
        else:
            rng = "(finite)"
        note = f" ({self.note})" if self.note else ""
        return f"{noun} {rng}{unit}{note}"

    def ok(self, value: Any) -> bool:
        """True if ``value`` is a number of the right kind inside the range."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if self.kind is int and not (isinstance(value, int) or float(value).is_integer()):
            return False
        if not math.isfinite(value):
            return False
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return self.high is None or value <= self.high

    def check(self, value: Any, name: str, where: str = "") -> Any:
        """Return ``value`` (as ``kind``) if allowed, else raise the one-line ConfigError.

        Parameters
        ----------
        value
            The value given (a number, or text from a command line or URL).
        name
            The key or option as the user wrote it (``fs``, ``--seconds``).
        where
            The file or URL it came from (``""`` for a command-line option).
        """
        number = self.convert(value)
        if number is None or not self.ok(number):
            raise ConfigError(f"{where + ': ' if where else ''}{name} = {value!r}: "
                              f"expected {self.expected}")
        return self.kind(number)

    def convert(self, value: Any) -> float | int | None:
        """``value`` as a number (text parsed), or ``None`` if it is not one."""
        if isinstance(value, bool):
            return None
        if isinstance(value, int | float):
            return value
        if isinstance(value, str):
            try:
                return int(value) if self.kind is int else float(value)
            except ValueError:
                return None
        return None

    def arg(self, text: str) -> Any:
        """argparse ``type``: parse and check an option's text (one-line error on failure)."""
        number = self.convert(text)
        if number is None or not self.ok(number):
            raise argparse.ArgumentTypeError(f"{text!r}: expected {self.expected}")
        return self.kind(number)

    def __repr__(self) -> str:
        return f"Limit({self.expected})"


def _fmt(x: float | None) -> str:
    if x is None:
        return ""
    return f"{x:g}" if isinstance(x, float) else f"{x}"


#: Sample rate of any source, board, file or option, in Hz. The DSP needs >= 250 Hz on top.
SAMPLE_RATE_HZ = Limit(float, 1, 20_000, unit="Hz")
#: Voltage gain of an EMG front-end, electrode to ADC.
FRONTEND_GAIN = Limit(float, 1e-3, 1e6)
#: A board's sample-clock error in ppm (+ = fast): a ceramic resonator is within ±5000; a
#: measured error beyond this is not a clock but a source not paced in real time.
CLOCK_PPM = Limit(float, -20_000, 20_000, unit="ppm")
#: Channels of a board or source.
CHANNELS = Limit(int, 1, 16)
#: How long to record or stream, in seconds (one week at most).
RECORD_SECONDS = Limit(float, 0, 7 * 86_400, low_open=True, unit="s")
#: A protocol step, phase or pause, in seconds (one hour at most; 0 where allowed).
STEP_SECONDS = Limit(float, 0, 3_600, unit="s")
#: A waiting time: port probe, screenshot delay ... (ten minutes at most).
WAIT_SECONDS = Limit(float, 0, 600, unit="s")
#: Repetitions of an exercise.
REPS = Limit(int, 1, 1_000)
#: Display refresh rate.
FPS = Limit(float, 1, 240, unit="Hz")
#: One side of a window.
WINDOW_PX = Limit(int, 200, 16_384, unit="px")
#: Serial baud rate.
BAUD = Limit(int, 300, 4_000_000, unit="Bd")
#: Pacing of a simulated or replayed source, x real time.
SPEED = Limit(float, 0, 1_000, note="0 = unpaced")
#: Replay speed (a replay is always paced).
REPLAY_SPEED = Limit(float, 0, 1_000, low_open=True)
#: A position in a recording, in seconds.
POSITION_SECONDS = Limit(float, 0, None, unit="s")
#: A TCP port (0 = any free port).
TCP_PORT = Limit(int, 0, 65_535, note="0 = any free port")
#: A random seed.
SEED = Limit(int, 0, 2**63 - 1)
