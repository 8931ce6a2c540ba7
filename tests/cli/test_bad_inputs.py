"""Every subcommand given bad input: one line on stderr, exit code 2, no traceback, no hang,
and no file in the test folder changed, created or left behind.

Most cases run in-process through ``emgfb.cli.main`` (fast); ``test_through_a_real_process``
runs a handful as real subprocesses with timeouts, where logging, the closed pipe and the
interpreter's exit are real.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest

from emgfb.cli import main
from emgfb.config import bundled_dir

from .conftest import FS, fingerprint, make_session

Setup = Callable[[Path], None]


# ------------------------------------------------------------------------------ the scene
def _scene(tmp_path: Path) -> dict[str, str]:
    """Good inputs in ``in/``, an empty ``out/`` folder; returns the placeholders."""
    inp, out = tmp_path / "in", tmp_path / "out"
    inp.mkdir()
    out.mkdir()
    session = make_session(inp / "s.h5")
    t = np.arange(int(FS)) / FS
    rng = np.random.default_rng(5)
    rows = "\n".join(f"{a:.4f},{b:.3f},{c:.3f}" for a, b, c in zip(
        t, 50 * rng.standard_normal(len(t)), 50 * rng.standard_normal(len(t)), strict=True))
    (inp / "good.csv").write_text("time,ZYG-L,ZYG-R\n" + rows + "\n")
    return {"s": str(session), "csv": str(inp / "good.csv"), "in": str(inp), "out": str(out),
            "bad": str(tmp_path / "bad" / "x")}


def _run(tmp_path: Path, argv: list[str], capsys: pytest.CaptureFixture,
         setup: Setup | None = None) -> tuple[int, str, str]:
    """Run ``emgfb argv`` in-process; check the folder is untouched; return rc, out, err."""
    paths = _scene(tmp_path)
    bad = Path(paths["bad"])
    bad.parent.mkdir()
    if setup is not None:
        setup(bad)
    argv = [a.format(**paths) for a in argv]
    before = fingerprint(tmp_path)
    capsys.readouterr()
    code = main(argv)
    out, err = capsys.readouterr()
    assert fingerprint(tmp_path) == before, f"emgfb {' '.join(argv)} changed the folder"
    return code, out, err


def _one_line_error(code: int, err: str, argv: list[str]) -> None:
    assert "Traceback" not in err
    assert code == 2, f"exit {code} for {argv}: {err!r}"
    assert err.count("\n") == 1 and err.endswith("\n"), f"not one line: {err!r}"
    assert err.startswith(f"emgfb {argv[0]}: error: "), err


# ------------------------------------------------------------------------- bad input files
def _bytes(data: bytes) -> Setup:
    return lambda p: p.write_bytes(data)


def _session_copy(edit: Callable[[h5py.File], None]) -> Setup:
    def setup(p: Path) -> None:
        make_session(p.with_suffix(".tmp"))
        with h5py.File(p.with_suffix(".tmp"), "r+") as f:
            edit(f)
        p.with_suffix(".tmp").rename(p)
    return setup


def _truncated(p: Path) -> None:
    make_session(p.with_suffix(".tmp"))
    data = p.with_suffix(".tmp").read_bytes()
    p.with_suffix(".tmp").unlink()
    p.write_bytes(data[: len(data) // 2])


def _foreign_hdf5(p: Path) -> None:
    with h5py.File(p, "w") as f:
        f["data"] = np.zeros((10, 2))


def _set_attr(name: str, value: object) -> Callable[[h5py.File], None]:
    def edit(f: h5py.File) -> None:
        f.attrs[name] = value
    return edit


BAD_FILES: dict[str, Setup | None] = {
    "missing": None,
    "directory": lambda p: p.mkdir(),
    "empty": _bytes(b""),
    "garbage": _bytes(np.random.default_rng(1).integers(0, 256, 4096, np.uint8).tobytes()),
    "truncated": _truncated,
    "foreign-png": _bytes(b"\x89PNG\r\n\x1a\n" + bytes(200)),
    "foreign-hdf5": _foreign_hdf5,
    "foreign-csv": _bytes(b"time,a\n0,1\n0.001,2\n"),
    "format-version-99": _session_copy(_set_attr("format_version", 99)),
    "format-name-wrong": _session_copy(_set_attr("format", "other-tool")),
    "fs-zero": _session_copy(_set_attr("fs", 0.0)),
    "fs-nan": _session_copy(_set_attr("fs", math.nan)),
}

#: Commands that read a session FILE ("{bad}").
SESSION_READERS = [
    ["info", "{bad}"],
    ["info", "{bad}", "--json"],
    ["export", "{bad}", "--format", "csv", "-o", "{out}/o.csv"],
    ["export", "{bad}", "--format", "edf", "-o", "{out}/o.edf"],
    ["report", "{bad}", "-o", "{out}/r.html", "-q"],
    ["replay", "{bad}", "--screenshot", "{out}/r.png", "--after", "0"],
    ["process", "{bad}", "-o", "{out}/o.csv"],
    ["stream", "--source", "file://{bad}", "--seconds", "0.2"],
    ["record", "--source", "file://{bad}?speed=0", "-o", "{out}/r.h5"],
]


def _cases_session_readers() -> list:
    cases = []
    for kind, setup in BAD_FILES.items():
        for argv in SESSION_READERS:
            if kind == "foreign-csv" and argv[0] == "process":
                continue  # a CSV is a valid input of process
            cases.append(pytest.param(argv, setup, id=f"{argv[0]}-{argv[-1][-3:]}-{kind}"))
    return cases


@pytest.mark.parametrize(("argv", "setup"), _cases_session_readers())
def test_bad_session_files(tmp_path, capsys, argv, setup):
    code, _, err = _run(tmp_path, argv, capsys, setup)
    _one_line_error(code, err, argv)


# ----------------------------------------------------------------- bad tables (CSV cells)
def _csv(text: str) -> Setup:
    return lambda p: p.write_text(text)


_HEAD = "time,ZYG-L,ZYG-R\n"
_GOOD_ROWS = "".join(f"{i / 1000:.3f},{i % 7},{i % 5}\n" for i in range(600))
BAD_TABLES: dict[str, Setup | None] = {
    "missing": None,
    "directory": lambda p: p.mkdir(),
    "empty": _csv(""),
    "header-only": _csv(_HEAD),
    "binary": BAD_FILES["garbage"],
    # (NaN/NULL/empty cells are lost samples by design, not errors: emgfb.dsp.signalfile)
    "inf-cell": _csv(_HEAD + _GOOD_ROWS + "0.600,inf,1\n" + "0.601,1,1\n"),
    "text-cell": _csv(_HEAD + _GOOD_ROWS + "0.600,abc,1\n" + "0.601,1,1\n"),
    "ragged": _csv(_HEAD + _GOOD_ROWS + "0.600,1\n"),
    "time-backwards": _csv(_HEAD + "0.002,1,1\n0.001,1,1\n0.000,1,1\n"),
    "time-ns": _csv(_HEAD + "".join(f"{i}e-9,1,1\n" for i in range(300))),
    "time-absurd": _csv(_HEAD + "".join(f"{i}e300,1,1\n" for i in range(300))),
}
TABLE_READERS = [
    ["process", "{bad}", "-o", "{out}/o.csv"],
    ["import", "{bad}", "-o", "{out}/i.h5", "--format", "csv"],
    ["import", "{bad}", "-o", "{out}/i.h5"],
]


def _table_cases() -> list:
    return [pytest.param(argv, setup, id=f"{'-'.join(argv[0:1] + argv[5:6])}-{kind}")
            for kind, setup in BAD_TABLES.items() for argv in TABLE_READERS]


@pytest.mark.parametrize(("argv", "setup"), _table_cases())
def test_bad_tables(tmp_path, capsys, argv, setup):
    code, _, err = _run(tmp_path, argv, capsys, setup)
    _one_line_error(code, err, argv)


# ------------------------------------------------------------------------- bad TOML files
def _toml(kind: str, name: str, key: str, value: str) -> Setup:
    """A bundled config with ``key``'s first occurrence set to ``value`` (``None``: append
    a line)."""
    def setup(p: Path) -> None:
        text = (bundled_dir(kind) / f"{name}.toml").read_text()
        lines = text.splitlines()
        for i, line in enumerate(lines):
            if line.split("=")[0].strip() == key:
                lines[i] = f"{key} = {value}"
                break
        else:
            raise AssertionError(f"{key} not in {kind}/{name}.toml")
        p.with_suffix(".toml").write_text("\n".join(lines) + "\n")
    return setup


BAD_VALUES = {"text": '"abc"', "nan": "nan", "inf": "inf", "huge": "1e300",
              "negative": "-1", "array": "[1, 2]", "table": "{ a = 1 }"}
TOML_KEYS = {  # (config kind, bundled name, key, option of a command using it)
    "dsp-low_hz": ("dsp", "default", "low_hz"),
    "dsp-order": ("dsp", "default", "order"),
    "frontend-gain": ("frontends", "bioamp", "gain"),
    "protocol-duration_s": ("protocols", "demo", "duration_s"),
    "protocol-reps": ("protocols", "demo", "reps"),
    "board-adc_bits": ("boards", "uno", "adc_bits"),
    "board-default_fs": ("boards", "uno", "default_fs"),
}
TOML_USERS = {
    "dsp": [["process", "{csv}", "-o", "{out}/o.csv", "--config", "{bad}.toml"],
            ["export", "{s}", "--format", "csv", "--what", "envelope", "--dsp", "{bad}.toml",
             "-o", "{out}/o.csv"],
            ["record", "--source", "sim://?speed=0", "--seconds", "0.1", "--dsp",
             "{bad}.toml", "-o", "{out}/r.h5"]],
    "frontends": [["boards", "--board", "uno", "--frontend", "{bad}.toml"],
                  ["record", "--source", "sim://?speed=0", "--seconds", "0.1", "--frontend",
                   "{bad}.toml", "-o", "{out}/r.h5"]],
    "protocols": [["session", "--headless", "--protocol", "{bad}.toml", "-o", "{out}/s.h5"]],
    "boards": [["boards", "--board", "{bad}.toml", "--frontend", "bioamp"]],
}


def _toml_cases() -> list:
    cases = []
    for key_id, (kind, name, key) in TOML_KEYS.items():
        for vid, value in BAD_VALUES.items():
            for argv in TOML_USERS[kind]:
                cases.append(pytest.param(argv, _toml(kind, name, key, value),
                                          id=f"{argv[0]}-{key_id}-{vid}"))
    for kind, users in TOML_USERS.items():
        for argv in users:
            cases.append(pytest.param(argv, lambda p: p.with_suffix(".toml").write_text(
                "[not toml\nx = "), id=f"{argv[0]}-{kind}-not-toml"))
            cases.append(pytest.param(argv, lambda p: p.with_suffix(".toml").write_bytes(
                b"\xff\xfe\x00garbage"), id=f"{argv[0]}-{kind}-binary"))
            cases.append(pytest.param(argv, None, id=f"{argv[0]}-{kind}-missing"))
    return cases


@pytest.mark.parametrize(("argv", "setup"), _toml_cases())
def test_bad_toml(tmp_path, capsys, argv, setup):
    code, _, err = _run(tmp_path, argv, capsys, setup)
    _one_line_error(code, err, argv)


# --------------------------------------------------------------------- absurd option values
ABSURD = ["nan", "inf", "-inf", "-1", "1e300", "abc", ""]
NUMBER_OPTIONS = [  # argv before the value, the option
    (["record", "--source", "sim://?speed=0", "-o", "{out}/r.h5"], "--seconds"),
    (["stream", "--source", "sim://?speed=0"], "--seconds"),
    (["process", "{csv}", "-o", "{out}/o.csv"], "--fs"),
    (["import", "{csv}", "-o", "{out}/i.h5"], "--fs"),
    (["ports"], "--baud"),
    (["ports"], "--timeout"),
    (["boards", "--board", "uno", "--frontend", "bioamp"], "--fs"),
    (["boards", "--board", "uno", "--frontend", "bioamp"], "--channels"),
    (["virtual-board"], "--fs"),
    (["virtual-board"], "--channels"),
    (["virtual-board"], "--speed"),
    (["virtual-board"], "--tcp"),
    (["virtual-board"], "--seed"),
    (["live", "--screenshot", "{out}/l.png"], "--fps"),
    (["live", "--screenshot", "{out}/l.png"], "--after"),
    (["live", "--screenshot", "{out}/l.png"], "--size"),
    (["replay", "{s}", "--screenshot", "{out}/l.png"], "--speed"),
    (["replay", "{s}", "--screenshot", "{out}/l.png"], "--start"),
    (["session", "--headless", "--protocol", "demo", "-o", "{out}/s.h5"], "--seed"),
]
ZERO_IS_ABSURD = {"--seconds", "--fs", "--baud", "--channels", "--fps", "--size"}


def _option_cases() -> list:
    cases = []
    for argv, opt in NUMBER_OPTIONS:
        values = [*ABSURD, "0"] if opt in ZERO_IS_ABSURD else ABSURD
        if opt == "--size":
            values = ["0x0", "-5x100", "100000x100000", "wide", "200x"]
        if opt in ("--fs",):
            values = [*values, "1e9"]
        for v in values:
            cases.append(pytest.param([*argv, opt, v], id=f"{argv[0]}{opt}={v}"))
    cases.append(pytest.param(["record", "--source", "sim://?fs=1e9&speed=0", "-o",
                               "{out}/r.h5"], id="record-sim-fs=1e9"))
    cases.append(pytest.param(["stream", "--source", "sim://?ch=99"], id="stream-sim-ch=99"))
    cases.append(pytest.param(["stream", "--source", "sim://?speed=nan"], id="stream-speed=nan"))
    return cases


@pytest.mark.parametrize("argv", _option_cases())
def test_absurd_numbers(tmp_path, capsys, argv):
    code, _, err = _run(tmp_path, argv, capsys)
    _one_line_error(code, err, argv)


# --------------------------------------------------------------------------------- outputs
WRITERS = [  # argv with {o} for the output
    ["export", "{s}", "--format", "csv", "-o", "{o}"],
    ["export", "{s}", "--format", "edf", "-o", "{o}"],
    ["report", "{s}", "-o", "{o}", "-q"],
    ["progress", "{in}", "-o", "{o}", "-q"],
    ["process", "{s}", "-o", "{o}"],
    ["process", "{csv}", "-o", "{o}"],
    ["import", "{csv}", "-o", "{o}"],
    ["record", "--source", "sim://?speed=0", "--seconds", "0.1", "-o", "{o}"],
    ["session", "--headless", "--protocol", "demo", "-o", "{o}"],
    ["live", "--screenshot", "{o}", "--after", "0"],
    ["replay", "{s}", "--screenshot", "{o}", "--after", "0"],
]
OUTPUTS = {  # where the output goes; force: also try with --force where the command has it
    "missing-folder": "{out}/nope/o.x",
    "is-a-directory": "{out}",
    "is-the-session": "{s}",
    "is-the-csv": "{csv}",
    "existing": "{in}/s.h5",
}
_HAS_FORCE = {"export", "report", "progress", "process"}


def _output_cases() -> list:
    cases = []
    for argv in WRITERS:
        for oid, o in OUTPUTS.items():
            tag = "-".join(argv[:2]) if argv[0] in ("export", "process") else argv[0]
            if argv[0] == "process" and argv[1] == "{s}":
                tag = "process-h5"
            elif argv[0] == "process":
                tag = "process-csv"
            if argv[0] == "export":
                tag = f"export-{argv[3]}"
            if oid == "is-the-csv" and "{csv}" not in argv:
                continue  # replacing a CSV it does not read is allowed (with --force)
            full = [a.replace("{o}", o) for a in argv]
            cases.append(pytest.param(full, id=f"{tag}-{oid}"))
            if argv[0] in _HAS_FORCE and oid in ("is-the-session", "is-the-csv", "existing"):
                cases.append(pytest.param([*full, "--force"], id=f"{tag}-{oid}-force"))
    return cases


@pytest.mark.parametrize("argv", _output_cases())
def test_refused_outputs(tmp_path, capsys, argv):
    code, _, err = _run(tmp_path, argv, capsys)
    _one_line_error(code, err, argv)


@pytest.mark.parametrize("argv", WRITERS, ids=lambda a: "-".join(a[:2]).replace("{", "")
                         .replace("}", ""))
def test_read_only_output_folder(tmp_path, capsys, readonly_dir, argv):
    ext = {"export": ".csv", "record": ".h5", "session": ".h5", "import": ".h5"}
    argv = [a.replace("{o}", str(readonly_dir / f"o{ext.get(argv[0], '.x')}")) for a in argv]
    code, _, err = _run(tmp_path, argv, capsys)
    _one_line_error(code, err, argv)
    assert "is not writable" in err


def test_a_full_disk_leaves_no_partial_output(tmp_path, capsys, full_dir):
    argv = ["export", "{s}", "--format", "csv", "-o", str(full_dir / "o.csv")]
    code, _, err = _run(tmp_path, argv, capsys)
    _one_line_error(code, err, argv)
    assert "No space left on device" in err and list(full_dir.iterdir()) == []


# ----------------------------------------------------------------------- real subprocesses
def _emgfb(args: list[str], cwd: Path, timeout: float = 60, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONWARNINGS": "error"}
    kw.setdefault("stdout", subprocess.PIPE)
    return subprocess.run([sys.executable, "-m", "emgfb", *args], cwd=cwd, env=env,
                          stderr=subprocess.PIPE, timeout=timeout, check=False, **kw)


@pytest.mark.parametrize("argv", [
    ["record", "--source", "sim://?speed=0", "-o", "{out}/r.h5", "--seconds", "nan"],
    ["process", "{csv}", "-o", "{csv}"],
    ["live", "--screenshot", "{out}/nope/x.png", "--after", "0"],
    ["session", "--headless", "--protocol", "{bad}.toml", "-o", "{out}/s.h5"],
    ["info", "{bad}"],
], ids=["record-nan", "process-onto-input", "live-screenshot-nowhere", "session-bad-toml",
        "info-missing"])
def test_through_a_real_process(tmp_path, argv):
    paths = _scene(tmp_path)
    Path(paths["bad"]).parent.mkdir()
    Path(paths["bad"] + ".toml").write_text("[[step]]\nkind = 'rest'\nduration_s = 1e12\n")
    argv = [a.format(**paths) for a in argv]
    before = fingerprint(tmp_path)
    proc = _emgfb(argv, tmp_path)
    err = proc.stderr.decode()
    assert fingerprint(tmp_path) == before
    _one_line_error(proc.returncode, err, argv)


@pytest.mark.parametrize("argv", [["info", "{s}"], ["boards"], ["info", "{s}", "--json"]],
                         ids=lambda a: "-".join(a).replace("{s}", "s"))
def test_a_closed_pipe_ends_quietly(tmp_path, argv):
    paths = _scene(tmp_path)
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader (``| head``) is gone before emgfb writes
    try:
        proc = _emgfb([a.format(**paths) for a in argv], tmp_path, stdout=write_end)
    finally:
        os.close(write_end)
    assert proc.stderr == b"" and proc.returncode == 141
