"""``emgfb export``: write a session as CSV, EDF+/BDF+ or a BIDS EMG dataset for other tools.

Thin wrapper over :mod:`emgfb.recording.export` (CSV and EDF+/BDF+; its module docstring
documents the layouts) and :mod:`emgfb.recording.bids` (``--format bids -o DIR``).
"""

from __future__ import annotations

import argparse

from emgfb.errors import RecordingError
from emgfb.recording.export import EXPORT_FORMATS, EXPORT_WHAT, export_recording


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``export`` subcommand."""
    p = subparsers.add_parser(
        "export",
        help="export a session to CSV, EDF+/BDF+ or a BIDS EMG dataset",
        description="Export raw counts, µV or envelopes of a session. CSV: '#' metadata "
        "lines (fs, unit, per-channel scale), then the header time_s,tick,<channels>,marker; "
        "lost samples show as tick steps > 1 (never filled); the marker column holds "
        "'kind:label' entries of markers at that sample, joined by ' | '. EDF+/BDF+: "
        "channels labelled 'EMG <label>', the front-end band in the prefilter field, "
        "markers as annotations, gaps (written as 0 µV) and end padding annotated "
        "BAD_ACQ_SKIP with their duration, the start time to the microsecond. BIDS: one "
        "run of a BIDS 1.11 EMG dataset in the folder -o DIR (subject = the pseudonymous "
        "code, task = the exercise protocol, anonymised, dates reduced). The session is "
        "read block by block: memory does not grow with its length.",
    )
    p.add_argument("session", metavar="FILE.h5", help="emgfb session to export")
    p.add_argument("--format", required=True, choices=(*EXPORT_FORMATS, "bids"),
                   help="csv, edf (EDF+, 16 bit), bdf (BDF+, 24 bit) or bids (a dataset "
                   "folder)")
    p.add_argument("--what", default=None, choices=EXPORT_WHAT,
                   help="raw counts, uv (default) or envelope (emgfb.dsp pipeline); BIDS "
                   "exports are always uv")
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="file to write (a dataset folder for --format bids)")
    p.add_argument("--force", action="store_true", help="replace OUT if it exists (not "
                   "for bids: existing dataset files are never replaced)")
    p.add_argument("--dsp", default=None, metavar="TOML",
                   help="DSP settings for --what envelope (default: the bundled default)")
    p.add_argument("--anonymise", action="store_true",
                   help="leave the subject code out and reduce dates (EDF/BDF)")
    p.add_argument("--reduce-dates", action=argparse.BooleanOptionalAction, default=None,
                   help="EDF/BDF start date set to 1 January of its year, time of day kept "
                   "(default: on with --anonymise and for bids, else off)")
    bids = p.add_argument_group("BIDS")
    bids.add_argument("--bids-format", default="edf", choices=("edf", "bdf"),
                      help="data file format inside the dataset (default edf)")
    bids.add_argument("--bids-session", default=None, metavar="LABEL",
                      help="session label (default: the next free ses-NN of the subject)")
    bids.add_argument("--task", default=None, metavar="LABEL",
                      help="task label (default: the exercise protocol's name)")
    bids.add_argument("--run", type=int, default=None, metavar="N",
                      help="run number (default: the next free run of the task)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Export ``args.session``; return the exit code."""
    if args.format == "bids":
        return _bids(args)
    res = export_recording(args.session, args.output, args.format, args.what or "uv",
                           force=args.force, dsp_config=args.dsp, anonymise=args.anonymise,
                           reduce_dates=args.reduce_dates)
    print(f"wrote {res.path} ({res.fmt}, {res.what}): {res.n_samples} samples x "
          f"{res.n_channels} channels, {res.n_markers} markers, {res.n_gaps} gaps")
    for note in res.notes:
        print(f"  - {note}")
    return 0


def _bids(args: argparse.Namespace) -> int:
    from emgfb.recording.bids import export_bids

    if args.what not in (None, "uv"):
        raise RecordingError(f"--what {args.what}: a BIDS dataset holds uV; leave --what out")
    if args.run is not None and args.run < 1:
        raise RecordingError(f"--run {args.run}: expected a run number >= 1")
    res = export_bids(args.session, args.output, data_format=args.bids_format,
                      session=args.bids_session, task=args.task, run=args.run)
    print(f"wrote {res.data_file} and {len(res.files) - 1} more files in {res.root}")
    for note in res.notes:
        print(f"  - {note}")
    return 0
