"""``emgfb stream``: read a source for a while and report the data-path integrity counters."""

from __future__ import annotations

import argparse
import contextlib
import json
import time

from emgfb.acquisition.source import open_source
from emgfb.errors import ConfigError


def stream_summary(url: str, seconds: float, lsl: str | None = None) -> dict[str, object]:
    """Read ``url`` for ``seconds`` (or until a finite source ends) and summarise it.

    With ``lsl``, also publish the stream on Lab Streaming Layer under that name."""
    if not seconds > 0:
        raise ConfigError(f"--seconds {seconds}: expected a positive number")
    with open_source(url) as src, contextlib.ExitStack() as stack:
        pub = None
        if lsl:
            from emgfb.lsl_out import LslPublisher

            pub = stack.enter_context(LslPublisher.for_source(src, lsl))
        t0, cpu0 = time.monotonic(), time.process_time()
        frames = 0
        while (elapsed := time.monotonic() - t0) < seconds and not src.finished:
            chunk = src.read(min(0.1, max(seconds - elapsed, 0.001)))
            frames += len(chunk) if chunk is not None else 0
            if pub is not None and chunk is not None:
                pub.push_chunk(chunk)
        elapsed, cpu = time.monotonic() - t0, time.process_time() - cpu0
    stats, info = src.stats.as_dict(), src.info
    return {
        "source": url,
        **stats,
        "frames_read": frames,
        "channels": info.n_channels,
        "fs_nominal": info.fs,
        "fs_measured": (stats["frames"] + stats["lost_ticks"]) / elapsed,
        "seconds": elapsed,
        "cpu_percent": 100 * cpu / elapsed,  # this process, all threads, while streaming
        "status": src.status.state,
        "board": info.as_dict(),
    }


def _run(args: argparse.Namespace) -> int:
    s = stream_summary(args.source, args.seconds, lsl=args.lsl)
    if args.json:
        print(json.dumps(s))
        return 0
    print(f"{s['board']['line']}  ({s['source']})")
    print(
        f"{s['frames']} frames in {s['seconds']:.2f} s: {s['channels']} ch, "
        f"fs {s['fs_measured']:.1f} Hz measured / {s['fs_nominal']:g} Hz nominal, "
        f"CPU {s['cpu_percent']:.1f} % of one core"
    )
    print(
        f"lost ticks {s['lost_ticks']}, CRC errors {s['crc_errors']}, bytes skipped "
        f"{s['bytes_skipped']}, overrun flags {s['overrun_flags']}, reconnects {s['reconnects']}"
    )
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``emgfb stream``."""
    p = subparsers.add_parser("stream", help="read a source and report integrity counters")
    p.add_argument("--source", default="sim://", help="source URL (default: sim://)")
    p.add_argument("--seconds", type=float, default=5.0, help="how long to read (default 5)")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object")
    from emgfb.cli.record import add_lsl_args

    add_lsl_args(p, markers=False)
    p.set_defaults(func=_run)
