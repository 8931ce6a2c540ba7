"""``emgfb stream``: read a source for a while and report the data-path integrity counters."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from typing import Any

from emgfb.acquisition.source import open_source
from emgfb.limits import RECORD_SECONDS


def stream_summary(url: str, seconds: float, lsl: str | None = None) -> dict[str, Any]:
    """Read ``url`` for ``seconds`` of signal (or until a finite source ends) and summarise.

    The read ends by ``seconds`` of wall time plus :data:`~emgfb.live.pump.GRACE_S`
    whatever the source does; ``"problem"`` then says why it ended short (None if not).
    With ``lsl``, also publish the stream on Lab Streaming Layer under that name.
    """
    from emgfb.live.channels import resolve_channels
    from emgfb.live.pump import SourcePump
    from emgfb.live.sinks import LslSink

    RECORD_SECONDS.check(seconds, "--seconds")
    with open_source(url) as src, contextlib.ExitStack() as stack:
        sinks = []
        if lsl:
            from emgfb.dsp import load_dsp_config

            sink = LslSink(resolve_channels(src), lsl, None, lambda m: None,
                           dsp_config=load_dsp_config(None))
            stack.callback(sink.close)
            sinks.append(sink.push_chunk)
        pump = SourcePump(src, sinks, seconds=seconds)
        cpu0 = time.process_time()
        while not pump.done:
            pump.step(0.1)
        elapsed, cpu = max(pump.elapsed_s, 1e-9), time.process_time() - cpu0
        frames = pump.samples
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
        "problem": pump.problem,
        "board": info.as_dict(),
    }


def _run(args: argparse.Namespace) -> int:
    s = stream_summary(args.source, args.seconds, lsl=args.lsl)
    if args.json:
        print(json.dumps(s))
    else:
        print(f"{s['board']['line']}  ({s['source']})")
        print(
            f"{s['frames']} frames in {s['seconds']:.2f} s: {s['channels']} ch, "
            f"fs {s['fs_measured']:.1f} Hz measured / {s['fs_nominal']:g} Hz nominal, "
            f"CPU {s['cpu_percent']:.1f} % of one core"
        )
        print(
            f"lost ticks {s['lost_ticks']}, CRC errors {s['crc_errors']}, bytes skipped "
            f"{s['bytes_skipped']}, overrun flags {s['overrun_flags']}, "
            f"reconnects {s['reconnects']}"
        )
    if s["problem"]:
        print(f"emgfb stream: error: {s['problem']}", file=sys.stderr)
        return 1
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``emgfb stream``."""
    p = subparsers.add_parser("stream", help="read a source and report integrity counters")
    p.add_argument("--source", default="sim://", help="source URL (default: sim://)")
    p.add_argument("--seconds", type=RECORD_SECONDS.arg, default=5.0,
                   help="how long to read (default 5)")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object")
    from emgfb.cli.record import add_lsl_args

    add_lsl_args(p, markers=False)
    p.set_defaults(func=_run)
