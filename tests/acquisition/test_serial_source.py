"""SerialSource against a scripted protocol-v1 board on a real pseudo-terminal
(:class:`testkit.pty_board.PtyTestBoard`)."""

from __future__ import annotations

import errno
import time

import numpy as np
import pytest
import serial

from emgfb.acquisition.serial_source import SerialOptions, SerialSource
from emgfb.acquisition.source import open_source
from emgfb.errors import ConfigError, DeviceError

from testkit.pty_board import (
    PtyTestBoard,
    n_frames,
    read_until,
    reader_threads,
    seq_of,
)


@pytest.fixture
def emulator(tmp_path):
    emus: list[PtyTestBoard] = []

    def make(**kw) -> PtyTestBoard:
        emu = PtyTestBoard(tmp_path / "ttyEMU", **kw).plug()
        emus.append(emu)
        return emu

    yield make
    for emu in emus:
        emu.unplug()


def test_handshake_stream_and_clean_stop(emulator):
    emu = emulator(n_channels=6, fs=1000)
    src = open_source(f"serial://{emu.link}?reset_wait=0")
    assert isinstance(src, SerialSource) and not emu.commands  # constructor does no I/O
    src.start()
    assert src.info.n_channels == 6 and src.info.fs == 1000 and src.info.board == "emu"
    assert emu.wait_command("start") and emu.commands[:3] == ["stop", "?", "start"]
    chunks = read_until(src, lambda c: n_frames(c) >= 300)
    src.stop()
    tick = np.concatenate([c.tick for c in chunks])
    counts = np.concatenate([c.counts for c in chunks])
    assert np.array_equal(tick, np.arange(len(tick)))
    assert np.array_equal(seq_of(counts), tick)
    assert all(c.host_time > 0 for c in chunks)
    assert src.stats.frames >= len(tick)
    assert (src.stats.lost_ticks, src.stats.crc_errors, src.stats.reconnects) == (0, 0, 0)
    assert emu.wait_command("stop", count=2)
    assert not reader_threads() and src.status.state == "stopped"
    src.stop()  # idempotent


def test_a_stop_lost_on_the_link_is_sent_again_and_every_frame_is_read(emulator):
    # seen in the two-process blackout test: the driver's 'stop' fell into a blackout, the
    # board streamed on, and what it sent after the 1 s drain was never read
    emu = emulator(n_channels=2, fs=1000, lose_stops=1)
    src = open_source(f"serial://{emu.link}?reset_wait=0")
    src.start()
    read_until(src, lambda c: n_frames(c) >= 200)
    asked = time.monotonic()
    src.stop()
    assert emu.lost_stops == 1 and emu.stopped_at is not None
    # the board stopped on the repeated 'stop' while the driver still drained (the close's
    # own 'stop' comes only after the 1 s drain limit), and every frame it sent was read
    assert emu.stopped_at - asked < 0.9, emu.stopped_at - asked
    assert src.stats.frames == emu.sent_seq and src.stats.lost_ticks == 0


def test_boot_line_ends_the_reset_wait_early(emulator):
    emu = emulator(boot_line=True)
    src = SerialSource(str(emu.link), SerialOptions(reset_wait=30.0))
    t0 = time.monotonic()
    with src:
        assert src.info.n_channels == 6
    assert time.monotonic() - t0 < 15.0  # far below the 30 s a silent board would cost


def test_missing_port_is_one_clear_line(tmp_path):
    src = open_source(f"serial://{tmp_path}/ttyNOPE?reset_wait=0")
    with pytest.raises(DeviceError, match=r"ttyNOPE: no such port") as err:
        src.start()
    assert "\n" not in str(err.value) and src.status.state == "failed"
    assert not reader_threads()


def test_permission_denied_hints_at_dialout(monkeypatch, tmp_path):
    def refuse(port, **kw):
        raise serial.SerialException(errno.EACCES, f"could not open port {port}: denied")

    monkeypatch.setattr(serial, "Serial", refuse)
    with pytest.raises(DeviceError, match="permission denied.*dialout"):
        open_source(f"serial://{tmp_path}/ttyX?reset_wait=0").start()


def test_wrong_baud_garbage_is_reported(emulator):
    emu = emulator(reply="garbage")
    src = open_source(f"serial://{emu.link}?reset_wait=0&handshake_timeout=0.3")
    with pytest.raises(DeviceError, match="garbage instead of a board line.*baud"):
        src.start()


def test_no_answer_is_reported(emulator):
    emu = emulator(reply="silent")
    src = open_source(f"serial://{emu.link}?reset_wait=0&handshake_timeout=0.3")
    with pytest.raises(DeviceError, match=r"no answer to the '\?' handshake within 0.3 s"):
        src.start()
    assert emu.wait_command("?")


def test_bad_option_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="baud='fast': expected int"):
        open_source(f"serial://{tmp_path}/tty?baud=fast")
    with pytest.raises(ConfigError, match="silence=0.0"):
        open_source(f"serial://{tmp_path}/tty?silence=0")


def test_pyserial_urls_keep_their_own_query_and_drop_ours():
    src = open_source("socket://127.0.0.1:9?baud=500000&silence=1.5&logging=debug")
    assert isinstance(src, SerialSource) and src.is_url
    assert src.target == "socket://127.0.0.1:9?logging=debug"
    assert (src.options.baud, src.options.silence, src.options.reset_wait) == (500000, 1.5, 0)
    with pytest.raises(DeviceError, match="socket://127.0.0.1:9.*cannot open port"):
        src.start()


