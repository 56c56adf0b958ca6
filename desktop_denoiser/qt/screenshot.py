"""Screenshot of the main window after a run: ``python -m desktop_denoiser.qt.screenshot OUT.png``.

Opens the bundled sample photo, denoises it in fidelity mode, shows the split view and saves a grab of the
window. Uses a throw-away settings file, and the offscreen platform when there is no display."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path


def _wait(app, signal, timeout_ms: int) -> bool:
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    fired = []
    signal.connect(lambda *a: (fired.append(a), loop.quit()))
    QTimer.singleShot(timeout_ms, loop.quit)
    loop.exec()
    return bool(fired)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m desktop_denoiser.qt.screenshot",
                                     description="Save a screenshot of the main window after a fidelity run.")
    parser.add_argument("out", type=Path, help="PNG file to write")
    parser.add_argument("--size", default="1280x800", help="window size, WIDTHxHEIGHT (default 1280x800)")
    parser.add_argument("--model", type=Path, default=None, help="model file (default: the bundled one)")
    args = parser.parse_args(argv)
    out = args.out
    w, h = (int(v) for v in args.size.lower().split("x"))
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

    from ..pipeline.jobs import Denoiser
    from .app import create_app
    from .main_window import MainWindow
    from .settings import Settings

    app = create_app([sys.argv[0]])
    with tempfile.TemporaryDirectory() as tmp:
        window = MainWindow(settings=Settings.from_file(Path(tmp) / "settings.ini"), denoiser=Denoiser(args.model),
                            quiet=True)
        window.resize(w, h)
        window.show()
        errors: list[str] = []
        window.error_shown.connect(errors.append)
        window.open_sample()
        if not _wait(app, window.estimate_ready, 60000):
            print("error: the noise estimate did not arrive", errors, file=sys.stderr)
            return 1
        window.noise_panel.set_mode("fidelity")
        window.run_denoise()
        if not _wait(app, window.run_finished, 120000):
            print("error: the run did not finish", errors, file=sys.stderr)
            return 1
        window.set_side_by_side(False)
        window.viewer.fit()
        window.viewer.set_split(0.5)
        window.noise_panel.setFocus()
        app.processEvents()
        out.parent.mkdir(parents=True, exist_ok=True)
        ok = window.grab().save(str(out))
        window.close()
    print(f"saved {out}" if ok else f"error: could not write {out}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
