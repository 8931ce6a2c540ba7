"""Delimited text (CSV/TSV): the one tokenizer every emgfb reader of text tables uses.

This module owns the rules for reading delimited text, so that every file emgfb writes,
emgfb reads back and every reader agrees on what a line means:

* Text is UTF-8 (a byte-order mark is ignored), Latin-1 as a fallback; a NUL byte in the
  first 4 KiB means binary content, not text.
* Lines whose first non-blank character is ``#`` are comment or provenance lines (emgfb
  writes its export and processing metadata there); every reader skips them and may look
  at them through :attr:`TextTable.comments`. Blank lines are skipped too.
* Cells follow RFC 4180 quoting: a cell in double quotes may hold the delimiter and
  doubled quotes (``"rep:a, b"``). The delimiter is comma, tab or semicolon, chosen from
  the first non-comment line (outside quotes).
* Numeric cells: empty, ``NULL``, ``NaN``, ``NA``, ``N/A`` and ``None`` are missing values
  (NaN). Anything else that is not a finite number (``inf`` included) is an error naming
  the line.

Numeric blocks take a fast path through :func:`numpy.loadtxt` (C parser) and fall back to
a per-cell parse only to handle missing-value words or to name the first bad line.
Imports numpy and ``emgfb.errors`` only.
"""

from __future__ import annotations

import csv
import math
import operator
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from emgfb.errors import DataFormatError

#: Delimiters a table may use, in the order they are preferred on a tie.
DELIMITERS = (",", "\t", ";")
#: Cell words meaning "no value" (compared case-insensitively).
MISSING = frozenset({"", "null", "nan", "na", "n/a", "none"})
COMMENT = "#"


def fail(path: Path | str, what: str) -> DataFormatError:
    """The one-line error of a text reader: ``"<path>: <what>"``."""
    return DataFormatError(f"{path}: {what}")


def read_text(path: Path) -> str:
    """Decode ``path`` as text (UTF-8 with optional BOM, else Latin-1).

    Raises
    ------
    DataFormatError
        Binary content (a NUL byte in the first 4 KiB) or an unreadable file.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise fail(path, f"cannot read ({exc.strerror or exc})") from None
    if b"\x00" in raw[:4096]:
        raise fail(path, "binary content, expected a text file")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def is_comment(line: str) -> bool:
    """True for a ``#`` comment/provenance line."""
    return line.lstrip().startswith(COMMENT)


@dataclass
class TextTable:
    """The lines of a text table, split into comments and content.

    Attributes
    ----------
    path
        The file (for error messages).
    comments
        The ``#`` lines, without the ``#`` and surrounding blanks, in file order.
    lines
        The non-blank, non-comment lines.
    line_no
        1-based line number in the file of each entry of ``lines``.
    """

    path: Path
    comments: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    line_no: Sequence[int] = field(default_factory=list)

    def delimiter(self) -> str:
        """The delimiter of the first content line (most frequent outside quotes)."""
        first = _unquoted(self.lines[0]) if self.lines else ""
        return max(DELIMITERS, key=first.count)

    def cells(self, index: int, delimiter: str) -> list[str]:
        """Cells of content line ``index`` (quotes removed, blanks around cells stripped)."""
        return split_line(self.lines[index], delimiter)

    def numeric(self, start: int, delimiter: str, n_cols: int | None = None,
                usecols: Sequence[int] | None = None,
                trailing_delimiter: bool = False) -> np.ndarray:
        """Parse content lines ``start..`` as numbers (see :func:`numeric_rows`)."""
        return numeric_rows(self.lines[start:], delimiter, self.path,
                            self.line_no[start:], n_cols=n_cols, usecols=usecols,
                            trailing_delimiter=trailing_delimiter)


