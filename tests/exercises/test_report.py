"""Tests of ``emgfb report`` / ``emgfb progress``: tables hold the stored numbers, pages are
self-contained, plain recordings work, progress shows one point per session, errors."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from emgfb.acquisition.source import Marker
from emgfb.cli import main
from emgfb.exercises.progress import build_progress
from emgfb.exercises.report import (
    METRICS,
    SCORE_METRICS,
    build_report,
    metric_heading,
    write_report,
)
from emgfb.montage import load_montage
from emgfb.protocol import BoardInfo
from emgfb.recording import write_arrays

FS = 1000.0
REPO = Path(__file__).resolve().parents[2]

# (name, kind, start s, end s)
STEPS = [("signal check", "signal-check", 0, 3), ("rest", "rest", 3, 13),
         ("reference", "reference", 13, 19), ("Smile", "exercise", 19, 37),
         ("Brow lift", "exercise", 37, 49), ("post-rest", "post-rest", 49, 52)]


def _scores(seed: int) -> list[dict]:
    """Per-rep scores: 3 smiles (suppress OOC-L), 2 brow lifts, values drift with ``seed``."""
    rows = []
    for rep in range(3):
        start = int((20 + 6 * rep) * FS)
        rows.append({
            "step": "Smile", "exercise": "smile", "sunnybrook": "open-mouth smile",
            "rep": rep + 1, "start_tick": start, "end_tick": start + int(5 * FS),
            "target_channel": 4, "healthy_channel": 5, "suppression_channels": [2],
            "ceiling_uv": [4.3], "pct_in_band": 50.0 + 10 * seed + rep,
            "nrmse": 0.40 - 0.05 * seed, "overshoot_pct": 12.5 + rep, "lag_ms": 180.0 + rep,
            "pct_below_ceiling": 70.0 + 5 * seed, "symmetry_ratio": 0.6 + 0.1 * seed,
            "asymmetry_index": 0.25 - 0.05 * seed, "oral_ocular_index": 0.35 - 0.05 * seed,
        })
    for rep in range(2):
        start = int((38 + 5 * rep) * FS)
        rows.append({
            "step": "Brow lift", "exercise": "brow lift", "sunnybrook": "brow lift",
            "rep": rep + 1, "start_tick": start, "end_tick": start + int(4 * FS),
            "target_channel": 0, "healthy_channel": 1, "suppression_channels": [],
            "ceiling_uv": [], "pct_in_band": 80.0 + rep, "nrmse": 0.2,
            "overshoot_pct": 3.0, "lag_ms": 120.0, "pct_below_ceiling": None,
            "symmetry_ratio": 0.9, "asymmetry_index": 0.05, "oral_ocular_index": None,
        })
    return rows


def make_session(path: Path, *, seed: int = 0, subject: str = "P007",
                 date: str = "2026-11-02T09:15:00.000Z", guided: bool = True,
                 gap: bool = False) -> Path:
    """A 52 s, 6-channel session: noise at rest, bursts during reps; documents if guided."""
    rng = np.random.default_rng(100 + seed)
    montage = load_montage("face6")
    n = int(STEPS[-1][3] * FS)
    uv = rng.normal(0.0, 2.0, (n, 6))
    level = np.zeros((n, 6))
    rows = _scores(seed)
    for r in rows:
        a, b = r["start_tick"], r["end_tick"]
        level[a:b, r["target_channel"]] = 40.0
        level[a:b, r["healthy_channel"]] = 60.0  # healthy side stronger
        for sup in r["suppression_channels"]:
            level[a:b, sup] = 15.0
    uv += rng.normal(0.0, 1.0, (n, 6)) * level
    counts = np.clip(np.round(512 + uv / 2.0), 0, 1023).astype(np.uint16)
    tick = np.arange(n, dtype=np.int64)
    if gap:
        counts = np.delete(counts, np.s_[30_000:30_050], axis=0)
        tick = np.delete(tick, np.s_[30_000:30_050])
    markers = []
    meta: dict = {"subject": subject, "start_time_utc": date, "notes": "Ms Jane Doe"}
    info = BoardInfo("1.0.0", "uno", 6, FS, 10, 5000.0, "EMGFB fw=1.0.0 board=uno serial=XYZ")
    if guided:
        for name, kind, a, _b in STEPS:
            markers.append(Marker(int(a * FS), f"{kind}: {name}", "phase"))
        for r in rows:
            markers.append(Marker(r["start_tick"], f"{r['exercise']} rep {r['rep']} start", "rep"))
            markers.append(Marker(r["end_tick"], f"{r['exercise']} rep {r['rep']} end", "rep"))
        meta["protocol"] = {"name": "demo", "montage": "face6", "steps": [
            {"kind": kind, "label": name, "start_tick": int(a * FS), "end_tick": int(b * FS),
             **({"name": "smile", "sunnybrook": "open-mouth smile",
                 "target": ["zygomaticus_major"], "suppress": ["orbicularis_oculi"],
                 "shape": "hold", "level_pct": 30, "ramp_up_s": 1, "hold_s": 3,
                 "ramp_down_s": 1, "reps": 3, "band_pct": 10,
                 "ceiling": {"mode": "baseline_sd", "value": 3}} if name == "Smile" else {}),
             **({"name": "brow lift", "sunnybrook": "brow lift", "target": ["frontalis"],
                 "suppress": [], "shape": "mirror", "level_pct": 30, "ramp_up_s": 1,
                 "hold_s": 2, "ramp_down_s": 1, "reps": 2, "band_pct": 10,
                 "ceiling": {"mode": "baseline_sd", "value": 3}} if name == "Brow lift"
                else {})}
            for name, kind, a, b in STEPS]}
        meta["calibration"] = {"rest": {"mean_uv": [2.1, 2.2, 2.3, 2.4, 2.5, 2.6],
                                        "sd_uv": [0.5, 0.5, 0.6, 0.6, 0.7, 0.7]},
                               "reference_uv": [80.0, 120.0, 90.0, 100.0, 70.0, 140.0]}
        meta["scores"] = rows
    return write_arrays(path, counts, FS, montage, 2.0, 512.0, tick=tick, markers=markers,
                        info=info, meta=meta)


class _Tables(HTMLParser):
    """Collect every table as a list of rows of cell texts, keyed by its class."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[tuple[str, list[list[str]]]] = []
        self._cell: list[str] | None = None
        self.srcs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if tag == "table":
            self.tables.append((a.get("class") or "", []))
        elif tag == "tr" and self.tables:
            self.tables[-1][1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag in ("img", "script", "link", "iframe"):
            self.srcs.append(a.get("src") or a.get("href") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][1][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def table(self, cls: str) -> list[list[str]]:
        return next(rows for c, rows in self.tables if cls in c.split())


def _parse(text: str) -> _Tables:
    p = _Tables()
    p.feed(text)
    return p


@pytest.fixture(scope="module")
def guided(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_session(tmp_path_factory.mktemp("rep") / "s1.h5", gap=True)


@pytest.fixture(scope="module")
def guided_html(guided: Path) -> str:
    return build_report(guided)


def test_rep_table_holds_the_stored_scores(guided_html: str) -> None:
    p = _parse(guided_html)
    rep_tables = [rows for c, rows in p.tables if "reps" in c.split()]
    assert len(rep_tables) == 2  # Smile, Brow lift
    head, *body = rep_tables[0]
    assert len(body) == 3
    scores = _scores(0)
    for row, want in zip(body, scores[:3], strict=True):
        assert row[0] == str(want["rep"])
        assert float(row[1]) == pytest.approx(want["start_tick"] / FS, abs=0.05)
        for k, m in enumerate(SCORE_METRICS):
            cell = row[2 + k]
            if want[m.key] is None:
                assert cell == "–"
            else:
                assert float(cell) == pytest.approx(want[m.key], abs=0.6 * 10 ** -m.digits)
    # undefined oral-ocular index of the brow lift shows as a dash
    brow = rep_tables[1]
    col = brow[0].index("Oral-ocular")
    assert [r[col] for r in brow[1:]] == ["–", "–"]


def test_summary_and_calibration_tables(guided_html: str) -> None:
    p = _parse(guided_html)
    summary = p.table("exercise-summary")
    smile = next(r for r in summary if r[0] == "Smile")
    assert smile[1] == "open-mouth smile" and smile[2] == "3"
    col = summary[0].index("In band (%)")
    assert float(smile[col].split("±")[0]) == pytest.approx(51.0, abs=0.05)  # 50, 51, 52
    cal = p.table("calibration")
    zyg_l = next(r for r in cal if r[0] == "ZYG-L")
    assert float(zyg_l[3]) == pytest.approx(2.5)   # rest mean
    assert float(zyg_l[5]) == pytest.approx(2.5 + 3 * 0.7, abs=0.01)  # ceiling
    assert float(zyg_l[6]) == pytest.approx(70.0)  # reference
    assert float(zyg_l[7]) == pytest.approx(70.0 / 140.0, abs=0.005)  # A/H
    # %COCON of a smile is defined (OOC-L fires with ZYG-L), of a brow lift not
    reps = [rows for c, rows in p.tables if "reps" in c.split()]
    assert all(0 < float(r[-2]) < 100 for r in reps[0][1:])
    assert all(r[-2] == "–" and r[-1] == "yes" for r in reps[1][1:])


def test_report_is_self_contained_and_private(guided_html: str) -> None:
    p = _parse(guided_html)
    assert p.srcs and all(s.startswith("data:image/png;base64,") for s in p.srcs)
    assert "http://" not in guided_html and "https://" not in guided_html
    assert 'src="file' not in guided_html and "<script" not in guided_html
    text = re.sub(r"data:image/png;base64,[^\"]+", "", guided_html)
    assert "Jane" not in text and "XYZ" not in text  # notes, board serial
    assert "P007" in text and "2026-11-02" in text


def test_report_shows_gaps_quality_and_definitions(guided_html: str) -> None:
    p = _parse(guided_html)
    assert "50 samples lost" in guided_html
    gap_rows = next(rows for c, rows in p.tables if rows and rows[0][0] == "At (s)")
    assert gap_rows[1][1] == "50" and gap_rows[1][3] == "exercise: Smile"
    quality = next(rows for c, rows in p.tables if rows and "Rest RMS (µV)" in rows[0])
    assert [r[0] for r in quality[1:]] == ["FRO-L", "FRO-R", "OOC-L", "OOC-R", "ZYG-L",
                                           "ZYG-R"]
    rest = [float(r[1]) for r in quality[1:]]
    assert all(1.0 < v < 4.0 for v in rest)  # 2 µV noise at rest
    for m in SCORE_METRICS:
        assert f"<dt>{m.title}" in guided_html  # every shown metric is defined


def test_plain_recording_without_documents(tmp_path: Path) -> None:
    path = make_session(tmp_path / "plain.h5", guided=False)
    text = build_report(path)
    p = _parse(text)
    assert not [c for c, _ in p.tables if "reps" in c.split() or "calibration" in c.split()]
    assert "Signal quality" in text and "Envelopes" in text and "No lost samples" in text
    assert "channel states assessed live are not stored in this file" in text
    assert len(p.srcs) == 1


def test_cli_report_refuses_overwrite_and_bad_input(tmp_path: Path, guided: Path,
                                                    capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "r.html"
    assert main(["report", str(guided), "-o", str(out)]) == 0
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    err = capsys.readouterr().err
    assert "computing envelopes" in err
    before = out.stat().st_mtime_ns
    assert main(["report", str(guided), "-o", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert out.stat().st_mtime_ns == before
    assert main(["report", str(guided), "-o", str(out), "--force", "-q"]) == 0
    assert capsys.readouterr().err == ""
    assert main(["report", str(tmp_path / "missing.h5"), "-o", str(tmp_path / "x.html")]) == 2
    err = capsys.readouterr().err
    assert "missing.h5: file not found" in err and err.count("\n") == 1
    junk = tmp_path / "junk.h5"
    junk.write_text("not hdf5")
    assert main(["report", str(junk), "-o", str(tmp_path / "x.html")]) == 2
    assert "not an HDF5 file" in capsys.readouterr().err
    assert not (tmp_path / "x.html").exists()


def test_write_report_checks_the_output_first(tmp_path: Path) -> None:
    from emgfb.errors import EmgfbError

    out = tmp_path / "exists.html"
    out.write_text("keep")
    with pytest.raises(EmgfbError, match="already exists"):
        write_report(tmp_path / "nothing.h5", out)
    assert out.read_text() == "keep"
    with pytest.raises(EmgfbError, match="folder .* does not exist"):
        write_report(tmp_path / "nothing.h5", tmp_path / "no" / "r.html")


def test_progress_three_sessions_one_point_per_session(tmp_path: Path) -> None:
    for k, day in enumerate(["2026-10-05", "2026-10-19", "2026-11-02"]):
        make_session(tmp_path / f"s{k}.h5", seed=k, date=f"{day}T09:00:00.000Z")
    (tmp_path / "readme.txt").write_text("not a session")
    (tmp_path / "broken.h5").write_text("not hdf5 either")
    text = build_progress(tmp_path)
    points = dict(re.findall(r'data-metric="([a-z_]+)" data-points="(\d+)"', text))
    for m in SCORE_METRICS:
        if m.key in ("oral_ocular_index", "pct_below_ceiling"):
            assert points[m.key] == "3"  # smile only
        else:
            assert points[m.key] == "6"  # 3 sessions x 2 exercises
    p = _parse(text)
    trend = p.table("trend")
    head = trend[0]
    smile = [r for r in trend[1:] if r[1] == "Smile"]
    assert [r[0] for r in smile] == ["2026-10-05", "2026-10-19", "2026-11-02"]
    col = head.index("In band (%)")
    assert [float(r[col]) for r in smile] == pytest.approx([51.0, 61.0, 71.0])
    assert "broken.h5" in text  # skipped with a note
    plain = re.sub(r"data:image/png;base64,[^\"]+", "", text)
    assert "09:00" not in plain and "Jane" not in plain  # dates reduced, no notes
    assert "data:image/png;base64," in text and "http://" not in text


def test_progress_needs_one_subject(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    make_session(tmp_path / "a.h5", subject="P007")
    make_session(tmp_path / "b.h5", subject="P008", date="2026-11-09T09:00:00.000Z")
    out = tmp_path / "p.html"
    assert main(["progress", str(tmp_path), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "P007" in err and "P008" in err and "--subject" in err
    assert main(["progress", str(tmp_path), "-o", str(out), "--subject", "P008"]) == 0
    assert out.exists()
    assert main(["progress", str(tmp_path), "-o", str(tmp_path / "q.html"),
                 "--subject", "P009"]) == 2
    assert "P009" in capsys.readouterr().err
    assert main(["progress", str(tmp_path / "nope"), "-o", str(tmp_path / "r.html")]) == 2
    assert "not a directory" in capsys.readouterr().err


def test_metrics_doc_defines_every_metric() -> None:
    doc = (REPO / "docs" / "metrics.md").read_text(encoding="utf-8")
    for key in METRICS:
        assert f"`{key}`" in doc, key


def test_blockwise_envelopes_equal_one_pass(guided: Path) -> None:
    """The one streamed pass (odd block size, a gap inside the smile step) gives the
    envelopes of one whole-array pass: the overview at full resolution when it fits."""
    from emgfb.exercises.report import SessionData
    from emgfb.recording import open_recording
    from emgfb.recording.export import signal_values

    with open_recording(guided) as rec:
        one, _unit, _notes = signal_values(rec, "envelope")
        s = SessionData(rec)
        s.scan(max_points=rec.n_samples, block=7777)
        tick = rec.tick
        probe = np.concatenate((tick[:5], tick[-5:], tick[::997], tick[::997] + 1,
                                rec.first_tick + np.arange(-3, rec.n_samples + 200, 311)))
        assert [s.sample_of(t) for t in probe] == list(
            np.searchsorted(tick, probe, side="left"))
        assert np.allclose(s.overview.t, (tick - rec.first_tick) / rec.fs)
    blocks = s.overview.y
    assert blocks.shape == one.shape
    assert np.array_equal(np.isnan(blocks), np.isnan(one))
    ok = ~np.isnan(one)
    assert np.allclose(blocks[ok], one[ok], rtol=1e-5, atol=1e-4)


def test_display_trace_keeps_every_peak_in_bounded_points(guided: Path) -> None:
    """A long span is reduced to min/max per display bin: few points, yet the highest and
    lowest envelope values of the session are all drawn (a stride would miss them)."""
    from emgfb.exercises.report import SessionData
    from emgfb.recording import open_recording
    from emgfb.recording.export import signal_values

    with open_recording(guided) as rec:
        one, _unit, _notes = signal_values(rec, "envelope")
        s = SessionData(rec)
        s.scan(max_points=100, block=5000)
    y = s.overview.y
    assert len(y) <= 2 * 101 and np.all(np.diff(s.overview.t) >= 0)
    assert np.allclose(np.nanmax(y, axis=0), np.nanmax(one, axis=0))
    assert np.allclose(np.nanmin(y, axis=0), np.nanmin(one, axis=0))


SHORT_PROTOCOL = """
name = "short"
montage = "face6"
[[step]]
kind = "signal-check"
duration_s = 1
[[step]]
kind = "rest"
duration_s = 10
[[step]]
kind = "reference"
muscle = "zygomaticus_major"
effort_s = 3
[[step]]
kind = "reference"
muscle = "orbicularis_oculi"
effort_s = 3
[[step]]
kind = "exercise"
label = "Smile, eye quiet"
name = "smile"
sunnybrook = "open-mouth smile"
target = ["zygomaticus_major"]
suppress = ["orbicularis_oculi"]
shape = "hold"
level_pct = 30
ramp_up_s = 1
hold_s = 2
ramp_down_s = 1
reps = 2
rest_s = 2
band_pct = 10
ceiling = { mode = "baseline_sd", value = 3 }
[[step]]
kind = "post-rest"
duration_s = 2
"""


def test_report_of_a_headless_autopilot_session(tmp_path: Path) -> None:
    """End to end on the real contract: `emgfb session --headless` then `emgfb report`."""
    from emgfb.recording import open_recording

    protocol = tmp_path / "short.toml"
    protocol.write_text(SHORT_PROTOCOL, encoding="utf-8")
    session = tmp_path / "s.h5"
    assert main(["session", "--protocol", str(protocol), "--source",
                 "sim://?speed=0&chunk=50&seed=4", "-o", str(session), "--subject", "P002",
                 "--headless"]) == 0
    out = tmp_path / "s.html"
    assert main(["report", str(session), "-o", str(out), "-q"]) == 0
    with open_recording(session) as rec:
        scores = rec.document("scores")
    assert len(scores) == 2
    p = _parse(out.read_text(encoding="utf-8"))
    head, *body = next(rows for c, rows in p.tables if "reps" in c.split())
    assert len(body) == 2
    for row, want in zip(body, scores, strict=True):
        for m in SCORE_METRICS:
            cell = row[head.index(metric_heading(m))]
            if want[m.key] is None:
                assert cell == "–"
            else:
                assert float(cell) == pytest.approx(want[m.key], abs=0.6 * 10 ** -m.digits)
    summary = p.table("exercise-summary")
    assert summary[1][0] == "Smile, eye quiet" and summary[1][2] == "2"
    assert float(p.table("calibration")[5][6]) > 0  # ZYG-L reference


def test_every_value_from_the_file_is_escaped(tmp_path: Path) -> None:
    """Names, labels and reasons stored in a session reach the page as text, never markup."""
    evil = '<img src=x onerror="alert(1)">'
    n = int(4 * FS)
    counts = np.full((n, 6), 512, np.uint16)
    counts[:, :] += np.random.default_rng(3).integers(0, 5, (n, 6)).astype(np.uint16)
    row = {"exercise": f"Smile {evil}", "rep": 1, "start_tick": 1000, "end_tick": 2000,
           "valid": False, "invalid_reason": f"flat {evil}", "target_channel": 0,
           "sunnybrook": evil}
    meta = {"subject": "P1", "start_time_utc": "2026-11-02T09:15:00.000Z",
            "protocol": {"name": f"proto {evil}", "steps": [
                {"kind": "exercise", "label": f"Smile {evil}", "start_tick": 500,
                 "end_tick": 3000, "shape": evil}]},
            "calibration": {"rest": {"mean_uv": [2.0] * 6, "sd_uv": [0.5] * 6},
                            "reference_uv": [50.0] * 6,
                            "reference_failures": [{"step": evil, "attempt": 1,
                                                    "reason": evil}]},
            "scores": [row]}
    markers = [Marker(500, f"exercise: {evil}", "phase")]
    path = write_arrays(tmp_path / "evil.h5", counts, FS, load_montage("face6"), 2.0, 512.0,
                        markers=markers, meta=meta)
    text = build_report(path)
    assert "<img src=x" not in text and "onerror=\"alert" not in text
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in text
    assert f"proto {evil}" not in text
