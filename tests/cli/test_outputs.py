"""The output rule (emgfb.outputs): inputs and sessions are never written over, an existing
output only with force, the temporary file never survives a failure."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from emgfb.errors import RecordingError
from emgfb.outputs import HDF5_SIGNATURE, atomic_output, check_output, is_hdf5, new_output

from .conftest import fingerprint


def test_hdf5_is_recognised_by_signature_not_by_extension(session: Path, tmp_path: Path):
    disguised = tmp_path / "notes.txt"
    disguised.write_bytes(session.read_bytes())
    after_user_block = tmp_path / "ub.dat"
    after_user_block.write_bytes(b"x" * 512 + HDF5_SIGNATURE + b"rest")
    text = tmp_path / "fake.h5"
    text.write_text("time,a\n0,1\n")
    assert is_hdf5(session) and is_hdf5(disguised) and is_hdf5(after_user_block)
    assert not is_hdf5(text) and not is_hdf5(tmp_path / "missing") and not is_hdf5(tmp_path)


def test_a_session_is_never_replaced_even_with_force(session: Path, tmp_path: Path):
    disguised = tmp_path / "out.csv"
    disguised.write_bytes(session.read_bytes())
    for target in (session, disguised):
        with pytest.raises(RecordingError, match="never writes over a recording"):
            check_output(target, force=True)


def test_the_input_is_never_the_output_by_any_name(tmp_path: Path):
    src = tmp_path / "in.csv"
    src.write_text("time,a\n")
    link = tmp_path / "link.csv"
    link.symlink_to(src)
    hard = tmp_path / "hard.csv"
    os.link(src, hard)
    for name in (src, link, hard, tmp_path / "." / "in.csv"):
        with pytest.raises(RecordingError, match="is also the input"):
            check_output(name, inputs=[src], force=True)


@pytest.mark.parametrize(("make", "match"), [
    (lambda p: p.mkdir(), "is a directory"),
    (lambda p: p.write_text("old"), "already exists; choose another name or pass --force"),
    (lambda p: p.symlink_to(p.parent / "nowhere"), "already exists"),
])
def test_check_output_refuses(tmp_path: Path, make, match):
    out = tmp_path / "out.csv"
    make(out)
    with pytest.raises(RecordingError, match=match):
        check_output(out)


def test_a_command_without_force_never_suggests_it(tmp_path: Path, readonly_dir: Path):
    """``record``, ``import`` and ``session`` have no --force: their one line must not
    send the user looking for it, whatever the existing file is."""
    for name, content in (("old.csv", b"old"), ("old.h5", b"\x89HDF\r\n\x1a\n" + bytes(8))):
        out = tmp_path / name
        out.write_bytes(content)
        with pytest.raises(RecordingError) as err:
            check_output(out, force=None, what="recording")
        assert str(err.value) == (f"{out}: already exists; emgfb never overwrites a "
                                  f"recording, choose another name")
        assert out.read_bytes() == content
    with pytest.raises(RecordingError, match="is not writable"):
        check_output(readonly_dir / "new.h5", force=None, what="recording")


def test_missing_and_read_only_folders_are_refused_up_front(tmp_path: Path, readonly_dir: Path):
    with pytest.raises(RecordingError, match="does not exist"):
        check_output(tmp_path / "nope" / "out.csv")
    with pytest.raises(RecordingError, match="is not writable"):
        check_output(readonly_dir / "out.csv")


def test_atomic_output_moves_into_place_and_replaces_only_with_force(tmp_path: Path):
    out = tmp_path / "out.csv"
    with atomic_output(out) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".")
        tmp.write_text("one")
    assert out.read_text() == "one"
    with pytest.raises(RecordingError, match="already exists"):
        with atomic_output(out) as tmp:
            tmp.write_text("two")
    with atomic_output(out, force=True) as tmp:
        tmp.write_text("two")
    assert out.read_text() == "two"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_a_failing_writer_leaves_nothing_behind(tmp_path: Path):
    out = tmp_path / "out.csv"
    out.write_text("keep me")
    before = fingerprint(tmp_path)
    with pytest.raises(ZeroDivisionError):
        with atomic_output(out, force=True) as tmp:
            tmp.write_text("half")
            _ = 1 / 0
    assert fingerprint(tmp_path) == before


def test_someone_creating_the_output_meanwhile_wins(tmp_path: Path):
    out = tmp_path / "out.csv"
    with pytest.raises(RecordingError, match="already exists"):
        with atomic_output(out) as tmp:
            tmp.write_text("mine")
            out.write_text("theirs")
    assert out.read_text() == "theirs"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_a_full_disk_is_one_line_and_leaves_no_temporary_file(full_dir: Path):
    out = full_dir / "big.csv"
    with pytest.raises(RecordingError, match=r"big.csv: cannot write \(No space left"):
        with atomic_output(out) as tmp:
            tmp.write_bytes(b"x" * 64_000)
    assert list(full_dir.iterdir()) == []


def test_new_output_removes_what_a_failed_start_created(tmp_path: Path):
    out = tmp_path / "rec.h5"
    with pytest.raises(RecordingError):
        with new_output(out):
            out.write_bytes(HDF5_SIGNATURE)
            raise RecordingError("board went away")
    assert not out.exists()
    with pytest.raises(KeyboardInterrupt):
        with new_output(out) as claim:
            out.write_bytes(HDF5_SIGNATURE)
            claim.keep_when(lambda: True)  # it holds samples: keep it
            raise KeyboardInterrupt
    assert out.exists()
    with pytest.raises(RecordingError, match="never overwrites a recording"):
        with new_output(out):
            pass
