"""The real firmware (Uno, Nano or Mega 2560 build) running in simavr, served on a pty.

This module owns building the firmware and its simulator harness (``make`` in
``firmware/``, serialised by a file lock) and the lifecycle of one harness process
(:class:`AvrSimBoard`): launch it with analog waveforms (sines and/or a waveform file, in
millivolts), hand out the pty path a serial source can open
(``serial://<pty>?baud=1000000``), and stop it cleanly with its run statistics. It also
writes and reads the harness's waveform file format and predicts the ADC counts simavr
produces for given millivolts. Imports ``errors`` and ``protocol`` only; no I/O happens
before :func:`build_firmware` or :meth:`AvrSimBoard.start`.

Lifecycle of :class:`AvrSimBoard`: construct (options only) -> :meth:`~AvrSimBoard.start`
(build if needed, launch, wait for the pty line; :attr:`~AvrSimBoard.port` is valid) ->
use the port -> :meth:`~AvrSimBoard.stop` (SIGTERM, wait, statistics). ``with`` does both.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import select
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emgfb.errors import ConfigError, DataFormatError, DeviceError
from emgfb.protocol import DEFAULT_BAUD

log = logging.getLogger(__name__)

#: ``firmware/`` of a source checkout: sketch, Makefile, harness sources.
FIRMWARE_DIR = Path(__file__).resolve().parent.parent.parent / "firmware"
#: Default build directory (git-ignored).
BUILD_DIR = FIRMWARE_DIR / "build"
#: Boards the one sketch builds for (``make BOARD=...``) and the simavr core each runs on.
#: Must agree with ``mcu`` in ``emgfb/configs/boards/<board>.toml`` (a test checks).
BOARD_MCUS = {"uno": "atmega328p", "nano": "atmega328p", "mega": "atmega2560"}
#: simavr's supply and ADC reference; the firmware reports ``vref_mv=5000``.
SUPPLY_MV = 5000
_WAVE_MAGIC = "emgfb-wave 1"
_REQUIRED_TOOLS = ("make", "avr-gcc", "avr-g++", "gcc")
_REQUIRED_FILES = (
    "/usr/include/simavr/sim_avr.h",
    "/usr/share/arduino/hardware/arduino/avr/cores/arduino/Arduino.h",
)


def missing_toolchain() -> str | None:
    """Say what is missing to build and simulate the firmware, or ``None`` if nothing.

    The Debian packages are gcc-avr, avr-libc, arduino-core-avr, simavr and libsimavr-dev
    (``scripts/install.sh`` installs them).
    """
    missing = [tool for tool in _REQUIRED_TOOLS if shutil.which(tool) is None]
    missing += [path for path in _REQUIRED_FILES if not Path(path).exists()]
    if not (FIRMWARE_DIR / "Makefile").exists():
        missing.append(str(FIRMWARE_DIR / "Makefile"))
    if not missing:
        return None
    return f"firmware toolchain incomplete, missing {', '.join(missing)} (run scripts/install.sh)"


@dataclass(frozen=True)
class FirmwareBuild:
    """Paths produced by :func:`build_firmware`.

    Attributes
    ----------
    elf
        The firmware (``emgfb_<board>.elf``; the ``.hex`` lies beside it).
    harness
        The simavr harness executable (``emgfb_simavr``).
    vectors
        The host-compiled encoder test-vector program (``encoder_vectors``).
    board
        Board the firmware was built for (``uno``, ``nano``, ``mega``).
    """

    elf: Path
    harness: Path
    vectors: Path
    board: str = "uno"

    @property
    def mcu(self) -> str:
        """The simavr core to run :attr:`elf` on."""
        return BOARD_MCUS[self.board]


def build_firmware(
    build_dir: str | Path | None = None,
    fs_hz: int = 1000,
    channels: int | None = None,
    baud: int = DEFAULT_BAUD,
    timeout: float = 300.0,
    board: str = "uno",
) -> FirmwareBuild:
    """Build (or bring up to date) the firmware, the harness and the test-vector program.

    Parameters
    ----------
    build_dir
        Output directory; default ``firmware/build`` for the Uno and
        ``firmware/build/<board>`` for the others. Use one directory per set of
        compile-time settings.
    fs_hz, channels, baud
        The firmware's compile-time defaults (the board boots with them); ``channels``
        defaults to the board's (Uno 6, Nano 8, Mega 8: ``default_channels`` in
        ``emgfb/configs/boards/<board>.toml``).
    timeout
        Seconds to allow ``make``.
    board
        ``uno``, ``nano`` or ``mega`` (``make BOARD=...``).

    Raises
    ------
    DeviceError
        If the toolchain is missing or the build fails (the message ends with the
        compiler's last line).
    """
    if board not in BOARD_MCUS:
        raise ConfigError(
            f"firmware board={board!r}: expected one of {', '.join(sorted(BOARD_MCUS))}"
        )
    reason = missing_toolchain()
    if reason:
        raise DeviceError(reason)
    default_dir = BUILD_DIR if board == "uno" else BUILD_DIR / board
    out = Path(build_dir) if build_dir is not None else default_dir
    out = out if out.is_absolute() else FIRMWARE_DIR / out
    out.mkdir(parents=True, exist_ok=True)
    cmd = [
        "make", "-s", "-C", str(FIRMWARE_DIR), f"-j{min(os.cpu_count() or 1, 4)}",
        f"BOARD={board}", f"BUILD={out}", f"FS={int(fs_hz)}", f"BAUD={int(baud)}",
    ]
    if channels is not None:
        cmd.append(f"CH={int(channels)}")
    # Several test runs may share the tree: one make per build directory at a time.
    with open(out / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise DeviceError(f"firmware build in {out} took longer than {timeout} s") from None
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise DeviceError(f"firmware build in {out} failed (make exit {proc.returncode}): {last}")
    return FirmwareBuild(
        out / f"emgfb_{board}.elf", out / "emgfb_simavr", out / "encoder_vectors", board
    )


@dataclass(frozen=True)
class Sine:
    """A sine on one analog input: ``offset + amplitude * sin(2 pi f t + phase)`` in mV.

    ``t`` is simulated time since reset; components on the same input add up (offsets
    too), and the sum is clamped to 0 ... 5000 mV and rounded to whole millivolts.
    """

    channel: int
    freq_hz: float
    amplitude_mv: float
    offset_mv: float = 0.0
    phase_deg: float = 0.0

    def as_arg(self) -> str:
        """The harness's ``--sine`` argument."""
        if not 0 <= self.channel < 16:
            raise ConfigError(f"Sine channel={self.channel}: expected 0..15 (analog input)")
        return (
            f"{self.channel}:{self.freq_hz!r}:{self.amplitude_mv!r}:{self.offset_mv!r}:"
            f"{self.phase_deg!r}"
        )


def write_waveform_file(path: str | Path, millivolts: np.ndarray, rate_hz: float) -> Path:
    """Write a harness waveform file (format: ``firmware/README.md``).

    Parameters
    ----------
    path
        File to write.
    millivolts
        Integer millivolts, shape ``(n_rows, n_channels)``; column ``c`` drives input
        ``Ac``. Rows are played at ``rate_hz`` and repeat after the last one.
    rate_hz
        Row rate. With ``rate_hz`` equal to the board's sample rate, tick ``k`` after each
        ``start`` samples row ``k mod n_rows`` on every channel.
    """
    mv = np.asarray(millivolts)
    if mv.ndim != 2 or not 1 <= mv.shape[1] <= 16 or len(mv) == 0:
        raise ConfigError(f"waveform {path}: shape {mv.shape}, expected (n_rows>0, 1..16)")
    if not np.issubdtype(mv.dtype, np.integer):
        raise ConfigError(f"waveform {path}: dtype {mv.dtype}, expected integer millivolts")
    if not rate_hz > 0:
        raise ConfigError(f"waveform {path}: rate_hz={rate_hz}, expected > 0")
    path = Path(path)
    with open(path, "w") as f:
        f.write(f"{_WAVE_MAGIC}\nrate_hz {rate_hz!r}\nchannels {mv.shape[1]}\n")
        np.savetxt(f, mv, fmt="%d")
    return path


def read_waveform_file(path: str | Path) -> tuple[float, np.ndarray]:
    """Read a harness waveform file; returns ``(rate_hz, millivolts)``.

    Raises
    ------
    DataFormatError
        If the file does not follow the format.
    """
    path = Path(path)
    rate = None
    n_ch = None
    rows: list[str] = []
    with open(path) as f:
        lines = [ln.strip() for ln in f]
    body = [ln for ln in lines if ln and not ln.startswith("#")]
    if not body or body[0] != _WAVE_MAGIC:
        raise DataFormatError(f"{path}: first line {body[:1]!r}, expected {_WAVE_MAGIC!r}")
    for ln in body[1:]:
        if ln.startswith("rate_hz "):
            rate = float(ln.split()[1])
        elif ln.startswith("channels "):
            n_ch = int(ln.split()[1])
        else:
            rows.append(ln)
    if rate is None or n_ch is None or not rows:
        raise DataFormatError(f"{path}: needs rate_hz, channels and data rows")
    data = np.loadtxt(rows, dtype=np.int64, ndmin=2)
    if data.shape[1] != n_ch:
        raise DataFormatError(f"{path}: rows have {data.shape[1]} values, channels={n_ch}")
    return rate, data


def expected_counts(millivolts: np.ndarray, vref_mv: int = SUPPLY_MV) -> np.ndarray:
    """ADC counts simavr gives for whole millivolts: ``floor(mV * 1023 / vref)``, clamped.

    (A real ATmega328P divides by 1024 and adds noise; simavr uses 1023.)
    """
    mv = np.clip(np.asarray(millivolts, dtype=np.int64), 0, vref_mv)
    return (mv * 1023 // vref_mv).astype(np.uint16)


@dataclass(frozen=True)
class SimStats:
    """Statistics the harness reports at exit.

    Attributes
    ----------
    sim_seconds, wall_seconds, speed
        Simulated time, wall time and their ratio.
    cpu_load, cpu_load_sampling
        Fraction of AVR cycles not spent sleeping, overall and during the latest sampling
        run (from its first to the last ADC conversion).
    sampling_runs
        Sampling runs seen: the firmware's warm-up conversion at boot, then one per
        ``start`` line the host sent.
    adc_conversions, bytes_out, bytes_in
        Conversions started; UART bytes sent by the board and fed to it.
    """

    sim_seconds: float
    wall_seconds: float
    speed: float
    cycles: int
    sleep_cycles: int
    cpu_load: float
    cpu_load_sampling: float
    sampling_runs: int
    adc_conversions: int
    bytes_out: int
    bytes_in: int


class AvrSimBoard:
    """One simavr harness process running the firmware behind a pty.

    Parameters
    ----------
    sines
        Sine components on analog inputs.
    waveform
        A waveform file (see :func:`write_waveform_file`); it restarts at row 0 with the
        first conversion after each ``start`` line the host sends.
    speed
        Pace at this multiple of real time; 0 runs as fast as the reader takes the bytes.
    max_seconds
        Stop after this much simulated time (None: run until :meth:`stop`).
    build
        Prebuilt firmware; default: :func:`build_firmware` with default settings.
    start_timeout
        Seconds to wait for the harness to announce its pty.
    """

    def __init__(
        self,
        sines: Iterable[Sine] = (),
        waveform: str | Path | None = None,
        speed: float = 0.0,
        max_seconds: float | None = None,
        build: FirmwareBuild | None = None,
        start_timeout: float = 10.0,
    ):
        self.sines = tuple(sines)
        self.waveform = Path(waveform) if waveform is not None else None
        if speed < 0:
            raise ConfigError(f"AvrSimBoard speed={speed}: expected >= 0")
        self.speed = speed
        self.max_seconds = max_seconds
        self.build = build
        self.start_timeout = start_timeout
        self.stats: SimStats | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._tmp: Path | None = None
        self._port: str | None = None

    @property
    def port(self) -> str:
        """Path of the pty (a per-run symlink to the slave); valid after :meth:`start`."""
        if self._port is None:
            raise RuntimeError("AvrSimBoard.port is only known after start()")
        return self._port

    @property
    def url(self) -> str:
        """A source URL for the serial driver: ``serial://<pty>?baud=1000000``."""
        return f"serial://{self.port}?baud={DEFAULT_BAUD}"

    @property
    def running(self) -> bool:
        """True while the harness process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def command(self) -> list[str]:
        """The harness command line (without the per-run paths added by :meth:`start`)."""
        build = self.build or build_firmware()
        cmd = [str(build.harness), "--watch-stdin", "--mcu", build.mcu]
        for sine in self.sines:
            cmd += ["--sine", sine.as_arg()]
        if self.waveform is not None:
            cmd += ["--wave", str(self.waveform)]
        if self.speed:
            cmd += ["--speed", repr(float(self.speed))]
        if self.max_seconds:
            cmd += ["--max-seconds", repr(float(self.max_seconds))]
        return cmd + [str(build.elf)]

    def start(self) -> str:
        """Launch the harness and return the pty path.

        Raises
        ------
        DeviceError
            If the harness cannot be built or does not announce its pty in time.
        """
        if self._proc is not None:
            raise RuntimeError("AvrSimBoard.start() called twice")
        if self.waveform is not None and not self.waveform.is_file():
            raise ConfigError(f"waveform file {self.waveform} does not exist")
        cmd = self.command()
        self._tmp = Path(tempfile.mkdtemp(prefix="emgfb-avrsim-"))
        link = self._tmp / "board"
        stats = self._tmp / "stats.json"
        cmd[1:1] = ["--link", str(link), "--stats", str(stats)]
        stderr = open(self._tmp / "stderr.log", "wb")
        log.debug("launching %s", " ".join(cmd))
        try:
            self._proc = subprocess.Popen(
                cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr
            )
        finally:
            stderr.close()
        assert self._proc.stdout is not None
        ready, _, _ = select.select([self._proc.stdout], [], [], self.start_timeout)
        line = self._proc.stdout.readline().decode(errors="replace").strip() if ready else ""
        if not line:
            detail = self._stderr_tail()
            self.stop()
            raise DeviceError(
                f"simavr harness {cmd[0]} announced no pty within {self.start_timeout} s: "
                f"{detail}"
            )
        self._port = line
        log.info("firmware running in simavr on %s", line)
        return line

    def stop(self, timeout: float = 10.0) -> SimStats | None:
        """End the harness (SIGTERM), wait for it and return its statistics (idempotent).

        Stop reading the pty first: reads on it fail once the harness has gone.
        """
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("simavr harness %d ignored SIGTERM for %s s", proc.pid, timeout)
                proc.kill()
                proc.wait()
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    pipe.close()
            if proc.returncode not in (0, -signal.SIGTERM):
                log.warning(
                    "simavr harness exited with %s: %s", proc.returncode, self._stderr_tail()
                )
        if self._tmp is not None:
            stats = self._tmp / "stats.json"
            if stats.exists():
                self.stats = SimStats(**json.loads(stats.read_text()))
            shutil.rmtree(self._tmp)
            self._tmp = None
        return self.stats

    def _stderr_tail(self) -> str:
        if self._tmp is None or not (self._tmp / "stderr.log").exists():
            return "(no output)"
        lines = (self._tmp / "stderr.log").read_text(errors="replace").strip().splitlines()
        return lines[-1] if lines else "(no output)"

    def __enter__(self) -> AvrSimBoard:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

