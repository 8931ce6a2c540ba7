"""Lab Streaming Layer in and out, through real liblsl outlets and inlets on loopback.

liblsl is confined to this machine (``ResolveScope = machine``, known peer 127.0.0.1) by a
config file handed to it through ``LSLAPICFG`` before its first use; every test uses its
own stream names and source ids, so parallel runs never see each other's streams. No test
sleeps to synchronise: inlets are opened (which blocks until connected) before data flows
and pulls wait with timeouts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

pylsl = pytest.importorskip("pylsl")

from emgfb.acquisition.lsl import LslMarkerInlet, LslSource, SampleClock  # noqa: E402
from emgfb.acquisition.sim_source import SimSource  # noqa: E402
from emgfb.acquisition.source import Chunk, Marker, open_source  # noqa: E402
from emgfb.errors import ConfigError, DeviceError  # noqa: E402
from emgfb.lsl_out import LslPublisher  # noqa: E402
from emgfb.montage import default_montage  # noqa: E402
from emgfb.recording.reader import open_recording  # noqa: E402

LOOPBACK_CFG = """\
[ports]
IPv6 = disable
[multicast]
ResolveScope = machine
[lab]
KnownPeers = {127.0.0.1}
[log]
level = -3
"""
REPO = Path(__file__).resolve().parents[2]
FS = 1000.0


@pytest.fixture(scope="module", autouse=True)
def _lsl_loopback(tmp_path_factory: pytest.TempPathFactory):
    """Keep liblsl on loopback (this process and its children), quiet."""
    cfg = tmp_path_factory.mktemp("lsl") / "lsl_api.cfg"
    cfg.write_text(LOOPBACK_CFG)
    old = os.environ.get("LSLAPICFG")
    os.environ["LSLAPICFG"] = str(cfg)
    yield
    if old is None:
        os.environ.pop("LSLAPICFG", None)
    else:
        os.environ["LSLAPICFG"] = old


def _uid(prefix: str) -> str:
    return f"emgfbtest-{prefix}-{uuid.uuid4().hex[:10]}"


def _open_inlet(prop: str, value: str, timeout: float = 10.0):
    found = pylsl.resolve_byprop(prop, value, timeout=timeout)
    assert found, f"stream {prop}={value} not found"
    inlet = pylsl.StreamInlet(found[0], max_buflen=60)
    inlet.open_stream(timeout)  # blocks until connected: nothing pushed later is missed
    return inlet


def _pull(inlet, n: int, timeout: float = 10.0) -> tuple[list, list]:
    samples: list = []
    stamps: list = []
    deadline = time.monotonic() + timeout
    while len(stamps) < n and time.monotonic() < deadline:
        s, t = inlet.pull_chunk(timeout=0.2, max_samples=4096)
        samples += s
        stamps += t
    return samples, stamps


def _sim_chunks(n_chunks: int, ch: int = 4, seed: int = 7) -> tuple[SimSource, list[Chunk]]:
    src = SimSource(default_montage(ch), FS, seed, speed=0, chunk_ms=50)
    with src:
        chunks = [src.read() for _ in range(n_chunks)]
    return src, chunks


def test_publisher_raw_stream_matches_counts_and_sample_clock():
    src, chunks = _sim_chunks(6)
    del chunks[2]  # 50 lost ticks: the timestamps must jump by 50 ms there
    name = _uid("out")
    upc, off = src.model.uv_per_count, src.model.offset_counts
    with LslPublisher(src.info, src.montage, upc, off, name=name,
                      source_id=name) as pub:
        inlet = _open_inlet("source_id", name)
        marker_inlet = _open_inlet("source_id", f"{name}-markers")
        for c in chunks:
            pub.push_chunk(c)
        pub.push_marker(Marker(int(chunks[3].tick[10]), "rep 1 start", "rep"))
        samples, stamps = _pull(inlet, 250)
        label, mts = marker_inlet.pull_sample(timeout=10)
        full = inlet.info(5)
    tick = np.concatenate([c.tick for c in chunks])
    counts = np.concatenate([c.counts for c in chunks])
    expect = ((counts.astype(np.float64) - off) * upc).astype(np.float32)
    got = np.asarray(samples, dtype=np.float32)
    assert got.shape == expect.shape
    assert np.array_equal(got, expect)  # sample for sample, bit for bit
    np.testing.assert_allclose(np.diff(stamps), np.diff(tick) / FS, atol=1e-9)
    assert label == ["rep 1 start"]
    assert mts == pytest.approx(stamps[list(tick).index(chunks[3].tick[10])], abs=1e-9)
    assert full.type() == "EMG" and full.nominal_srate() == FS
    assert full.get_channel_labels() == src.montage.labels
    assert full.get_channel_units() == ["microvolts"] * 4
    first = full.desc().child("channels").child("channel")
    assert first.child_value("muscle") == src.montage.channels[0].muscle
    assert first.child_value("side") == src.montage.channels[0].side


def test_publisher_envelope_stream_from_dsp_config():
    from emgfb.dsp import EnvelopePipeline, load_dsp_config

    src, chunks = _sim_chunks(40, ch=2)  # envelope settles after ~1.4 s
    name = _uid("env")
    cfg = load_dsp_config()
    upc, off = src.model.uv_per_count, src.model.offset_counts
    with LslPublisher(src.info, src.montage, upc, off, name=name, source_id=name,
                      dsp_config=cfg) as pub:
        inlet = _open_inlet("source_id", f"{name}-envelope")
        for c in chunks:
            pub.push_chunk(c)
        samples, stamps = _pull(inlet, 2000)
        assert inlet.info(5).type() == "EMGEnvelope"
    counts = np.concatenate([c.counts for c in chunks])
    expect = EnvelopePipeline(cfg, FS, 2, upc, off).process(counts).astype(np.float32)
    env = np.asarray(samples, dtype=np.float32)
    assert np.array_equal(env, expect, equal_nan=True)
    assert np.isfinite(env[-1]).all() and (env[-1] > 0).all()
    np.testing.assert_allclose(np.diff(stamps), 1 / FS, atol=1e-9)


def test_lsl_source_reads_an_outlet_with_gap_and_units():
    name, stype = _uid("in"), _uid("T")
    info = pylsl.StreamInfo(name, stype, 3, FS, pylsl.cf_float32, name)
    info.set_channel_labels(["a", "b", "c"])
    info.set_channel_units(["microvolts", "millivolts", "microvolts"])
    outlet = pylsl.StreamOutlet(info)
    src = open_source(f"lsl://type={stype}?timeout=5&scale=0.5")
    assert isinstance(src, LslSource)
    with src:
        assert src.info.board == "lsl" and src.info.n_channels == 3 and src.info.fs == FS
        k = np.r_[0:200, 250:350]  # 50 ticks never sent
        x = np.stack([k * 0.5, k * 0.0005, -k * 0.5], axis=1).astype(np.float32)
        t0 = pylsl.local_clock()
        outlet.push_chunk(x, (t0 + k / FS).tolist())
        chunks = []
        deadline = time.monotonic() + 10
        while sum(map(len, chunks)) < len(k) and time.monotonic() < deadline:
            c = src.read(0.2)
            if c is not None:
                chunks.append(c)
        assert src.read(0.0) is None
    tick = np.concatenate([c.tick for c in chunks])
    counts = np.concatenate([c.counts for c in chunks]).astype(np.int64)
    assert np.array_equal(tick, k)
    assert src.stats.lost_ticks == 50
    assert np.array_equal(counts[:, 0], k + 32768)
    assert np.array_equal(counts[:, 1], k + 32768)  # mV converted to µV first
    assert np.array_equal(counts[:, 2], 32768 - k)
    uv = (counts - src.offset_counts) * src.uv_per_count
    np.testing.assert_allclose(uv[:, 0], x[:, 0], atol=1e-3)


def test_lsl_source_by_source_id_recovers_emgfb_counts_and_montage():
    src, chunks = _sim_chunks(3, ch=6)
    name = _uid("loop")
    with LslPublisher(src.info, src.montage, src.model.uv_per_count, src.model.offset_counts,
                      name=name, source_id=name) as pub:
        lsl_src = open_source(f"lsl://source_id={name}?timeout=5")
        with lsl_src:
            for c in chunks:
                pub.push_chunk(c)
            got = []
            deadline = time.monotonic() + 10
            while sum(map(len, got)) < 150 and time.monotonic() < deadline:
                c = lsl_src.read(0.2)
                if c is not None:
                    got.append(c)
    counts = np.concatenate([c.counts for c in got])
    assert np.array_equal(counts, np.concatenate([c.counts for c in chunks]))
    assert lsl_src.montage is not None
    assert lsl_src.montage.channels == src.montage.channels
    assert np.allclose(lsl_src.uv_per_count, src.model.uv_per_count)


def test_lsl_errors_are_one_line():
    with pytest.raises(DeviceError, match="no LSL stream with name=") as exc:
        open_source(f"lsl://{_uid('missing')}?timeout=0.2").start()
    assert "\n" not in str(exc.value)
    with pytest.raises(ConfigError, match="name a stream"):
        open_source("lsl://")
    with pytest.raises(ConfigError, match="unknown parameter"):
        open_source("lsl://x?speed=2")
    with pytest.raises(ConfigError, match="expected an lsl:// URL"):
        LslMarkerInlet("sim://", SampleClock(FS), print)
    marker_name = _uid("str")
    outlet = pylsl.StreamOutlet(pylsl.StreamInfo(marker_name, "Markers", 1, 0,
                                                 pylsl.cf_string, marker_name))
    with pytest.raises(DeviceError, match="irregular rate"):
        open_source(f"lsl://{marker_name}?timeout=5").start()
    del outlet


def test_marker_inlet_places_markers_by_clock():
    name = _uid("mk")
    outlet = pylsl.StreamOutlet(pylsl.StreamInfo(name, "Markers", 1, 0, pylsl.cf_string,
                                                 name))
    clock = SampleClock(FS)
    got: list[Marker] = []
    import threading

    arrived = threading.Event()

    def on_marker(m: Marker) -> None:
        got.append(m)
        arrived.set()

    with LslMarkerInlet(f"lsl://{name}?timeout=5", clock, on_marker):
        assert outlet.wait_for_consumers(5)
        now = pylsl.local_clock()
        outlet.push_sample(["early"], now)  # before the clock is anchored: waits
        clock.anchor(1000, now - 0.5)  # tick 1000 was taken 0.5 s before `now`
        assert arrived.wait(10)
    assert [(m.label, m.kind) for m in got] == [("early", "lsl")]
    assert abs(got[0].tick - 1500) <= 1


# -- the done-when: `emgfb record --lsl` against plain pylsl, marker from another
# -- process, both on loopback ---------------------------------------------------------

MARKER_SENDER = r"""
import json, sys
import pylsl
emg_name, mk_name = sys.argv[1:3]
out = pylsl.StreamOutlet(pylsl.StreamInfo(mk_name, "Markers", 1, 0, "string", mk_name))
print("ready", flush=True)
if not out.wait_for_consumers(60):
    sys.exit("nobody subscribed to the marker stream")
