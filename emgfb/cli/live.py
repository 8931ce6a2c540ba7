"""``emgfb live``: the live GUI on a board or the built-in simulated board."""

from __future__ import annotations

import argparse

from emgfb.limits import FPS, WAIT_SECONDS, WINDOW_PX

DEFAULT_SOURCE = "sim://?speed=1"


def add_screenshot_args(p: argparse.ArgumentParser) -> None:
    """``--screenshot PNG --after SECONDS`` (shared with ``emgfb replay``)."""
    p.add_argument("--screenshot", metavar="PNG",
                   help="save a PNG of the main window after --after seconds, then exit")
    p.add_argument("--after", type=WAIT_SECONDS.arg, default=3.0, metavar="SECONDS",
                   help="delay before the screenshot (default 3)")
    p.add_argument("--view", choices=("setup", "feedback", "replay"), default=None,
                   help="view shown first")
    p.add_argument("--fps", type=FPS.arg, default=60.0, help="display refresh rate (Hz)")
    p.add_argument("--size", default="1400x900", metavar="WxH", help="window size")


def parse_size(text: str) -> tuple[int, int]:
    """``"1400x900"`` -> (1400, 900); each side within :data:`emgfb.limits.WINDOW_PX`."""
    from emgfb.errors import ConfigError

    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ConfigError(f"--size = {text!r}: expected WIDTHxHEIGHT, e.g. 1400x900") from None
    if not (WINDOW_PX.ok(w) and WINDOW_PX.ok(h)):
        raise ConfigError(f"--size = {text!r}: expected WIDTHxHEIGHT, each side "
                          f"{WINDOW_PX.expected}")
    return w, h


def check_screenshot(path: str | None) -> None:
    """Refuse a screenshot path that cannot be written, before the window opens (an existing
    PNG is replaced; never an input or a session: :mod:`emgfb.outputs`)."""
    if path is not None:
        from emgfb.outputs import check_output

        check_output(path, force=True, what="screenshot")


def check_display() -> None:
    """Fail with one line, instead of a Qt abort, when there is no display to open."""
    import os
    import sys

    from emgfb.errors import ConfigError

    if os.environ.get("QT_QPA_PLATFORM") or not sys.platform.startswith("linux"):
        return
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise ConfigError(
            "no display: run it in a desktop session, under xvfb-run, or with "
            "QT_QPA_PLATFORM=offscreen and --screenshot PNG")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``live`` subcommand."""
    p = subparsers.add_parser(
        "live", help="live biofeedback GUI (set-up, feedback, replay views)",
        description="Open the live GUI. The default source is the built-in simulated "
                    "board, so it runs without hardware.")
    p.add_argument("--source", default=DEFAULT_SOURCE,
                   help=f"source URL or serial port (default {DEFAULT_SOURCE})")
    p.add_argument("--montage", help="montage name or TOML file (default: by channel count)")
    p.add_argument("--dsp", help="DSP settings name or TOML file (default: bundled)")
    p.add_argument("--record", metavar="FILE.h5", help="record from the start to this file")
    p.add_argument("--record-dir", default=".",
                   help="folder for recordings started with the R key (default: here)")
    p.add_argument("--subject", help="pseudonymous subject code stored in recordings")
    p.add_argument("--frontend", default="bioamp",
                   help="EMG front-end name or TOML: counts->uV scale (see emgfb boards)")
    from emgfb.cli.record import add_lsl_args

    add_lsl_args(p, markers=True)
    add_screenshot_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Start the session, then the GUI (Qt is imported only here)."""
    from emgfb.live import LiveSession

    size = parse_size(args.size)
    check_screenshot(args.screenshot)
    check_display()
    session = LiveSession(args.source, montage=args.montage, dsp_config=args.dsp,
                          record_path=args.record, subject=args.subject,
                          frontend=args.frontend, lsl=args.lsl,
                          markers_from=args.markers_from)
    session.start()
    try:  # a signal before the window runs still finishes the recording
        from emgfb.gui.app import run_window

        return run_window(session, view=args.view or "setup", screenshot=args.screenshot,
                          after=args.after, record_dir=args.record_dir, fps=args.fps,
                          size=size)
    finally:
        session.stop()
