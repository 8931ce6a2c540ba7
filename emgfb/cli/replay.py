"""``emgfb replay FILE.h5``: replay a recording in the GUI (set-up, feedback, replay views)."""

from __future__ import annotations

import argparse
from pathlib import Path
from urllib.parse import quote

from emgfb.cli.live import add_screenshot_args, check_display, check_screenshot, parse_size
from emgfb.limits import POSITION_SECONDS, REPLAY_SPEED


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``replay`` subcommand."""
    p = subparsers.add_parser(
        "replay", help="replay a recording in the GUI",
        description="Replay an emgfb recording through the same views as a live session, "
                    "with play/pause, speed and a timeline with markers.")
    p.add_argument("file", metavar="FILE.h5", help="the recording")
    p.add_argument("--speed", type=REPLAY_SPEED.arg, default=1.0, help="playback speed (default 1)")
    p.add_argument("--start", type=POSITION_SECONDS.arg, default=0.0, metavar="SECONDS",
                   help="begin this many seconds into the recording")
    p.add_argument("--dsp", help="DSP settings name or TOML file (default: bundled)")
    add_screenshot_args(p)
    p.set_defaults(func=run)


def replay_info(path: Path) -> dict:
    """Duration, markers (seconds, label) and a rich-text description of a recording."""
    from emgfb.dsp.quality import MARKER_KIND as STATE_MARKER_KIND
    from emgfb.recording import open_recording

    with open_recording(path) as rec:
        s = rec.summary()
        t0 = rec.first_tick
        # the channel states are kept as markers too; the timeline shows what people marked
        markers = [((m.tick - t0) / rec.fs, m.label) for m in rec.markers
                   if m.kind != STATE_MARKER_KIND]
    rows = [
        ("File", path.name),
        ("Subject", s.get("subject") or "—"),
        ("Started (UTC)", s.get("start_time_utc") or "—"),
        ("Duration", f"{s['duration_s']:.1f} s"),
        ("Rate", f"{s['fs']:g} Hz × {s['n_channels']} channels"),
        ("Board", f"{s.get('board') or '—'} {s.get('firmware') or ''}".strip()),
        ("Lost ticks", f"{s['lost_ticks']} in {s['n_gaps']} gaps"),
        ("Complete", "yes" if s["complete"] else "no (recovered after a crash)"),
    ]
    table = "".join(f"<tr><td style='color:#5F6F80;padding-right:10px'>{k}</td>"
                    f"<td>{v}</td></tr>" for k, v in rows)
    return {"duration": s["duration_s"], "markers": markers,
            "description": f"<b>Recording</b><table>{table}</table>"}


def run(args: argparse.Namespace) -> int:
    """Open the recording as a ``file://`` session, then the GUI (Qt imported here)."""
    from emgfb.errors import ConfigError
    from emgfb.live import LiveSession

    path = Path(args.file).resolve()
    if not path.is_file():
        raise ConfigError(f"{args.file}: no such recording")
    size = parse_size(args.size)
    check_screenshot(args.screenshot)
    check_display()
    info = replay_info(path)
    url = f"file://{quote(str(path))}?speed={args.speed:g}&start={args.start:g}"
    session = LiveSession(url, dsp_config=args.dsp)
    session.start()
    from emgfb.gui.app import run_window

    return run_window(session, view=args.view or "replay", replay=True, replay_info=info,
                      screenshot=args.screenshot, after=args.after, fps=args.fps, size=size)
