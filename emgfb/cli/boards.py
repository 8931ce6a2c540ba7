"""``emgfb boards``: list the supported boards and front-ends, or check one combination."""

from __future__ import annotations

import argparse
import sys

from emgfb.limits import CHANNELS, SAMPLE_RATE_HZ


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``boards`` subcommand."""
    p = subparsers.add_parser(
        "boards", help="list supported boards and EMG front-ends (µV per count, suitability)")
    p.add_argument("--board", help="check this board (name or TOML) with --frontend")
    p.add_argument("--frontend", help="check this front-end (name or TOML) on --board")
    p.add_argument("--fs", type=SAMPLE_RATE_HZ.arg,
                   help="sample rate to check (default: the board's)")
    p.add_argument("--channels", type=CHANNELS.arg,
                   help="channel count to check (default: the board's)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the listing, or the verdict for one board + front-end (ConfigError if refused)."""
    from emgfb.config import bundled_dir
    from emgfb.errors import ConfigError
    from emgfb.hardware import (
        board_names,
        check_frontend,
        describe,
        frontend_names,
        load_board,
        load_frontend,
    )

    if not (args.board or args.frontend):
        boards = [load_board(n) for n in board_names()]
        frontends = [load_frontend(n) for n in frontend_names()]
        if not boards or not frontends:
            missing = "boards" if not boards else "frontends"
            raise ConfigError(f"{bundled_dir(missing)}: no bundled {missing} descriptors "
                              f"found; expected *.toml files there (reinstall emgfb)")
        print("\n".join(describe(boards, frontends)))
        return 0
    board = load_board(args.board or "uno")
    fe = load_frontend(args.frontend or "bioamp")
    n = args.channels or board.default_channels
    fs = args.fs or board.default_fs
    board.check_rate(fs, n)
    check = check_frontend(fe, bits=board.adc_bits, vref_mv=board.vref_mv, fs=fs,
                           board=board.name, log_warnings=False)
    print(f"{board.name} + {fe.name} @ {fs:g} Hz x {n} ch: {check.uv_per_count:.3f} uV per "
          f"count, pins {', '.join(board.pins[:n])}")
    for w in check.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print("ok" if not check.warnings else f"usable with {len(check.warnings)} warning(s)")
    return 0