def _check_run_after_gap(src, chunks):
    tick = np.concatenate([c.tick for c in chunks])
    seq = seq_of(np.concatenate([c.counts for c in chunks]))
    assert np.all(np.diff(tick) >= 1) and np.all(seq >= 0)
    jumps = np.flatnonzero(np.diff(tick) > 1)
    assert len(jumps) == 1  # exactly one gap: the reconnect
    j = jumps[0] + 1
    # before the gap ticks are the board's seq; after it the new run's seq restarts at 0
    assert np.array_equal(tick[:j], seq[:j]) and seq[j] == 0
    assert np.array_equal(tick[j:] - tick[j], seq[j:])
    gap = int(tick[j] - tick[j - 1] - 1)
    assert src.stats.lost_ticks == gap > 0
    assert src.stats.reconnects == 1 and src.status.state == "streaming"
    return gap


def test_reconnects_after_unplug_and_counts_the_gap(emulator):
    emu = emulator(n_channels=4, fs=1000)
    src = open_source(f"serial://{emu.link}?reset_wait=0&backoff_max=0.05")
    with src:
        chunks = read_until(src, lambda c: n_frames(c) >= 200)
        emu.unplug()
        t_gone = time.monotonic()
        chunks += read_until(src, lambda c: src.status.state == "reconnecting")
        rest = src.read(0)  # frames queued just before the port went away
        chunks += [rest] if rest is not None else []
        assert src.read(0.05) is None  # the consumer just sees no data, never an exception
        emu.started.clear()
        emu.plug()
        chunks += read_until(src, lambda c: src.stats.reconnects == 1 and n_frames(c) >= 400)
        t_back = time.monotonic()
        gap = _check_run_after_gap(src, chunks)
    assert gap <= (t_back - t_gone) * 1000 + 50  # host-clock estimate, not invented
    assert not reader_threads()


def test_reconnects_after_silence(emulator):
    emu = emulator(n_channels=2, fs=500)
    src = open_source(f"serial://{emu.link}?reset_wait=0&silence=0.3")
    with src:
        chunks = read_until(src, lambda c: n_frames(c) >= 50)
        emu.paused.set()  # the board stalls; the port stays
        chunks += read_until(src, lambda c: src.status.state == "reconnecting")
        emu.paused.clear()
        chunks += read_until(src, lambda c: src.stats.reconnects == 1 and n_frames(c) >= 150)
        gap = _check_run_after_gap(src, chunks)
    assert gap >= 0.3 * 500 * 0.9
    assert emu.commands.count("start") == 2


def test_reconnect_disabled_fails_visibly_without_raising(emulator):
    emu = emulator()
    src = open_source(f"serial://{emu.link}?reset_wait=0&reconnect=0")
    src.start()
    read_until(src, lambda c: n_frames(c) >= 20)
    emu.unplug()
    read_until(src, lambda c: src.status.state == "failed")
    assert "port lost" in src.status.detail
    src.stop()
    assert src.status.state == "failed" and not reader_threads()


# -- port discovery: emgfb.acquisition.ports and `emgfb ports` ----------------------------


def _fake_comports(monkeypatch, *specs):
    from serial.tools.list_ports_common import ListPortInfo

    from emgfb.acquisition import ports

    infos = []
    for device, vid, pid in specs:
        info = ListPortInfo(device, skip_link_detection=True)
        info.vid, info.pid, info.description = vid, pid, f"desc of {device}"
        infos.append(info)
    monkeypatch.setattr(ports._list_ports, "comports", lambda: infos)


def test_ports_marks_arduino_class_boards_by_usb_ids(monkeypatch):
    from emgfb.acquisition.ports import list_ports

    _fake_comports(
        monkeypatch, ("/dev/ttyACM0", 0x2341, 0x0043), ("/dev/ttyUSB0", 0x1A86, 0x7523),
        ("/dev/ttyS0", None, None), ("/dev/ttyUSB1", 0x067B, 0x2303),
    )
    got = {p.device: p.family for p in list_ports()}
    assert got == {"/dev/ttyACM0": "Arduino", "/dev/ttyUSB0": "CH340", "/dev/ttyS0": None,
                   "/dev/ttyUSB1": None}


def test_ports_cli_probe_finds_the_answering_board(monkeypatch, emulator, tmp_path, capsys):
    import json

    from emgfb.cli import main

    _fake_comports(monkeypatch, (f"{tmp_path}/ttyACM9", 0x2A03, 0x0043))
    emu = emulator(n_channels=3, fs=250)
    rc = main(["ports", "--json", "--probe", "--timeout", "0.3", "--port", str(emu.link)])
    listed = json.loads(capsys.readouterr().out)
    assert rc == 0 and [p["device"] for p in listed] == [f"{tmp_path}/ttyACM9", str(emu.link)]
    gone, board = listed
    assert gone["likely_board"] and gone["vid"] == "0x2a03" and gone["board"] is None
    assert "no such port" in gone["probe_error"]
    assert board["board"]["line"] == emu.line and board["probe_error"] is None
    assert main(["ports", "--port", str(emu.link), "--probe", "--timeout", "0.3"]) == 0
    out = capsys.readouterr().out
    assert "likely Arduino board" in out and f"answers: {emu.line}" in out


def test_board_left_streaming_by_a_crashed_host_is_stopped_and_restarted(emulator):
    emu = emulator(n_channels=6, fs=2000)
    emu._handle("start")  # a previous session never sent 'stop'
    with open_source(f"serial://{emu.link}?reset_wait=0") as src:
        assert emu.wait_command("start", count=2)
        chunks = read_until(src, lambda c: n_frames(c) >= 200)
    tick = np.concatenate([c.tick for c in chunks])
    assert np.array_equal(seq_of(np.concatenate([c.counts for c in chunks])), tick)
    assert src.stats.crc_errors == src.stats.bytes_skipped == src.stats.lost_ticks == 0
