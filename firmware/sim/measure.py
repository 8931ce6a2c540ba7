"""Measure the firmware in simavr: AVR CPU load, board-side drops and simulator speed.

Run from the repository root: ``python3 firmware/sim/measure.py [--seconds S]``. For each
configuration it builds the firmware if needed, runs the harness for S simulated seconds
of sampling with a fast reader (os.read on the pty, frames checked by FrameDecoder), and
prints one Markdown table row; then it measures the harness's own CPU use when paced at
real time. The numbers in firmware/README.md come from this script.
"""

from __future__ import annotations

import argparse
import os
import resource
import select
import time

from emgfb.acquisition import avrsim
from emgfb.protocol import FrameDecoder

CONFIGS = [(6, 1000), (6, 2000), (6, 2600), (3, 4000), (1, 10000)]


def _run(build: avrsim.FirmwareBuild, n_ch: int, fs: int, seconds: float, speed: float = 0.0):
    board = avrsim.AvrSimBoard(build=build, max_seconds=seconds + 0.05, speed=speed)
    port = board.start()
    fd = os.open(port, os.O_RDWR | os.O_NOCTTY)
    os.write(fd, f"ch {n_ch}\nfs {fs}\n?\n".encode())
    buf = b""
    while buf.count(b"\n") < 2:  # boot line + answer to '?'
        select.select([fd], [], [], 10)
        buf += os.read(fd, 4096)
    assert f"ch={n_ch} fs={fs} ".encode() in buf.splitlines()[-1], buf
    os.write(fd, b"start\n")
    dec = FrameDecoder(n_ch)
    t0 = time.perf_counter()
    while True:
        ready, _, _ = select.select([fd], [], [], 10)
        try:
            data = os.read(fd, 1 << 16) if ready else b""
        except OSError:  # EIO: the harness reached --max-seconds and closed the pty
            break
        if not data:
            break
        dec.feed(data)
    wall = time.perf_counter() - t0
    os.close(fd)
    stats = board.stop()
    return dec.stats, stats, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="simulated seconds")
    args = parser.parse_args()
    build = avrsim.build_firmware()
    print("| config | frames | lost ticks | overrun flags | CRC errors | AVR load | sim speed |")
    print("|---|---|---|---|---|---|---|")
    for n_ch, fs in CONFIGS:
        dec, sim, wall = _run(build, n_ch, fs, args.seconds)
        print(
            f"| {n_ch} ch @ {fs} Hz | {dec.frames} | {dec.lost_ticks} | {dec.overrun_flags} | "
            f"{dec.crc_errors} | {100 * sim.cpu_load_sampling:.1f} % | "
            f"{sim.sim_seconds / wall:.1f}x real time |"
        )
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    dec, sim, wall = _run(build, 6, 2000, 5.0, speed=1.0)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(
        f"\npaced at real time, 6 ch @ 2000 Hz: harness used {100 * cpu / sim.wall_seconds:.1f} %"
        f" of one core ({dec.frames} frames, {dec.lost_ticks} lost)"
    )


if __name__ == "__main__":
    main()