def split_table(path: Path, text: str) -> TextTable:
    """Split ``text`` into ``#`` comments and content lines, remembering line numbers.

    Comments and blank lines usually sit at the top only: the rest is then taken whole
    (one regular-expression scan instead of a look at every line).
    """
    table = TextTable(path)
    lines = text.splitlines()
    top = 0
    while top < len(lines) and (not lines[top].strip() or is_comment(lines[top])):
        if lines[top].strip():
            table.comments.append(lines[top].lstrip()[1:].strip())
        top += 1
    offset = 0
    for _ in range(top):  # where the content starts in ``text``
        offset = text.find("\n", offset) + 1
    rest = text[offset:].rstrip("\r\n")
    plain = not any(s in rest for s in ("#", "\n\n", "\n\r\n", "\r\r", "\n ", "\n\t"))
    if plain or _SKIPPED.search(rest) is None:
        end = len(lines)
        while end > top and not lines[end - 1].strip():
            end -= 1
        table.lines = lines[top:end]
        table.line_no = range(top + 1, end + 1)
        return table
    numbers: list[int] = []
    for no in range(top, len(lines)):
        line = lines[no]
        if not line.strip():
            continue
        if is_comment(line):
            table.comments.append(line.lstrip()[1:].strip())
        else:
            table.lines.append(line)
            numbers.append(no + 1)
    table.line_no = numbers
    return table


#: A blank or comment line after the first content line.
_SKIPPED = re.compile(r"^[ \t\f\v\r]*(#|$)", re.MULTILINE)


def read_table(path: Path) -> TextTable:
    """Read and split a text table (:func:`read_text` then :func:`split_table`)."""
    return split_table(path, read_text(path))


def _unquoted(line: str) -> str:
    """``line`` with quoted sections removed (to count delimiters)."""
    if '"' not in line:
        return line
    return "".join(line.split('"')[::2])


def split_line(line: str, delimiter: str | None) -> list[str]:
    """Cells of one line with RFC 4180 quoting, blanks around each cell stripped."""
    if delimiter is None or delimiter == " ":
        return line.split()
    if '"' not in line:
        return [c.strip() for c in line.split(delimiter)]
    return [c.strip() for c in next(csv.reader([line], delimiter=delimiter))]


def split_lines(lines: Iterable[str], delimiter: str) -> list[list[str]]:
    """Cells of many lines (C tokenizer; quoted cells may hold the delimiter)."""
    return [[c.strip() for c in row] for row in csv.reader(lines, delimiter=delimiter)]


def cell_value(text: str) -> float:
    """One numeric cell: a float, or NaN for a missing-value word.

    Raises
    ------
    ValueError
        If the cell is neither.
    """
    s = text.strip().strip('"').strip()
    if s.lower() in MISSING:
        return math.nan
    return float(s)


def is_cell(text: str) -> bool:
    """True if ``text`` is a numeric cell: :func:`cell_value` reads it (a float or a
    missing-value word)."""
    try:
        cell_value(text)
    except ValueError:
        return False
    return True


