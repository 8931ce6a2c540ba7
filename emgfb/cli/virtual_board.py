"""``emgfb virtual-board``: serve the simulated board on a pseudo-terminal, with faults.

Prints the port path (one line), runs until Ctrl-C or SIGTERM, then prints what was
injected. Thin wrapper over :class:`emgfb.acquisition.virtual_board.VirtualBoard`.
"""

from __future__ import annotations

import argparse
import signal
import threading
from typing import TYPE_CHECKING

from emgfb.limits import CHANNELS, SAMPLE_RATE_HZ, SEED, SPEED, TCP_PORT

if TYPE_CHECKING:
    from emgfb.acquisition.board_faults import InjectedFaults

FAULTS_HELP = (
    "comma-separated key=value, e.g. 'flip=0.001,drop_frame=0.001,false_frame=0.001,"
    "disconnect_every=5'. Per-frame rates: flip, drop_byte, drop_frame, garbage, stall, "
    "false_frame, hiccup; seconds of streaming: disconnect_every, reset_every, "
    "restart_every, freeze_every, blackout_every; once after seconds: change_after, "
    "vanish_after; sizes: garbage_max, hiccup_max (bytes), stall_ms, outage_ms, freeze_ms, "
    "blackout_ms, change_channels; per 'stop' sent while streaming: lose_stop; clock_ppm; "
    "seed"
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``virtual-board`` subcommand."""
    p = subparsers.add_parser("virtual-board", help="serve a simulated board on a pty")
    p.add_argument("--channels", type=CHANNELS.arg, default=6, help="channel count 1..16 (6)")
    p.add_argument("--fs", type=SAMPLE_RATE_HZ.arg, default=1000.0, help="sample rate in Hz (1000)")
    p.add_argument("--seed", type=SEED.arg, default=1, help="signal seed (1)")
    p.add_argument("--speed", type=SPEED.arg, default=1.0, help="x real time; 0 = unpaced (1)")
    p.add_argument("--faults", default="", metavar="SPEC", help=FAULTS_HELP)
    p.add_argument("--link", default=None, metavar="PATH", help="stable symlink to the pty")
    p.add_argument("--pattern", choices=("emg", "ramp"), default="emg", help="signal (emg)")
    p.add_argument("--tcp", type=TCP_PORT.arg, default=None, metavar="PORT",
                   help="serve on TCP 127.0.0.1:PORT (0 = any free port) like a Wi-Fi board; "
                        "prints socket://127.0.0.1:PORT instead of the pty")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted; print the port first and the injected counters last."""
    from emgfb.acquisition.virtual_board import FaultPlan, VirtualBoard

    board = VirtualBoard(
        n_channels=args.channels, fs=args.fs, seed=args.seed, speed=args.speed,
        faults=FaultPlan.from_spec(args.faults), link_path=args.link, pattern=args.pattern,
    )
    tcp = None
    if args.tcp is not None:
        from emgfb.acquisition.tcp_board import TcpBoard

        tcp = TcpBoard(board, port=args.tcp)
    served = board if tcp is None else tcp
    done = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        with served:
            print(board.port if tcp is None else tcp.url, flush=True)
            try:
                while not done.wait(0.5):
                    pass
            except KeyboardInterrupt:
                pass  # Ctrl-C is the normal way to end the board
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(format_counters(board.injected), flush=True)
    return 0


def format_counters(injected: InjectedFaults) -> str:
    """One ``name: value`` line per counter."""
    return "\n".join(f"{k}: {v:g}" if isinstance(v, float) else f"{k}: {v}"
                     for k, v in injected.as_dict().items())
