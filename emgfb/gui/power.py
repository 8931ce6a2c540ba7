"""Whether the host runs on mains power, where the operating system can tell.

A patient wired to a board that is USB-connected to a mains-powered computer is outside
IEC 60601-1 unless isolated (DOMAIN.md §7), so the set-up view warns. Owns
:func:`on_mains_power`; pure standard library, no Qt.
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)

POWER_SUPPLY_DIR = Path("/sys/class/power_supply")


def on_mains_power(root: Path = POWER_SUPPLY_DIR) -> bool | None:
    """Return True on mains power, False on battery, None where the OS does not say.

    On Linux, reads ``type`` and ``online`` of every supply in ``/sys/class/power_supply``:
    an online ``Mains`` (AC adapter) means mains power; a host with batteries but no online
    adapter runs on battery. Desktops without any supply entry return None (unknown:
    assume the worst in the wording, but do not claim to know).
    """
    try:
        supplies = list(root.iterdir())
    except OSError:
        return None
    has_battery = False
    has_adapter = False
    for sup in supplies:
        try:
            kind = (sup / "type").read_text().strip()
        except OSError:
            continue
        if kind == "Battery":
            has_battery = True
        elif kind in ("Mains", "USB", "USB_C", "USB_PD"):
            try:
                online = (sup / "online").read_text().strip() == "1"
            except OSError:
                continue
            has_adapter = True
            if online and kind == "Mains":
                return True
    if has_battery:
        return False
    if has_adapter:
        return False
    log.debug("no power supply information under %s", root)
    return None
