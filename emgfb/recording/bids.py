"""Export of an emgfb session as a BIDS 1.11 EMG dataset, written by emgfb itself.

This module owns the BIDS layout of one exported session (``emgfb export FILE.h5 --format
bids -o DIR``)::

    DIR/dataset_description.json, README, participants.tsv
    DIR/sub-<subject>/ses-<session>/sub-..._ses-..._scans.tsv
    DIR/sub-<subject>/ses-<session>/emg/sub-..._ses-..._task-<task>_run-<run>_emg.edf
                                        ..._emg.json, ..._channels.tsv, ..._events.tsv/.json

* subject = the session's pseudonymous code (letters and digits only), session = the next
  free ``ses-NN`` of that subject (or ``session=``), task = the exercise protocol's name
  (``free`` for a session without one), run = the next free run of that task;
* the data are the µV export of :mod:`emgfb.recording.export` (EDF+ or BDF+): labels
  ``EMG <label>``, gaps and end padding annotated ``BAD_ACQ_SKIP``, anonymised (patient
  ``X``) with the date reduced to 1 January of its year (time of day kept);
* ``_emg.json`` holds what BIDS requires (TaskName, EMGPlacementScheme with its
  description, EMGReference, SamplingFrequency, PowerLineFrequency, RecordingType,
  SoftwareFilters) and what emgfb knows (HardwareFilters from the front-end band,
  EMGChannelCount, RecordingDuration, Manufacturer = the board, never a serial number);
* ``_channels.tsv``: name (as in the data file: ``EMG <label>``), type ``EMG``, units,
  target_muscle (side and muscle of the montage), placement_scheme, signal_electrode and
  reference (each channel is a differential pair ``<label>+``/``<label>-``),
  interelectrode_distance (``n/a``: not recorded), low_cutoff/high_cutoff of the front-end;
* ``_events.tsv``: every marker (trial_type = its kind, value = its label) and every gap
  (``BAD_ACQ_SKIP`` with its duration), onsets from the first sample;
* ``scans.tsv`` lists the data file with its (reduced) acquisition time.
* time: when the recording holds a measured board rate that differs from nominal
  (:func:`emgfb.recording.export.time_base`), the EDF's records last ``round(fs)`` samples
  of true time, and ``SamplingFrequency`` (BIDS: the sampling frequency of the data in
  the file) is that true rate, as are ``RecordingDuration`` and every onset; the nominal
  rate and the measured deviation are stated in ``SamplingFrequencyNominal`` and
  ``ClockErrorPpm`` (extra sidecar keys, which BIDS allows). Otherwise all is nominal.

A dataset that exists already gets the new run added (participants.tsv and scans.tsv
merged); no existing file is replaced. Everything is written to a hidden staging folder
in ``DIR`` and moved into place at the end; a failure removes what this export created.
Imports ``errors``, ``outputs``, ``recording.export`` and the standard library.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emgfb.errors import RecordingError
from emgfb.outputs import is_hdf5
from emgfb.recording.export import edf_timing, time_base

BIDS_VERSION = "1.11.0"
_LABEL = re.compile(r"[^A-Za-z0-9]")


@dataclass
class BidsResult:
    """What :func:`export_bids` wrote: the dataset root, the data file and every new file."""

    root: Path
    data_file: Path
    files: list[Path]
    notes: list[str]


def bids_label(text: str) -> str:
    """``text`` as a BIDS label (letters and digits only)."""
    return _LABEL.sub("", str(text))


def export_bids(src: str | Path, root: str | Path, *, data_format: str = "edf",
                session: str | None = None, task: str | None = None,
                run: int | None = None) -> BidsResult:
    """Export the session ``src`` as one run of a BIDS EMG dataset under ``root``.

    Parameters
    ----------
    src
        An emgfb ``.h5`` session.
    root
        The dataset folder (created if missing; its parent must exist).
    data_format
        ``"edf"`` (16 bit) or ``"bdf"`` (24 bit).
    session, task, run
        Override the session label, the task label and the run number.

    Raises
    ------
    RecordingError
        Bad input, a subject code that is not a BIDS label, a run that exists already, or
        an output folder that cannot be written (one line each).
    """
    from emgfb.recording import open_recording

    root = Path(root)
    src = Path(src)
    if data_format not in ("edf", "bdf"):
        raise RecordingError(f"--bids-format {data_format!r}: expected edf or bdf")
    if is_hdf5(root):
        raise RecordingError(f"{root}: is an HDF5 file; emgfb never writes over a recording")
    if root.exists() and not root.is_dir():
        raise RecordingError(f"{root}: is not a folder; BIDS export writes a dataset folder")
    if not root.parent.is_dir():
        raise RecordingError(f"{root}: folder {root.parent} does not exist")
    with open_recording(src) as rec:
        layout = _Layout.of(rec, root, data_format, session, task, run)
        try:
            return _write(rec, layout)
        except OSError as exc:
            where = exc.filename or root
            raise RecordingError(f"{where}: cannot write the BIDS dataset "
                                 f"({exc.strerror or exc}); nothing was left behind") from None


@dataclass
class _Layout:
    root: Path
    subject: str
    session: str
    task: str
    run: int
    fmt: str
    task_name: str

    @classmethod
    def of(cls, rec: Any, root: Path, fmt: str, session: str | None, task: str | None,
           run: int | None) -> _Layout:
        code = str(rec.meta.get("subject") or "")
        subject = bids_label(code)
        if not subject:
            raise RecordingError(f"{rec.path}: subject = {code!r}: BIDS needs a pseudonymous "
                                 "subject code of letters and digits (record with --subject)")
        protocol = rec.document("protocol") or {}
        task_name = str(task or protocol.get("name") or "free")
        task_label = bids_label(task_name)
        if not task_label:
            raise RecordingError(f"task = {task_name!r}: expected letters and digits")
        sub_dir = root / f"sub-{subject}"
        if session is None:
            used = {p.name for p in sub_dir.glob("ses-*")} if sub_dir.is_dir() else set()
            k = 1
            while f"ses-{k:02d}" in used:
                k += 1
            session = f"{k:02d}"
        ses = bids_label(session)
        if not ses:
            raise RecordingError(f"--session {session!r}: expected letters and digits")
        emg = sub_dir / f"ses-{ses}" / "emg"
        stem = f"sub-{subject}_ses-{ses}_task-{task_label}"
        if run is None:
            run = 1
            while list(emg.glob(f"{stem}_run-{run}_*")):
                run += 1
        elif list(emg.glob(f"{stem}_run-{run}_*")):
            raise RecordingError(f"{emg}: run {run} of task {task_label} exists already; "
                                 "choose another --run (existing files are never replaced)")
        return cls(root, subject, ses, task_label, int(run), fmt, task_name)

    @property
    def ses_dir(self) -> Path:
        return Path(f"sub-{self.subject}") / f"ses-{self.session}"

    @property
    def stem(self) -> str:
        return (f"sub-{self.subject}_ses-{self.session}_task-{self.task}_run-{self.run}")

    def rel(self, suffix: str) -> Path:
        return self.ses_dir / "emg" / f"{self.stem}_{suffix}"


def _write(rec: Any, lay: _Layout) -> BidsResult:
    from emgfb.recording.export import SessionValues, write_edf

    root = lay.root
    created_root = not root.exists()
    root.mkdir(exist_ok=True)
    stage = root / f".emgfb-bids.{os.getpid()}"
    moved: list[Path] = []
    made_dirs: list[Path] = []
    try:
        stage.mkdir()
        files: dict[Path, bytes | None] = {}
        data_rel = lay.rel(f"emg.{lay.fmt}")
        (stage / data_rel).parent.mkdir(parents=True)
        source = SessionValues(rec, "uv")
        notes = write_edf(source, stage / data_rel, kind=lay.fmt, anonymise=True,
                          reduce_dates=True)
        files[data_rel] = None  # already in the stage
        files[lay.rel("emg.json")] = _json(_sidecar(rec, lay))
        files[lay.rel("channels.tsv")] = _tsv(*_channels(rec))
        events_cols, events_rows = _events(rec)
        files[lay.rel("events.tsv")] = _tsv(events_cols, events_rows)
        files[lay.rel("events.json")] = _json(_EVENTS_JSON)
        scans = lay.ses_dir / f"sub-{lay.subject}_ses-{lay.session}_scans.tsv"
        files[scans] = _merge_tsv(root / scans, ["filename", "acq_time"],
                                  [[data_rel.relative_to(lay.ses_dir).as_posix(),
                                    _acq_time(rec)]], key="filename")
        files[Path("participants.tsv")] = _merge_tsv(
            root / "participants.tsv", ["participant_id"], [[f"sub-{lay.subject}"]],
            key="participant_id")
        if not (root / "participants.json").exists():
            files[Path("participants.json")] = _json(
                {"participant_id": {"Description": "Pseudonymous subject code of the emgfb "
                                                   "session"}})
        if not (root / "dataset_description.json").exists():
            files[Path("dataset_description.json")] = _json(_description())
        if not (root / "README").exists():
            files[Path("README")] = _README.encode()
        for rel, content in files.items():
            if content is not None:
                (stage / rel).parent.mkdir(parents=True, exist_ok=True)
                (stage / rel).write_bytes(content)
        for rel in files:
            dest = root / rel
            for parent in reversed(dest.relative_to(root).parents[:-1]):
                if not (root / parent).exists():
                    (root / parent).mkdir()
                    made_dirs.append(root / parent)
            merged = rel.name in ("participants.tsv",) or rel.name.endswith("_scans.tsv")
            if dest.exists() and not merged:
                raise RecordingError(f"{dest}: exists already; existing files are never "
                                     "replaced")
            os.replace(stage / rel, dest) if merged else os.link(stage / rel, dest)
            moved.append(dest)
        return BidsResult(root, root / data_rel, moved, notes)
    except BaseException:
        for path in moved:
            if not (path.name == "participants.tsv" or path.name.endswith("_scans.tsv")):
                path.unlink(missing_ok=True)
        for d in reversed(made_dirs):
            shutil.rmtree(d, ignore_errors=True)
        if created_root:
            shutil.rmtree(root, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _sidecar(rec: Any, lay: _Layout) -> dict[str, Any]:
    fe = rec.meta.get("frontend") or {}
    band = fe.get("band_hz") if isinstance(fe, dict) else None
    dsp = rec.meta.get("dsp_config") or {}
    mains = (dsp.get("notch") or {}).get("mains_hz") if isinstance(dsp, dict) else None
    info = rec.info
    doc: dict[str, Any] = {
        "TaskName": lay.task_name,
        "TaskDescription": "Facial neuromuscular retraining exercises guided by surface-EMG "
                           "biofeedback (emgfb)" if lay.task_name != "free" else
                           "Surface-EMG recording with emgfb without an exercise protocol",
        "EMGPlacementScheme": "Other",
        "EMGPlacementSchemeDescription": (
            "Bipolar surface electrode pairs placed over the target muscles named in "
            f"channels.tsv following emgfb's montage '{rec.montage.name}' (anatomical "
            "landmarks and palpation during a voluntary contraction)"),
        "EMGReference": "ChannelSpecific",
        "SamplingFrequency": _edf_fs(rec),
        "PowerLineFrequency": float(mains) if mains else "n/a",
        "RecordingType": "continuous",
        "SoftwareFilters": "n/a",
        "HardwareFilters": ({"FrontEndBandpass": {"HighPass_Hz": float(band[0]),
                                                  "LowPass_Hz": float(band[1])}}
                            if band and len(band) == 2 else "n/a"),
        "EMGChannelCount": int(rec.n_channels),
        "RecordingDuration": round(float(rec.duration_s) * rec.fs / _time_fs(rec), 6),
        "Manufacturer": "emgfb (open hardware)",
    }
    tb = time_base(rec)
    if tb.measured and tb.ppm is not None:  # the data file's rate is the measured one
        doc["SamplingFrequencyNominal"] = tb.nominal_fs
        doc["ClockErrorPpm"] = round(float(tb.ppm), 1)
    if info is not None:
        doc["ManufacturersModelName"] = str(info.board)
        doc["SoftwareVersions"] = f"emgfb firmware {info.firmware}"
    if isinstance(fe, dict) and fe.get("gain"):
        doc["Gain"] = float(fe["gain"])
    return doc


def _channels(rec: Any) -> tuple[list[str], list[list[Any]]]:
    fe = rec.meta.get("frontend") or {}
    band = fe.get("band_hz") if isinstance(fe, dict) else None
    cols = ["name", "type", "units", "description", "target_muscle", "placement_scheme",
            "signal_electrode", "reference", "interelectrode_distance", "low_cutoff",
            "high_cutoff", "status"]
    rows = []
    for c in rec.montage.channels:
        muscle = c.muscle.replace("_", " ")
        target = f"{c.side} {muscle}" if c.muscle != "other" else "n/a"
        rows.append([f"EMG {c.label}", "EMG", "uV", f"surface EMG, {target}", target, "other",
                     f"{c.label}+", f"{c.label}-", "n/a",
                     band[0] if band else "n/a", band[1] if band else "n/a", "good"])
    return cols, rows


def _edf_fs(rec: Any) -> float:
    """The rate of the exported EDF (true when measured, see the module docstring)."""
    return float(edf_timing(time_base(rec))[2])


def _time_fs(rec: Any) -> float:
    """The rate that turns ticks into seconds on the EDF's time axis."""
    tb = time_base(rec)
    return _edf_fs(rec) if tb.measured else float(rec.fs)


