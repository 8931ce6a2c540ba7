"""Small widgets offscreen: the polyline trace curve and the eliding hint text."""

from __future__ import annotations

import numpy as np
import pytest
from PyQt5 import QtGui

from emgfb.gui.widgets import ElidedText, TraceCurve, set_curve


def _parts(curve: TraceCurve) -> list[np.ndarray]:
    return [np.array([(p.x(), p.y()) for p in part]) for part in curve._parts]


def test_trace_curve_draws_one_polyline_without_gaps(qapp):
    c = TraceCurve(QtGui.QPen())
    x = np.arange(5.0)
    y = np.array([1.0, -1.0, 2.0, 0.5, 3.0])
    set_curve(c, x, y)
    parts = _parts(c)
    assert len(parts) == 1
    np.testing.assert_array_equal(parts[0], np.column_stack([x, y]))
    assert c.getData()[1] is y
    assert c.boundingRect().left() == 0.0 and c.boundingRect().width() == 4.0


def test_trace_curve_splits_at_gaps_and_reuses_its_buffer(qapp):
    c = TraceCurve(QtGui.QPen())
    x = np.arange(8.0)
    set_curve(c, x, np.array([np.nan, 1, 2, np.nan, 4, np.nan, 6, 7]))
    parts = _parts(c)
    # a lone point between gaps draws nothing (as pyqtgraph's connect="finite")
    assert [p[:, 0].tolist() for p in parts] == [[1, 2], [6, 7]]
    set_curve(c, x, np.arange(8.0) * 2)
    assert len(_parts(c)) == 1 and _parts(c)[0][-1].tolist() == [7, 14]
    set_curve(c, x, np.full(8, np.nan))
    assert _parts(c) == []


def test_elided_text_fits_its_box_and_offers_the_full_text(qtbot):
    long = ("Electrode 3: strong mains hum: press the electrodes on, check the reference "
            "electrode, run the laptop on battery.")
    w = ElidedText(long)
    line, height = w.fontMetrics().lineSpacing(), w.fontMetrics().height()
    w.resize(200, line + height)  # room for exactly two lines
    w.show()
    assert w.elided and len(w._lines) == 2 and w._lines[-1].endswith("…")
    w.resize(200, line + height - 1)
    assert len(w._lines) == 1
    assert w.toolTip() == long
    assert all(w.fontMetrics().horizontalAdvance(t) <= 200 for t in w._lines)
    w.resize(2000, 3 * line)
    assert not w.elided and w.toolTip() == "" and w._lines == [long]
    w.setText("Signal looks good.")
    assert w.text() == "Signal looks good." and w._lines == ["Signal looks good."]


def _ink(width: int) -> int:
    """Pixels a flat-ish diagonal trace of ``width`` paints on a white 200x100 image."""
    from PyQt5 import QtCore, QtWidgets

    scene = QtWidgets.QGraphicsScene(0, 0, 200, 100)
    c = TraceCurve(QtGui.QPen(QtGui.QColor("#000000")), width)
    scene.addItem(c)
    x = np.linspace(10, 190, 50)
    set_curve(c, x, 20 + 0.3 * x)
    img = QtGui.QImage(200, 100, QtGui.QImage.Format_RGB32)
    img.fill(QtCore.Qt.white)
    p = QtGui.QPainter(img)
    scene.render(p, QtCore.QRectF(0, 0, 200, 100), QtCore.QRectF(0, 0, 200, 100))
    p.end()
    ptr = img.constBits()
    ptr.setsize(img.sizeInBytes())
    px = np.frombuffer(ptr, np.uint32).reshape(100, 200)
    return int((px != 0xFFFFFFFF).sum())


def test_wide_trace_curves_are_thicker(qapp):
    one, two, three = _ink(1), _ink(2), _ink(3)
    assert 170 < one < 220  # ~one pixel per column over 180 columns
    assert 1.8 * one < two < 2.6 * one  # a 2x2 brush: 2 rows plus the stair steps
    assert 2.6 * one < three < 3.6 * one
    with pytest.raises(ValueError, match="width"):
        TraceCurve(QtGui.QPen(), 4)
