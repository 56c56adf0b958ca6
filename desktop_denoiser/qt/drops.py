"""Dropping files from a file manager: one behaviour for the main window and the batch dialog."""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtGui import QDragEnterEvent, QDropEvent


class FileDropTarget:
    """Mixed into a QWidget (before the Qt class) that called ``setAcceptDrops(True)``: takes drags that carry
    local files, and calls ``files_dropped(paths)`` once the drop event has returned (a dialog opened while
    the drop is still being handled would keep the file manager waiting)."""

    def files_dropped(self, paths: list[str]) -> None:
        raise NotImplementedError

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        md = event.mimeData()
        if md.hasUrls() and any(u.isLocalFile() for u in md.urls()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            QTimer.singleShot(0, lambda: self.files_dropped(paths))
