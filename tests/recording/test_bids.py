"""BIDS 1.11 EMG export of a guided session with gaps: the official validator reports no
error, mne-bids opens it, and the sidecars say what emgfb knows."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from emgfb.acquisition.board_faults import FaultPlan
from emgfb.acquisition.virtual_board import VirtualBoard
from emgfb.cli import main
from emgfb.recording import open_recording

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def guided(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A guided 'demo' session recorded from the virtual board with seeded frame drops (the
    virtual patient does not follow the cues, so the protocol stops at its first reference
    check: markers, the protocol document and 20 gaps are in the file)."""
    out = tmp_path_factory.mktemp("guided") / "g.h5"
    with VirtualBoard(n_channels=6, fs=1000, speed=0, faults=FaultPlan(drop_frame=0.0005,
                                                                       seed=3)) as board:
        main(["session", "--protocol", "demo", "--source",
              f"serial://{board.port}?reset_wait=0&poll=0", "-o", str(out),
              "--subject", "P042", "--headless"])
    with open_recording(out) as rec:
        assert len(rec.gaps) >= 5 and rec.markers and rec.document("protocol")
    return out


@pytest.fixture(scope="module")
def dataset(guided: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bids") / "ds"
    assert main(["export", str(guided), "--format", "bids", "-o", str(root)]) == 0
    return root


def _tsv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def test_the_bids_validator_reports_no_error(dataset):
    exe = Path(sys.executable).with_name("bids-validator-deno")
    if not exe.exists():
        pytest.skip("bids-validator-deno is not installed (pip install emgfb[test])")
    out = subprocess.run([str(exe), str(dataset), "--json"], capture_output=True, text=True,
                         timeout=120, check=False)
    report = json.loads(out.stdout)
    errors = [i for i in report["issues"]["issues"] if i["severity"] == "error"]
    assert errors == [], errors
    assert report["summary"]["modalities"] == ["emg"]


def test_mne_bids_reads_it_with_emg_channels_events_and_gaps(dataset, guided):
    mne_bids = pytest.importorskip("mne_bids")
    path = mne_bids.BIDSPath(subject="P042", session="01", task="demo", run=1, datatype="emg",
                             root=dataset, suffix="emg", extension=".edf")
    raw = mne_bids.read_raw_bids(path, verbose="error")
    assert set(raw.get_channel_types()) == {"emg"} and raw.info["line_freq"] == 50
    skips = {(round(a["onset"], 3), round(a["duration"], 3)) for a in raw.annotations
             if a["description"] == "BAD_ACQ_SKIP"}
    with open_recording(guided) as rec:
        t0 = rec.tick[0]
        gaps = {(round((rec.tick[g["start_sample"]] - g["lost_ticks"] - t0) / rec.fs, 3),
                 round(g["lost_ticks"] / rec.fs, 3)) for g in rec.gaps}
        assert gaps <= skips
        kept = raw.get_data(reject_by_annotation="omit", units="uV")
        assert kept.shape[1] == rec.n_samples
        np.testing.assert_allclose(kept.T, rec.uv(), atol=1e-3)


def test_sidecars_hold_what_emgfb_knows(dataset, guided):
    emg = dataset / "sub-P042" / "ses-01" / "emg"
    stem = "sub-P042_ses-01_task-demo_run-1"
    side = json.loads((emg / f"{stem}_emg.json").read_text())
    for key in ("TaskName", "EMGPlacementScheme", "EMGReference", "SamplingFrequency",
                "PowerLineFrequency", "SoftwareFilters", "RecordingType"):
        assert key in side, key
    assert side["TaskName"] == "demo" and side["SamplingFrequency"] == 1000.0
    assert side["HardwareFilters"] == {"FrontEndBandpass": {"HighPass_Hz": 72.0,
                                                            "LowPass_Hz": 720.0}}
    assert "Biosemi" not in json.dumps(side)
    chans = _tsv(emg / f"{stem}_channels.tsv")
    assert [c["type"] for c in chans] == ["EMG"] * 6
    assert chans[0]["target_muscle"] == "left frontalis"
    assert chans[0]["signal_electrode"] == "FRO-L+" and chans[0]["reference"] == "FRO-L-"
    events = _tsv(emg / f"{stem}_events.tsv")
    with open_recording(guided) as rec:
        assert sum(e["trial_type"] == "BAD_ACQ_SKIP" for e in events) == len(rec.gaps)
        assert sum(e["trial_type"] != "BAD_ACQ_SKIP" for e in events) == len(rec.markers)
    scans = _tsv(dataset / "sub-P042" / "ses-01" / "sub-P042_ses-01_scans.tsv")
    assert scans[0]["filename"] == f"emg/{stem}_emg.edf"
    assert scans[0]["acq_time"][5:10] == "01-01"  # date reduced
    assert _tsv(dataset / "participants.tsv") == [{"participant_id": "sub-P042"}]


def test_a_second_export_adds_a_run_and_never_replaces(dataset, guided, tmp_path):
    before = {p: p.read_bytes() for p in dataset.rglob("*") if p.is_file()}
    assert main(["export", str(guided), "--format", "bids", "-o", str(dataset)]) == 0
    assert main(["export", str(guided), "--format", "bids", "-o", str(dataset),
                 "--bids-session", "01", "--run", "1"]) == 2
    after = {p for p in dataset.rglob("*") if p.is_file()}
    assert all(p.read_bytes() == b for p, b in before.items()
               if not p.name.endswith(("participants.tsv", "scans.tsv")))
    assert (dataset / "sub-P042" / "ses-02" / "emg").is_dir()
    assert not [p for p in after if ".emgfb-bids" in str(p)]


def test_bad_bids_exports_are_one_line_and_leave_nothing(guided, tmp_path, capsys):
    from emgfb.montage import default_montage
    from emgfb.recording import write_arrays

    anon = write_arrays(tmp_path / "anon.h5", np.zeros((100, 2), np.uint16), 1000.0,
                        default_montage(2), 1.0, 0)
    assert main(["export", str(anon), "--format", "bids", "-o", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "subject" in err and not (tmp_path / "d").exists()
    assert main(["export", str(guided), "--format", "bids", "--what", "raw",
                 "-o", str(tmp_path / "d")]) == 2
    capsys.readouterr()
    size = guided.stat().st_size
    assert main(["export", str(guided), "--format", "bids", "-o", str(guided)]) == 2
    assert "HDF5" in capsys.readouterr().err and guided.stat().st_size == size
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        rc = main(["export", str(guided), "--format", "bids", "-o", str(ro / "ds")])
    finally:
        ro.chmod(0o755)
    if os.geteuid() != 0:  # root writes anywhere
        assert rc == 2 and list(ro.iterdir()) == []


def test_a_failure_while_writing_leaves_nothing_behind(guided, tmp_path, monkeypatch, capsys):
    import errno

    from emgfb.recording import export

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(args[1]))

    monkeypatch.setattr(export, "write_edf", full)
    root = tmp_path / "ds"
    assert main(["export", str(guided), "--format", "bids", "-o", str(root)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "No space left on device" in err
    assert not root.exists()  # the dataset folder this export created is gone again
