"""Fixtures for the firmware-in-the-loop tests: build via make into firmware/build, launch
the simavr harness, and talk to the firmware's pty at the protocol level.

Every test here needs avr-gcc, the Arduino core and simavr; without them they skip with
the reason (CI installs them through scripts/install.sh).
"""

from __future__ import annotations

import os
import select
from collections.abc import Callable, Iterator

import numpy as np
import pytest
import serial

from emgfb.acquisition import avrsim
from emgfb.protocol import DEFAULT_BAUD, BoardInfo, DecodedFrames, FrameDecoder, parse_board_line

IO_TIMEOUT = 20.0  # generous: a loaded CI machine may run the simulator slowly


@pytest.fixture(scope="session")
def fw_build() -> avrsim.FirmwareBuild:
    """The firmware, harness and vector program with the default settings, built once."""
    reason = avrsim.missing_toolchain()
    if reason:
        pytest.skip(reason)
    return avrsim.build_firmware()


@pytest.fixture
def start_board(fw_build: avrsim.FirmwareBuild) -> Iterator[Callable[..., avrsim.AvrSimBoard]]:
    """Factory: ``start_board(sines=..., waveform=..., build=...)`` -> a running harness.

    Every harness started is stopped at teardown.
    """
    boards: list[avrsim.AvrSimBoard] = []

    def start(**kwargs: object) -> avrsim.AvrSimBoard:
        kwargs.setdefault("build", fw_build)
        board = avrsim.AvrSimBoard(**kwargs)  # type: ignore[arg-type]
        boards.append(board)
        board.start()
        return board

    yield start
    for board in boards:
        board.stop()


class RawBoard:
    """Protocol-level access to a board on a serial port (pyserial + FrameDecoder).

    :meth:`sync` is a barrier: it sends a unique unknown command and returns every byte
    that arrived before the board's ``ERR`` answer to it, so afterwards nothing is in
    flight. (pyserial's open() discards pending input, the boot line included.)
    """

    def __init__(self, port: str):
        self.ser = serial.Serial(port, DEFAULT_BAUD, timeout=IO_TIMEOUT)
        self._pending = b""
        self._nonce = 0

    def close(self) -> None:
        self.ser.close()

    def send(self, line: str) -> None:
        self.ser.write(line.encode("ascii") + b"\n")

    def _read_until(self, marker: bytes) -> bytes:
        """Bytes up to and including ``marker``; later bytes stay pending."""
        buf = self._pending
        while marker not in buf:
            chunk = self.ser.read(max(1, self.ser.in_waiting))
            if not chunk:
                raise AssertionError(f"no {marker!r} within {IO_TIMEOUT} s; got {buf[-200:]!r}")
            buf += chunk
        end = buf.index(marker) + len(marker)
        self._pending = buf[end:]
        return buf[:end]

    def sync(self) -> bytes:
        """Send a barrier command; return the bytes received before its ERR reply."""
        self._nonce += 1
        token = f"sync{self._nonce}"
        self.send(token)
        got = self._read_until(f"ERR unknown command '{token}'".encode())
        self._read_until(b"\n")
        return got[: got.rindex(b"ERR unknown command")]

    def ask(self, line: str) -> str:
        """Send a command and return the one-line reply (board must be stopped)."""
        self.send(line)
        return self._read_until(b"\n").decode("ascii").strip()

    def info(self) -> BoardInfo:
        return parse_board_line(self.ask("?"))

    def read_frames(self, decoder: FrameDecoder, n_frames: int) -> DecodedFrames:
        """Read until ``decoder`` has produced at least ``n_frames`` more frames."""
        parts = [decoder.feed(self._pending)]
        self._pending = b""
        got = len(parts[0])
        while got < n_frames:
            chunk = self.ser.read(max(1, self.ser.in_waiting))
            if not chunk:
                raise AssertionError(f"stream stalled after {got} of {n_frames} frames")
            part = decoder.feed(chunk)
            parts.append(part)
            got += len(part)
        return DecodedFrames(
            np.concatenate([p.tick for p in parts]),
            np.concatenate([p.counts for p in parts]),
            np.concatenate([p.overrun for p in parts]),
        )


@pytest.fixture
def open_raw() -> Iterator[Callable[[str], RawBoard]]:
    """Factory: ``open_raw(port)`` -> a :class:`RawBoard`, closed at teardown."""
    opened: list[RawBoard] = []

    def open_(port: str) -> RawBoard:
        opened.append(RawBoard(port))
        return opened[-1]

    yield open_
    for raw in opened:
        raw.close()


@pytest.fixture
def raw_board(start_board, open_raw) -> RawBoard:
    """A fresh harness (no waveforms) opened with pyserial and synchronised."""
    raw = open_raw(start_board().port)
    raw.sync()
    return raw


@pytest.fixture
def boot_line() -> Callable[[str], bytes]:
    """``boot_line(port)``: the first line a fresh board sends (see :func:`read_boot_line`)."""
    return read_boot_line


def read_boot_line(port: str, timeout: float = IO_TIMEOUT) -> bytes:
    """Read the first line a freshly started board sends, without pyserial's input flush."""
    fd = os.open(port, os.O_RDWR | os.O_NOCTTY)
    try:
        buf = b""
        while b"\n" not in buf:
            ready, _, _ = select.select([fd], [], [], timeout)
            if not ready:
                raise AssertionError(f"no boot line within {timeout} s; got {buf!r}")
            buf += os.read(fd, 256)
        return buf
    finally:
        os.close(fd)