def is_number(text: str) -> bool:
    """True if ``text`` parses as a float."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def numeric_rows(
    lines: Sequence[str], delimiter: str | None, path: Path, line_no: Sequence[int] | int,
    *, n_cols: int | None = None, usecols: Sequence[int] | None = None,
    trailing_delimiter: bool = False,
) -> np.ndarray:
    """Parse delimited numeric rows to float64; missing-value cells become NaN.

    Parameters
    ----------
    lines
        Content lines (no blanks, no comments).
    delimiter
        ``","``, ``"\\t"``, ``";"``, or None for runs of blanks.
    path
        For error messages.
    line_no
        File line number of each line, or of the first line (consecutive lines).
    n_cols
        Columns every row must have (default: as many as the first row).
    usecols
        Only these columns are returned (the others need not be numeric).
    trailing_delimiter
        Rows end with one extra delimiter (OpenSignals' tab), which is not a column.

    Raises
    ------
    DataFormatError
        One line naming the first row with the wrong number of cells, a word or an
        infinite value.
    """
    if not lines:
        raise fail(path, "no data rows found")
    first_cells = split_line(lines[0], delimiter)
    if trailing_delimiter and first_cells and first_cells[-1] == "":
        first_cells = first_cells[:-1]
    if n_cols is None:
        n_cols = len(first_cells)
    arr = _fast_rows(lines, delimiter, n_cols, usecols, trailing_delimiter)
    if arr is None:
        arr = _slow_rows(lines, delimiter, path, line_no, n_cols, usecols, trailing_delimiter)
    infinite = np.isinf(arr).any(axis=1)
    if infinite.any():  # "inf" parses as a float but is no measurement
        i = int(np.argmax(infinite))
        raise fail(path, f"line {line_no + i if isinstance(line_no, int) else line_no[i]}: an "
                   "infinite value, expected finite numbers (or empty/NULL/NaN for a missing "
                   "value)")
    return arr


def _fast_rows(lines: Sequence[str], delimiter: str | None, n_cols: int,
               usecols: Sequence[int] | None, trailing: bool) -> np.ndarray | None:
    """numpy's C parser when every row is regular; None to take the careful path."""
    quoted = sum(map(_count('"'), lines)) > 0
    if not quoted and delimiter is not None:
        # every row must have exactly n_cols cells: count delimiters in C
        per_row = n_cols - 1 + (1 if trailing else 0)
        if sum(map(_count(delimiter), lines)) != per_row * len(lines):
            return None
    cols = list(usecols) if usecols is not None else list(range(n_cols))
    try:
        arr = np.loadtxt(lines, delimiter=delimiter, usecols=cols, dtype=np.float64,
                         ndmin=2, comments=None, quotechar='"' if quoted else None)
    except ValueError:
        return None
    if arr.shape != (len(lines), len(cols)):
        return None
    return arr


def _count(sub: str) -> operator.methodcaller:
    return operator.methodcaller("count", sub)


def _slow_rows(lines: Sequence[str], delimiter: str | None, path: Path,
               line_no: Sequence[int] | int, n_cols: int, usecols: Sequence[int] | None,
               trailing: bool) -> np.ndarray:
    def number(i: int) -> int:
        return line_no + i if isinstance(line_no, int) else line_no[i]

    rows = (split_lines(lines, delimiter) if delimiter not in (None, " ")
            else [ln.split() for ln in lines])
    cols = list(usecols) if usecols is not None else None
    out = np.empty((len(rows), len(cols) if cols is not None else n_cols))
    for i, cells in enumerate(rows):
        if trailing and cells and cells[-1] == "":
            cells = cells[:-1]
        if len(cells) != n_cols:
            raise fail(path, f"line {number(i)} has {len(cells)} columns, expected {n_cols} "
                       "(truncated or not this format?)")
        picked = cells if cols is None else [cells[j] for j in cols]
        try:
            out[i] = [cell_value(c) for c in picked]
        except ValueError:
            bad = next(c for c in picked if not _is_cell(c))
            raise fail(path, f"line {number(i)}: cell {bad[:40]!r} is not a number, expected "
                       "numbers (or empty/NULL/NaN for a missing value)") from None
    return out


def _is_cell(text: str) -> bool:
    try:
        cell_value(text)
    except ValueError:
        return False
    return True


def quote_cell(text: str, delimiter: str = ",") -> str:
    """``text`` as one CSV cell, quoted when it holds the delimiter, a quote or a newline."""
    if any(c in text for c in (delimiter, '"', "\n", "\r")) or text != text.strip():
        return '"' + text.replace('"', '""') + '"'
    return text


def comment_lines(pairs: Iterable[tuple[str, str]]) -> str:
    """``# key: value`` lines (newline-terminated) for a provenance header."""
    return "".join(f"# {k}: {' '.join(str(v).split())}\n" for k, v in pairs)