def _events(rec: Any) -> tuple[list[str], list[list[Any]]]:
    fs = _time_fs(rec)
    n = rec.n_samples
    t0 = int(rec.read_ticks(0, 1)[0]) if n else 0
    rows: list[list[Any]] = []
    for m in sorted(rec.markers, key=lambda m: m.tick):
        rows.append([max(0.0, (m.tick - t0) / fs), "n/a", m.kind, m.label])
    for g in rec.gaps:
        start, lost = int(g["start_sample"]), int(g["lost_ticks"])
        if start == 0 or start >= n:
            continue
        after = int(rec.read_ticks(start, start + 1)[0])
        rows.append([(after - lost - t0) / fs, lost / fs, "BAD_ACQ_SKIP", "n/a"])
    rows.sort(key=lambda r: r[0])
    return ["onset", "duration", "trial_type", "value"], [
        [f"{r[0]:.6f}", r[1] if r[1] == "n/a" else f"{r[1]:.6f}", r[2], r[3]] for r in rows]


_EVENTS_JSON = {
    "onset": {"Description": "Time from the first sample of the data file", "Units": "s"},
    "duration": {"Description": "Duration (n/a for instantaneous markers)", "Units": "s"},
    "trial_type": {"Description": "Marker kind written by emgfb (rep, phase, note, ...), or "
                                  "BAD_ACQ_SKIP for samples lost in acquisition"},
    "value": {"Description": "Marker label as emgfb recorded it"},
}

