"""Serial port discovery: which ports exist, which look like Arduino-class boards, which answer.

This module owns :func:`list_ports` (pyserial's ``serial.tools.list_ports`` plus a
USB VID/PID guess of the board family) and :func:`probe_ports` (the protocol-v1 ``?``
handshake on each port, in parallel). Imports ``protocol``, ``errors``,
``acquisition.serial_source`` and pyserial.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from serial.tools import list_ports as _list_ports

from emgfb.acquisition.serial_source import _is_pty, handshake, open_port
from emgfb.errors import DeviceError
from emgfb.protocol import DEFAULT_BAUD, BoardInfo

log = logging.getLogger(__name__)

#: USB vendor IDs of Arduino boards and of the USB-serial chips on Arduino-class clones.
BOARD_VENDORS: dict[int, str] = {
    0x2341: "Arduino",
    0x2A03: "Arduino",
    0x1A86: "CH340",
    0x0403: "FTDI",
    0x10C4: "CP210x",
}


@dataclass(frozen=True)
class PortInfo:
    """One serial port.

    Attributes
    ----------
    device
        Path to open, e.g. ``/dev/ttyACM0``.
    description, manufacturer, serial_number
        What the OS reports (may be empty).
    vid, pid
        USB vendor and product ID, or None for non-USB ports.
    family
        ``"Arduino"``, ``"CH340"``, ``"FTDI"``, ``"CP210x"`` for likely boards, else None.
    board
        The board's identification if a probe got an EMGFB line.
    probe_error
        Why a probe failed (one line), if it did.
    """

    device: str
    description: str = ""
    manufacturer: str = ""
    serial_number: str = ""
    vid: int | None = None
    pid: int | None = None
    family: str | None = None
    board: BoardInfo | None = None
    probe_error: str | None = None

    @property
    def likely_board(self) -> bool:
        """True if the USB IDs say Arduino or a USB-serial chip used on clones."""
        return self.family is not None

    def as_dict(self) -> dict[str, object]:
        """JSON-friendly dict (USB IDs as ``0x....`` strings)."""
        return {
            "device": self.device,
            "description": self.description,
            "manufacturer": self.manufacturer,
            "serial_number": self.serial_number,
            "vid": None if self.vid is None else f"0x{self.vid:04x}",
            "pid": None if self.pid is None else f"0x{self.pid:04x}",
            "family": self.family,
            "likely_board": self.likely_board,
            "board": None if self.board is None else self.board.as_dict(),
            "probe_error": self.probe_error,
        }


def list_ports(extra: list[str] | tuple[str, ...] = ()) -> list[PortInfo]:
    """List the serial ports the OS knows, plus ``extra`` paths (e.g. a virtual board's pty).

    Returns
    -------
    list of PortInfo
        Sorted by device path, extra paths last.
    """
    found = []
    for p in sorted(_list_ports.comports(), key=lambda p: p.device):
        found.append(
            PortInfo(
                device=p.device,
                description=p.description or "",
                manufacturer=p.manufacturer or "",
                serial_number=p.serial_number or "",
                vid=p.vid,
                pid=p.pid,
                family=BOARD_VENDORS.get(p.vid) if p.vid is not None else None,
            )
        )
    known = {p.device for p in found}
    found += [PortInfo(device=d, description="given on the command line") for d in extra
              if d not in known]
    return found


def probe(
    device: str, baud: int = DEFAULT_BAUD, reset_wait: float | None = None, timeout: float = 2.0
) -> BoardInfo:
    """Open ``device``, run the ``?`` handshake and close it again.

    Parameters
    ----------
    device
        Port path.
    baud
        Baud rate.
    reset_wait
        Seconds to wait for a DTR auto-reset (default: 0 for ptys, 2 s otherwise).
    timeout
        Seconds to wait for the answer.

    Raises
    ------
    DeviceError
        The port cannot be opened or does not answer like an emgfb board.
    """
    if reset_wait is None:
        reset_wait = 0.0 if _is_pty(device) else 2.0
    port = open_port(device, baud)
    try:
        return handshake(port, device, reset_wait=reset_wait, timeout=timeout)
    finally:
        port.close()


def probe_ports(
    ports: list[PortInfo], baud: int = DEFAULT_BAUD, timeout: float = 2.0,
    reset_wait: float | None = None,
) -> list[PortInfo]:
    """Probe every port in parallel; return copies with ``board`` or ``probe_error`` set."""

    def one(p: PortInfo) -> PortInfo:
        try:
            return replace(p, board=probe(p.device, baud, reset_wait, timeout))
        except DeviceError as exc:
            log.info("%s", exc)
            return replace(p, probe_error=str(exc))

    if not ports:
        return []
    with ThreadPoolExecutor(max_workers=min(8, len(ports))) as pool:
        return list(pool.map(one, ports))
