"""Bundled configs are package data found through importlib.resources, wherever installed."""

from __future__ import annotations

from importlib import resources

import pytest

import emgfb.config
from emgfb.cli import main
from emgfb.config import bundled_dir, bundled_names, resolve_config
from emgfb.errors import ConfigError


def test_every_kind_is_bundled_inside_the_package():
    root = resources.files("emgfb") / "configs"
    assert bundled_dir("boards") == root / "boards"
    assert bundled_names("boards") == ["mega", "nano", "uno"]
    assert "face6" in bundled_names("montages")
    assert "demo" in bundled_names("protocols")
    assert bundled_names("dsp") == ["default"]
    assert bundled_names("no-such-kind") == []


def test_unknown_name_lists_the_bundled_choices():
    with pytest.raises(ConfigError, match=r"no montages config named 'face9'; expected a "
                                          r"\.toml path or one of: face6, face8$"):
        resolve_config("face9", "montages")


def test_boards_with_nothing_bundled_is_an_error(tmp_path, monkeypatch, capsys):
    (tmp_path / "boards").mkdir()
    monkeypatch.setattr(emgfb.config, "bundled_dir", lambda kind: tmp_path / kind)
    assert main(["boards"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"emgfb boards: error: {tmp_path / 'boards'}: no bundled boards descriptors "
                   f"found; expected *.toml files there (reinstall emgfb)"]
