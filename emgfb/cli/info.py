"""``emgfb info``: a readable summary of a session file, or one JSON object."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from emgfb.recording.reader import open_recording


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``info`` subcommand."""
    p = subparsers.add_parser("info", help="summarise an emgfb .h5 session file")
    p.add_argument("file", type=Path, metavar="FILE.h5")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the summary of ``args.file``."""
    from emgfb.dsp.quality import stored_states

    with open_recording(args.file) as rec:
        s = rec.summary()
        end = rec.first_tick + rec.n_samples + rec.lost_ticks
        s["channel_states"] = stored_states(rec.markers, rec.first_tick, end, rec.labels)
    if args.json:
        print(json.dumps(s))
        return 0
    chans = ", ".join(f"{lab} ({m} {sd})" for lab, m, sd in zip(
        s["channels"], s["muscles"], s["sides"], strict=True))
    lines = [
        f"{s['path']}: {s['format']} v{s['format_version']} (emgfb {s['emgfb_version']})"
        + ("" if s["complete"] else "  [INCOMPLETE: the recorder did not close it]"),
        f"  subject {s['subject'] or '-'}, started {s['start_time_utc'] or '-'}",
        f"  {s['n_channels']} channels @ {s['fs']:g} Hz, affected side {s['affected_side']}",
        f"  channels: {chans}",
        f"  {s['n_samples']} samples, {s['duration_s']:.3f} s, {s['lost_ticks']} lost ticks "
        f"in {s['n_gaps']} gaps, {s['n_markers']} markers",
        f"  board {s['board'] or '-'}, firmware {s['firmware'] or '-'}, counts {s['count_dtype']}",
    ]
    lines.append(f"  clock: {clock_line(s['clock'])}")
    lines.append(f"  channel states: {states_line(s['channel_states'], s['channels'])}")
    if s["notes"]:
        lines.append(f"  notes: {s['notes']}")
    print("\n".join(lines))
    return 0


def states_line(states: dict, labels: list[str]) -> str:
    """One line about the channel states the recording stores (``StateLog`` markers)."""
    from emgfb.dsp.quality import NOT_ASSESSED, stored_state_text

    if not states:
        return f"not stored ({NOT_ASSESSED})"
    parts = [f"{label} {stored_state_text(states.get(label))}" for label in labels
             if states.get(label, {}).get("worst") != "good"]
    return "; ".join(parts) if parts else "every channel good throughout"


def clock_line(doc: dict | None) -> str:
    """One line about the board's measured sample rate (the ``clock`` document)."""
    if not doc:
        return "not measured (no clock document: an older file, an import or a short run)"
    if not doc.get("estimated"):
        return f"not estimated ({doc.get('reason', 'no reason stored')})"
    return (f"board measured at {doc['fs_hz']:.4f} Hz ({doc['ppm']:+.0f} ± "
            f"{doc['uncertainty_ppm']:.0f} ppm from nominal, over {doc['span_s']:.0f} s "
            f"of host receive times)")
