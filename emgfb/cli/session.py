"""``emgfb session``: run a guided exercise session and record it, in the live window
(feedback view driven by the protocol) or ``--headless``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from emgfb.limits import SEED

GUI_SOURCE = "sim://?speed=1"
HEADLESS_SOURCE = "sim://?speed=0"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``session`` subcommand."""
    p = subparsers.add_parser(
        "session", help="run a guided exercise protocol in the live window and record it")
    p.add_argument("--protocol", required=True, metavar="FILE",
                   help="protocol name (demo, smile, brow_lift, eye_closure, pucker) or TOML")
    p.add_argument("--source", default=None, metavar="URL",
                   help=f"board URL (default: the simulated board with the autopilot "
                        f"patient: {GUI_SOURCE} in the window, {HEADLESS_SOURCE} (unpaced) "
                        f"with --headless)")
    p.add_argument("-o", "--output", required=True, type=Path, metavar="FILE.h5")
    p.add_argument("--montage", help="montage name or TOML (default: the protocol's)")
    p.add_argument("--subject", default="", help="pseudonymous code such as P007, never a name")
    p.add_argument("--notes", default="", help="free-text session notes")
    p.add_argument("--dsp", help="DSP settings TOML (default: bundled)")
    p.add_argument("--frontend", default="bioamp", help="front-end name or TOML")
    p.add_argument("--seed", type=SEED.arg, default=1, help="seed of the autopilot patient")
    p.add_argument("--no-autopilot", action="store_true",
                   help="do not steer a simulated board (a real patient follows the cues)")
    p.add_argument("--headless", action="store_true",
                   help="run without the GUI (tests, batch use)")
    p.add_argument("--override-check", action="store_true",
                   help="let the signal check pass although a channel is not good (stored "
                        "as a marker; reps using that channel stay invalid)")
    from emgfb.cli.live import add_screenshot_args

    add_screenshot_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Validate everything, run the session, print per-exercise scores."""
    from emgfb.exercises.headless import prepare, run_session, summary_lines
    from emgfb.outputs import check_output

    prepare(args.protocol, args.montage)  # bad protocol/montage: refuse before anything else
    check_output(args.output, force=None, what="recording")
    if not args.headless:
        return run_window(args)

    def progress(line: str) -> None:
        print(f"emgfb session: {line}", file=sys.stderr, flush=True)

    result = run_session(
        args.protocol, args.output, args.source or HEADLESS_SOURCE, montage=args.montage,
        subject=args.subject, notes=args.notes, dsp=args.dsp, frontend=args.frontend,
        autopilot=not args.no_autopilot, seed=args.seed, progress=progress,
        override_check=args.override_check,
    )
    state = "finished" if result.finished else (
        "interrupted" if result.interrupted else "ended early")
    print(f"emgfb session: {result.protocol.name} {state} after {result.elapsed_s:.1f} s: "
          f"{result.samples} samples, {result.lost_ticks} lost ticks, "
          f"{len(result.scores)} reps scored -> {result.path}",
          file=sys.stderr)
    for line in summary_lines(result.scores):
        print(line)
    if result.recording_error:
        print(f"emgfb session: error: {result.recording_error}", file=sys.stderr)
        return 1
    if result.interrupted:
        return 128 + (result.signum or 2)  # 130 Ctrl-C, 143 SIGTERM; the file is complete
    if result.source_error:
        print(f"emgfb session: error: {result.source_error}", file=sys.stderr)
        return 1
    return 0


def run_window(args: argparse.Namespace) -> int:
    """The live window on the feedback view, the protocol driving it, recording to -o."""
    from emgfb.acquisition.source import parse_source_url
    from emgfb.cli.live import check_display, check_screenshot, parse_size
    from emgfb.exercises.headless import prepare, session_source_url
    from emgfb.live import LiveSession
    from emgfb.recording.schema import check_subject
    from emgfb.recording.writer import check_new_path

    proto, mont, montage_arg = prepare(args.protocol, args.montage)
    check_subject(args.subject)
    check_new_path(args.output)
    size = parse_size(args.size)
    check_screenshot(args.screenshot)
    check_display()
    url = session_source_url(args.source or GUI_SOURCE, mont, montage_arg)
    autopilot = not args.no_autopilot and parse_source_url(url)[0] == "sim"
    session = LiveSession(url, montage=mont, dsp_config=args.dsp, record_path=args.output,
                          subject=args.subject, frontend=args.frontend)
    session.record_meta = {"protocol": proto.name, "session": "guided",
                           "autopilot": {"seed": args.seed} if autopilot else None}
    if args.notes:
        session.record_meta["session_notes"] = args.notes
    session.start()
    try:  # a signal before the window runs still finishes the recording
        return _guided_window(session, proto, args, autopilot, size)
    finally:
        session.stop()


def _guided_window(session, proto, args: argparse.Namespace, autopilot: bool,  # noqa: ANN001
                   size: tuple[int, int]) -> int:
    from emgfb.exercises.guided import GuidedDriver
    from emgfb.exercises.headless import summary_lines
    from emgfb.gui.app import run_window as run_gui

    drivers: list[GuidedDriver] = []

    def attach(win) -> None:
        from emgfb.gui.session_panel import attach as attach_panel

        driver = GuidedDriver(session, proto, autopilot=autopilot, seed=args.seed)
        if args.override_check:
            driver.override_check()
        drivers.append(driver)
        attach_panel(win, driver)

    code = run_gui(session, view=args.view or "feedback", screenshot=args.screenshot,
                   after=args.after, record_dir=args.output.parent, fps=args.fps, size=size,
                   on_window=attach)
    if drivers:
        d = drivers[0]
        state = "finished" if d.runner.finished else (
            f"stopped: {d.error}" if d.error else "closed early")
        print(f"emgfb session: {proto.name} {state} after {d.runner.elapsed_s:.1f} s: "
              f"{len(d.runner.scores)} reps scored -> {args.output}", file=sys.stderr)
        for line in summary_lines(d.runner.scores):
            print(line)
    return code
