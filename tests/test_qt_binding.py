"""The Qt binding itself: what the app relies on from PySide6."""

import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6 import __version__ as PYSIDE_VERSION  # noqa: E402
from PySide6.QtCore import QCoreApplication, QObject, Signal  # noqa: E402


class _Emitter(QObject):
    text = Signal(str)
    pair = Signal(int, int)


def test_emitting_signals_keeps_python_reference_counts(qapp):
    """PySide6 6.12.0's ``Signal.emit()`` returns ``True`` without taking a reference, so every emit from
    Python drops one. The workers emit per step, tile and preview (a 57-step detail run of a small photo:
    ~117 emits), and on Python < 3.12, where ``True`` is not immortal, the app aborts with
    "bool_dealloc" after ~10^4 of them. pyproject.toml excludes that release; this keeps it excluded."""
    assert QCoreApplication.instance() is not None
    w = _Emitter()
    got = []
    w.text.connect(got.append)
    w.pair.connect(lambda a, b: got.append(a + b))
    before_true, before_none = sys.getrefcount(True), sys.getrefcount(None)
    for i in range(200):
        w.text.emit("x")
        w.pair.emit(i, 1)
    assert len(got) == 400
    leaked = before_true - sys.getrefcount(True)
    assert leaked < 50, f"PySide6 {PYSIDE_VERSION}: {leaked} references to True lost over 400 emits"
    assert before_none - sys.getrefcount(None) < 50