_README = """This dataset was exported by emgfb (surface-EMG biofeedback for facial
neuromuscular retraining) from its HDF5 session files.

Subjects are identified by pseudonymous codes only. Start dates are reduced to the first
of January of their year (the time of day is kept). Samples lost during acquisition are
written as 0 uV and annotated BAD_ACQ_SKIP, both in the EDF+/BDF+ files and in
events.tsv.
"""


def _description() -> dict[str, Any]:
    from emgfb import __version__

    return {"Name": "emgfb facial sEMG sessions", "BIDSVersion": BIDS_VERSION,
            "DatasetType": "raw", "License": "n/a",
            "GeneratedBy": [{"Name": "emgfb", "Version": __version__,
                             "Description": "emgfb export --format bids"}]}


def _acq_time(rec: Any) -> str:
    from emgfb.recording.export import start_datetime

    start = start_datetime(rec.meta.get("start_time_utc"))
    if start is None:
        return "n/a"
    return start.replace(month=1, day=1).isoformat(timespec="microseconds")


def _json(doc: dict[str, Any]) -> bytes:
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def _cell(v: Any) -> str:
    text = "n/a" if v is None else f"{v:g}" if isinstance(v, float) else str(v)
    return text.replace("\t", " ").replace("\n", " ") or "n/a"


def _tsv(cols: list[str], rows: list[list[Any]]) -> bytes:
    lines = ["\t".join(cols)] + ["\t".join(_cell(v) for v in r) for r in rows]
    return ("\n".join(lines) + "\n").encode("utf-8")


def _merge_tsv(path: Path, cols: list[str], rows: list[list[Any]], key: str) -> bytes:
    """An existing TSV with ``rows`` added (rows whose ``key`` is present are kept as is)."""
    if not path.exists():
        return _tsv(cols, rows)
    old = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8")), delimiter="\t"))
    head, body = old[0], [r for r in old[1:] if r]
    k = head.index(key) if key in head else 0
    have = {r[k] for r in body}
    for r in rows:
        if str(r[cols.index(key)]) not in have:
            body.append([_cell(r[cols.index(c)]) if c in cols else "n/a" for c in head])
    return _tsv(head, body)