inlet = pylsl.StreamInlet(pylsl.resolve_byprop("name", emg_name, timeout=60)[0])
inlet.open_stream(60)
corr = inlet.time_correction(10)  # emgfb's clock -> this process's clock
values, stamps = [], []
while len(stamps) < 300:
    s, t = inlet.pull_chunk(timeout=1.0)
    values += s
    stamps += t
when = stamps[299] + corr  # the moment emgfb sampled that row, on this process's clock
out.push_sample(["probe"], when)
print(json.dumps({"values": values[299], "t": when}), flush=True)
sys.stdin.read()  # keep the outlet until the test has its recording
"""


@pytest.mark.slow
def test_record_lsl_matches_recording_and_foreign_marker_lands_on_its_sample(tmp_path):
    emg_name, mk_name = _uid("rec"), _uid("probe")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    sender = subprocess.Popen([sys.executable, "-c", MARKER_SENDER, emg_name, mk_name],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              env=env)
    out = tmp_path / "s.h5"
    rec = None
    try:
        assert sender.stdout.readline().strip() == "ready"
        rec = subprocess.Popen(
            [sys.executable, "-m", "emgfb", "record", "--source", "sim://?speed=1&seed=3",
             "--seconds", "3", "-o", str(out), "--lsl", emg_name,
             "--markers-from", f"lsl://{mk_name}"],
            stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
        inlet = _open_inlet("name", emg_name, timeout=30)
        samples: list = []
        stamps: list = []
        while True:
            s, t = inlet.pull_chunk(timeout=0.2, max_samples=4096)
            samples += s
            stamps += t
            if not t and rec.poll() is not None:
                break
        err = rec.stderr.read()
        assert rec.wait(30) == 0, err
        probe = json.loads(sender.stdout.readline())
    finally:
        for p in (sender, rec):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait(10)
        sender.stdin.close()
        sender.stdout.close()
        if rec is not None:
            rec.stderr.close()
    with open_recording(out) as r:
        uv = r.uv().astype(np.float32)
        tick = r.tick
        markers = [m for m in r.markers if m.label == "probe"]
    got = np.asarray(samples, dtype=np.float32)
    assert len(uv) == 3000 and len(got) > 1500, err
    # the inlet joined a running stream: find where, then every row must agree exactly
    first = np.flatnonzero((uv == got[0]).all(axis=1))
    assert len(first) == 1
    k0 = int(first[0])
    assert np.array_equal(got, uv[k0:]), "LSL stream differs from the recording"
    np.testing.assert_allclose(np.diff(stamps), np.diff(tick[k0:]) / FS, atol=1e-9)
    # the foreign marker sits on the row it was stamped with
    row = np.flatnonzero((uv == np.asarray(probe["values"], np.float32)).all(axis=1))
    assert len(row) == 1 and len(markers) == 1, err
    assert abs(markers[0].tick - int(tick[row[0]])) <= 1
    assert markers[0].kind == "lsl"


def test_live_session_publishes_and_takes_foreign_markers():
    from emgfb.live import LiveSession

    name, mk_name = _uid("live"), _uid("livemk")
    mk_out = pylsl.StreamOutlet(pylsl.StreamInfo(mk_name, "Markers", 1, 0, pylsl.cf_string,
                                                 mk_name))
    session = LiveSession("sim://?speed=1&seed=2&ch=2", lsl=name,
                          markers_from=f"lsl://{mk_name}?timeout=5")
    with session:
        inlet = _open_inlet("source_id", f"emgfb-{name}")
        env_inlet = _open_inlet("source_id", f"emgfb-{name}-envelope")
        mk_in = _open_inlet("source_id", f"emgfb-{name}-markers")
        assert session.wait_for_index(100, 10)
        mine = session.add_marker("hello", "key")
        label, _ = mk_in.pull_sample(timeout=10)
        samples, stamps = _pull(inlet, 100)
        env, _ = _pull(env_inlet, 100)
        assert mk_out.wait_for_consumers(5)
        before = session.newest_index
        mk_out.push_sample(["foreign"], pylsl.local_clock())
        deadline = time.monotonic() + 10
        while not any(m.label == "foreign" for m in session.markers):
            assert time.monotonic() < deadline, "foreign marker never arrived"
            session.wait_for_index(session.newest_index + 10, 1)
        after = session.newest_index
        markers = session.markers
    assert session.state == "stopped" and session.error is None
    assert label == ["hello"] and mine.kind == "key"
    assert np.asarray(samples).shape[1] == 2 and len(env) >= 100
    np.testing.assert_allclose(np.diff(stamps[:100]), 1 / FS, atol=1e-9)
    foreign = [m for m in markers if m.label == "foreign"]
    assert len(foreign) == 1 and foreign[0].kind == "lsl"
    # pushed "now": it belongs between the newest sample before and after the push (the
    # clock is anchored at reception, so allow one chunk of delivery latency)
    assert before - 50 <= foreign[0].tick <= after + 1


def test_stream_command_publishes_on_lsl():
    import threading

    from emgfb.cli.stream import stream_summary

    name = _uid("stream")
    result: dict = {}
    worker = threading.Thread(
        target=lambda: result.update(stream_summary("sim://?speed=1&ch=3", 2.0, lsl=name)))
    worker.start()
    try:
        inlet = _open_inlet("name", name)
        env_found = pylsl.resolve_byprop("name", f"{name}-envelope", timeout=10)
        samples, stamps = _pull(inlet, 300)
    finally:
        worker.join(30)
    assert len(stamps) >= 300 and np.asarray(samples).shape[1] == 3
    assert env_found and env_found[0].type() == "EMGEnvelope"
    assert result["frames"] > 0


# -- the installed pylsl: its error classes, Ctrl-C, a vanishing stream, foreign labels ----


def test_error_classes_of_the_installed_pylsl():
    from emgfb.acquisition.lsl import lsl_errors

    lost, timeout = lsl_errors(pylsl)
    where = getattr(pylsl, "util", None) or pylsl.pylsl  # 1.17+ / 1.16
    with pytest.raises(lost):
        where.handle_error(-2)
    with pytest.raises(timeout):
        where.handle_error(-1)
    assert lost is not timeout


class _Sender:
    """A foreign EMG outlet (labels, mixed units, no anatomy) pushing 20-sample chunks
    every 20 ms of LSL time from a thread, until stopped or destroyed."""

    LABELS = ["FDI", "APB", "Trig"]
    UNITS = ["microvolts", "millivolts", "V"]

    def __init__(self) -> None:
        import threading

        self.name = _uid("foreign")
        info = pylsl.StreamInfo(self.name, "EMG", 3, FS, pylsl.cf_float32, self.name)
        info.set_channel_labels(self.LABELS)
        info.set_channel_units(self.UNITS)
        self.outlet = pylsl.StreamOutlet(info)
        self.pushed = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        t0 = pylsl.local_clock()
        while not self.stop.is_set():
            due = t0 + (self.pushed + 20) / FS
            if self.stop.wait(max(0.0, due - pylsl.local_clock())):  # pacing, not syncing
                break
            k = self.pushed + np.arange(20)
            x = np.stack([np.sin(k / 7) * 50, np.sin(k / 7) * 0.05, np.zeros(20)], axis=1)
            self.outlet.push_chunk(x.astype(np.float32).tolist(), (t0 + k / FS).tolist())
            self.pushed += 20

    def start_when_consumed(self, proc: subprocess.Popen) -> None:
        deadline = time.monotonic() + 30
        while not self.outlet.wait_for_consumers(0.5):
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "emgfb never subscribed"
        self.thread.start()

    def vanish(self) -> None:
        self.stop.set()
        self.thread.join(10)
        self.outlet = None  # pylsl destroys the outlet with the object


def _record(args: list[str], tmp_path: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "emgfb", "record", *args],
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"}, cwd=tmp_path)


@pytest.mark.slow
def test_ctrl_c_on_an_lsl_recording_keeps_the_file_labels_and_units(tmp_path):
    import signal

    sender = _Sender()
    out = tmp_path / "s.h5"
    rec = _record(["--source", f"lsl://{sender.name}?timeout=10", "-o", str(out)], tmp_path)
    try:
        sender.start_when_consumed(rec)
        while "elapsed" not in rec.stderr.readline():  # the first progress line: recording
            assert rec.poll() is None
        rec.send_signal(signal.SIGINT)
        err = rec.stderr.read()
        assert rec.wait(30) == 130, err  # interrupted, as the shell expects
    finally:
        if rec.poll() is None:
            rec.kill()
            rec.wait(10)
        rec.stderr.close()
        sender.vanish()
    assert "stopped by signal" in err and "Traceback" not in err, err
    with open_recording(out) as r:
        assert r.n_samples > 0
        assert r.meta["complete"]
        assert [c.label for c in r.montage.channels] == _Sender.LABELS
        assert r.info is not None and r.info.extra["lsl_units"] == ",".join(_Sender.UNITS)


@pytest.mark.slow
def test_a_vanishing_stream_ends_a_timed_recording_with_an_error_and_a_whole_file(tmp_path):
    sender = _Sender()
    out = tmp_path / "s.h5"
    rec = _record(["--source", f"lsl://{sender.name}?timeout=10", "--seconds", "3",
                   "-o", str(out)], tmp_path)
    try:
        sender.start_when_consumed(rec)
        while "elapsed" not in rec.stderr.readline():
            assert rec.poll() is None
        sender.vanish()  # about 1 s into the 3 s asked for
        gone = time.monotonic()
        err = rec.stderr.read()
        code = rec.wait(30)
        ended = time.monotonic() - gone
    finally:
        if rec.poll() is None:
            rec.kill()
            rec.wait(10)
        rec.stderr.close()
        sender.vanish()
    assert code != 0 and ended < 8.0, (code, ended, err)
    lines = [line for line in err.splitlines() if "error" in line]
    assert len(lines) == 1 and "no sample for" in lines[0] and "Traceback" not in err, err
    with open_recording(out) as r:
        assert r.meta["complete"]
        assert 0 < r.n_samples <= sender.pushed < 3000
