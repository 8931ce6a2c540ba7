"""``emgfb session``: run a guided exercise session (headless for now) and record it."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from emgfb.errors import ConfigError

EXIT_INTERRUPTED = 130


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``session`` subcommand."""
    p = subparsers.add_parser(
        "session", help="run a guided exercise protocol and record it (--headless)")
    p.add_argument("--protocol", required=True, metavar="FILE",
                   help="protocol name (demo, smile, brow_lift, eye_closure, pucker) or TOML")
    p.add_argument("--source", default="sim://?speed=0", metavar="URL",
                   help="board URL (default: the simulated board, unpaced, with the "
                        "autopilot patient)")
    p.add_argument("-o", "--output", required=True, type=Path, metavar="FILE.h5")
    p.add_argument("--montage", help="montage name or TOML (default: the protocol's)")
    p.add_argument("--subject", default="", help="pseudonymous code such as P007, never a name")
    p.add_argument("--notes", default="", help="free-text session notes")
    p.add_argument("--dsp", help="DSP settings TOML (default: bundled)")
    p.add_argument("--frontend", default="bioamp", help="front-end name or TOML")
    p.add_argument("--seed", type=int, default=1, help="seed of the autopilot patient")
    p.add_argument("--no-autopilot", action="store_true",
                   help="do not steer a simulated board (a real patient follows the cues)")
    p.add_argument("--headless", action="store_true",
                   help="run without the GUI (required until the GUI runner is wired)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Validate everything, run the session, print per-exercise scores."""
    from emgfb.exercises.headless import prepare, run_session, summary_lines

    prepare(args.protocol, args.montage)  # bad protocol/montage: refuse before anything else
    if not args.headless:
        # TODO(gui): open the feedback view driven by exercises.runner.SessionRunner.
        raise ConfigError("--headless not given: the GUI session runner is not wired yet; "
                          "add --headless to run the session without the GUI")
    signal.signal(signal.SIGTERM, signal.default_int_handler)

    def progress(line: str) -> None:
        print(f"emgfb session: {line}", file=sys.stderr, flush=True)

    result = run_session(
        args.protocol, args.output, args.source, montage=args.montage, subject=args.subject,
        notes=args.notes, dsp=args.dsp, frontend=args.frontend,
        autopilot=not args.no_autopilot, seed=args.seed, progress=progress,
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
    return EXIT_INTERRUPTED if result.interrupted else 0
