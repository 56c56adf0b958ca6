"""Application entry point: QApplication (high-DPI), logging, the exception hook, the main window."""

from __future__ import annotations

import logging
import sys
import threading
import traceback
from pathlib import Path

from PySide6.QtCore import QStandardPaths, Qt, QThread
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication, QMessageBox

from .icons import app_icon
from .settings import APPLICATION, ORGANISATION

log = logging.getLogger("desktop_denoiser")
_dialogs: list[QMessageBox] = []
_in_hook = False


def log_file() -> Path:
    folder = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppLocalDataLocation)
    return Path(folder or Path.home() / ".desktop-denoiser") / "desktop-denoiser.log"


def setup_logging() -> Path | None:
    """Log to stderr and to a file in the per-user data folder; returns the file (None if not writable)."""
    root = logging.getLogger("desktop_denoiser")
    root.setLevel(logging.INFO)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not any(isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)
               for h in root.handlers):
        sh = logging.StreamHandler()
        sh.setFormatter(fmt)
        root.addHandler(sh)
    path = log_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fh = logging.FileHandler(path, encoding="utf-8")
        fh.setFormatter(fmt)
        root.addHandler(fh)
        return path
    except OSError:
        return None


def handle_exception(etype, value, tb, *, show_dialog: bool = True) -> str:
    """Log an uncaught exception with its traceback and tell the user in plain words (non-modal box)."""
    global _in_hook
    text = "".join(traceback.format_exception(etype, value, tb))
    log.critical("uncaught exception\n%s", text)
    message = (f"Something went wrong: {value or etype.__name__}.\n\n"
               f"Your photos were not changed. The details were written to the log:\n{log_file()}")
    app = QApplication.instance()
    if (show_dialog and not _in_hook and app is not None
            and QThread.currentThread() is app.thread()):
        _in_hook = True
        try:
            box = QMessageBox(QMessageBox.Icon.Critical, "Desktop Denoiser — unexpected error", message)
            box.setDetailedText(text)
            box.setModal(False)
            box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            box.finished.connect(lambda _=0, b=box: _dialogs.remove(b) if b in _dialogs else None)
            _dialogs.append(box)
            box.show()
        finally:
            _in_hook = False
    return message


def install_excepthook(show_dialog: bool = True) -> None:
    """Route uncaught exceptions (also those raised in Qt slots and in threads) to ``handle_exception``."""
    previous = sys.excepthook

    def hook(etype, value, tb):
        if issubclass(etype, KeyboardInterrupt):
            previous(etype, value, tb)
            return
        handle_exception(etype, value, tb, show_dialog=show_dialog)

    def thread_hook(args):
        if args.exc_type is SystemExit:
            return
        log.critical("uncaught exception in thread %s", getattr(args.thread, "name", "?"),
                     exc_info=(args.exc_type, args.exc_value, args.exc_traceback))

    sys.excepthook = hook
    threading.excepthook = thread_hook


def create_app(argv: list[str] | None = None) -> QApplication:
    app = QApplication.instance()
    if app is None:
        # Qt 6 scales for high-DPI screens by itself; keep fractional factors (125%, 150%) exact.
        QGuiApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
        app = QApplication(list(argv if argv is not None else sys.argv))
    app.setOrganizationName(ORGANISATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName(APPLICATION)
    app.setWindowIcon(app_icon())
    return app


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv if argv is None else argv)
    app = create_app(argv)
    setup_logging()
    install_excepthook()
    from .main_window import MainWindow  # after the QApplication exists

    window = MainWindow()
    window.show()
    files = [a for a in argv[1:] if not a.startswith("-")]
    if files:
        window.handle_dropped_paths(files)
    return app.exec()


if __name__ == "__main__":
    raise SystemExit(main())
