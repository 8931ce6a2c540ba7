"""The one CSV tokenizer: comments, quoting, missing values, fast and careful paths agree."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from emgfb.delimited import numeric_rows, quote_cell, read_table, split_line
from emgfb.errors import DataFormatError


def test_comments_blank_lines_and_quoted_cells(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text('\ufeff# emgfb export: what=uv\n\n  # indented comment\ntime,a,marker\n'
                    '0.0,1.5,"rep:a, b"\n0.5,NULL,\n', encoding="utf-8")
    table = read_table(path)
    assert table.comments == ["emgfb export: what=uv", "indented comment"]
    assert list(table.line_no) == [4, 5, 6]
    assert table.delimiter() == ","
    assert table.cells(1, ",") == ["0.0", "1.5", "rep:a, b"]
    vals = table.numeric(1, ",", n_cols=3, usecols=[0, 1])
    np.testing.assert_array_equal(vals, [[0.0, 1.5], [0.5, np.nan]])


def test_delimiter_inside_quotes_does_not_count(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text('"a;b";"c;d";e\n1;2;3\n')
    assert read_table(path).delimiter() == ";"


@pytest.mark.parametrize(("body", "needle"), [
    ("1,2\n3,4,5\n", "line 3 has 3 columns, expected 2"),
    ("1,2\n3,oops\n", "line 3: cell 'oops' is not a number"),
])
def test_bad_rows_name_the_line(tmp_path, body, needle):
    path = tmp_path / "bad.csv"
    path.write_text("# comment\n" + body)
    table = read_table(path)
    with pytest.raises(DataFormatError) as err:
        table.numeric(0, ",")
    assert needle in str(err.value) and "\n" not in str(err.value) and str(path) in str(
        err.value)


def test_fast_path_equals_careful_path(rng):
    x = np.round(rng.normal(0, 100, size=(500, 6)), 3)
    lines = [",".join(f"{v:g}" for v in row) for row in x]
    fast = numeric_rows(lines, ",", Path("f"), 1)
    lines[7] = lines[7].replace(lines[7].split(",")[2], "NaN", 1)
    lines[9] = ",".join(["NULL"] * 6)
    slow = numeric_rows(lines, ",", Path("f"), 1)  # NULL forces the per-cell path
    np.testing.assert_array_equal(fast, x)
    assert np.isnan(slow[9]).all() and np.isnan(slow[7, 2])
    ok = np.ones(len(x), bool)
    ok[[7, 9]] = False
    np.testing.assert_array_equal(slow[ok], x[ok])


def test_trailing_delimiter_is_not_a_column():
    rows = numeric_rows(["1\t2\t", "3\t4\t"], "\t", Path("f"), 1, trailing_delimiter=True)
    np.testing.assert_array_equal(rows, [[1, 2], [3, 4]])


@pytest.mark.parametrize("text", ["plain", "a, b", 'say "hi", then relax'])
def test_quote_cell_round_trips_through_split_line(text):
    assert split_line(f"1,{quote_cell(text)},2", ",") == ["1", text, "2"]


@pytest.mark.parametrize("text", ["a,b\r\n1,2\r\n\r\n3,4\r\n", "a,b\n1,2\n  \n# late\n3,4\n",
                                  "a,b\n1,2\n3,4\n\n\n"])
def test_blank_and_comment_lines_below_the_header_are_skipped(tmp_path, text):
    path = tmp_path / "t.csv"
    path.write_bytes(text.encode())
    table = read_table(path)
    assert table.lines == ["a,b", "1,2", "3,4"]
    np.testing.assert_array_equal(table.numeric(1, ","), [[1, 2], [3, 4]])
