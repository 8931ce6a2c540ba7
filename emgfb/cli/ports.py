"""``emgfb ports``: list serial ports, mark likely boards, optionally probe the handshake."""

from __future__ import annotations

import argparse
import json

from emgfb.acquisition.ports import list_ports, probe_ports
from emgfb.limits import BAUD, WAIT_SECONDS
from emgfb.protocol import DEFAULT_BAUD


def _run(args: argparse.Namespace) -> int:
    ports = list_ports(extra=args.port)
    if args.probe:
        ports = probe_ports(ports, baud=args.baud, timeout=args.timeout)
    if args.json:
        print(json.dumps([p.as_dict() for p in ports]))
        return 0
    if not ports:
        print("no serial ports found")
    for p in ports:
        ids = f" [{p.vid:04x}:{p.pid:04x}]" if p.vid is not None and p.pid is not None else ""
        mark = f"  likely {p.family} board" if p.family else ""
        print(f"{p.device}  {p.description}{ids}{mark}")
        if p.board is not None:
            print(f"    answers: {p.board.line}")
        elif p.probe_error is not None:
            print(f"    no emgfb board: {p.probe_error}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``emgfb ports``."""
    p = subparsers.add_parser("ports", help="list serial ports and find emgfb boards")
    p.add_argument("--json", action="store_true", help="print one JSON list")
    p.add_argument("--probe", action="store_true", help="send the '?' handshake to each port")
    p.add_argument("--port", action="append", default=[], metavar="PATH",
                   help="also list/probe this path (e.g. a virtual board's pty); repeatable")
    p.add_argument("--baud", type=BAUD.arg, default=DEFAULT_BAUD, help="baud rate for --probe")
    p.add_argument("--timeout", type=WAIT_SECONDS.arg, default=2.0,
                   help="seconds to wait for an answer")
    p.set_defaults(func=_run)
