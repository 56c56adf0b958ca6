"""GUI tests (pytest-qt, offscreen): open + estimate, run, previews, cancel, save, viewer, settings, errors.

Images are small synthetic ones written to tmp_path. Synchronisation only through qtbot.waitSignal /
waitUntil (never sleeps). Worker signals are recorded by a QObject in the GUI thread (a plain lambda
connected to a worker signal would run in the worker thread)."""

from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QEvent, QMimeData, QObject, QPoint, QPointF, Qt, QTimer, QUrl, Slot  # noqa: E402
from PySide6.QtGui import QDropEvent, QFocusEvent, QImage  # noqa: E402

from conftest import blurred_noise  # noqa: E402
from desktop_denoiser.bench.camera import raw_pipeline  # noqa: E402
from desktop_denoiser.paths import default_model_path, resource  # noqa: E402
from desktop_denoiser.pipeline.imageio import output_path_for, read_image  # noqa: E402
from desktop_denoiser.core.metrics import LUMA_WEIGHTS  # noqa: E402
from desktop_denoiser.core.sampler import run_to_end  # noqa: E402
from desktop_denoiser.pipeline.jobs import DenoiseOptions, Denoiser  # noqa: E402
from desktop_denoiser.qt import app as qt_app  # noqa: E402
from desktop_denoiser.qt.convert import array_to_qimage, qimage_to_array  # noqa: E402
from desktop_denoiser.qt.errors import describe_error  # noqa: E402
from desktop_denoiser.qt.main_window import MainWindow  # noqa: E402
from desktop_denoiser.qt.saving import resolve_save_as  # noqa: E402
from desktop_denoiser.qt.settings import Settings  # noqa: E402
from desktop_denoiser.qt.viewer import CompareView  # noqa: E402
from desktop_denoiser.qt.workers import DenoiseWorker, start_worker  # noqa: E402

MODEL = Path(os.environ.get("DESKTOP_DENOISER_MODEL") or default_model_path())
needs_model = pytest.mark.skipif(not MODEL.is_file(), reason=f"model file {MODEL} not available yet")
TIMEOUT = 90_000  # ms; generous, the CI machine is shared with a training run
SIGMA = 25.0


# -- helpers -------------------------------------------------------------------------------------------

def smooth_image(h: int = 96, w: int = 96) -> np.ndarray:
    """A smooth colour image in [0.15, 0.85] (no clipping once noise is added)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    r = 0.5 + 0.25 * np.sin(x / w * np.pi * 1.5) * np.cos(y / h * np.pi)
    g = 0.35 + 0.3 * (x + y) / (w + h)
    b = 0.5 + 0.3 * np.exp(-(((x - w * 0.6) / (w * 0.25)) ** 2 + ((y - h * 0.4) / (h * 0.3)) ** 2)) - 0.15
    return np.clip(np.stack([r, g, b], axis=2), 0.15, 0.85).astype(np.float32)


def add_noise(clean: np.ndarray, sigma: float = SIGMA, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(clean + rng.normal(0, sigma / 255.0, clean.shape), 0, 1).astype(np.float32)


def write_png(path: Path, pixels: np.ndarray, depth: int = 8) -> Path:
    maxval = 255 if depth == 8 else 65535
    a = np.round(np.clip(pixels, 0, 1) * maxval).astype(np.uint8 if depth == 8 else np.uint16)
    assert cv2.imwrite(str(path), np.ascontiguousarray(a[:, :, ::-1]))
    return path


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return 10 * np.log10(1.0 / max(mse, 1e-12))


class SpyDenoiser(Denoiser):
    """Records whether estimate() ran on the GUI (main) thread."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.estimate_on_main_thread: list[bool] = []

    def estimate(self, pixels):
        self.estimate_on_main_thread.append(threading.current_thread() is threading.main_thread())
        return super().estimate(pixels)


class Recorder(QObject):
    """Lives in the GUI thread and records a DenoiseWorker's signals in arrival order."""

    def __init__(self, cancel_after: int | None = None, window: MainWindow | None = None):
        super().__init__()
        self.events: list[tuple] = []
        self.cancel_after, self.window = cancel_after, window

    def attach(self, worker) -> None:
        worker.progress.connect(self.on_progress)
        worker.preview.connect(self.on_preview)
        worker.finished.connect(self.on_finished)
        worker.cancelled.connect(self.on_cancelled)
        worker.failed.connect(self.on_failed)

    @Slot(int, int, float)
    def on_progress(self, index: int, total: int, left: float) -> None:
        self.events.append(("progress", index, total))
        if self.cancel_after is not None and len(self.steps()) == self.cancel_after:
            self.window.cancel_run()

    @Slot(QImage, QImage)
    def on_preview(self, x_t: QImage, x0: QImage) -> None:
        self.events.append(("preview", x_t.width(), x0.width()))

    @Slot(object)
    def on_finished(self, result) -> None:
        self.events.append(("finished",))

    @Slot()
    def on_cancelled(self) -> None:
        self.events.append(("cancelled",))

    @Slot(str)
    def on_failed(self, message: str) -> None:
        self.events.append(("failed", message))

    def steps(self) -> list[int]:
        return [e[1] for e in self.events if e[0] == "progress"]

    def kinds(self) -> list[str]:
        return [e[0] for e in self.events]


@pytest.fixture(scope="module")
def denoiser():
    return SpyDenoiser(MODEL)


@pytest.fixture
def window(qtbot, tmp_path, denoiser):
    w = MainWindow(settings=Settings.from_file(tmp_path / "settings.ini"), denoiser=denoiser, quiet=True)
    w.resize(1100, 720)
    qtbot.addWidget(w)
    w.show()
    yield w
    w.close()


def open_and_estimate(qtbot, window: MainWindow, path: Path):
    with qtbot.waitSignal(window.estimate_ready, timeout=TIMEOUT) as blocker:
        window.open_image(path)
    return blocker.args[0]


def start_run(qtbot, window: MainWindow, recorder: Recorder):
    window.worker_started.connect(recorder.attach)
    try:
        worker = window.run_denoise()
    finally:
        window.worker_started.disconnect(recorder.attach)
    assert worker is not None
    return worker


# -- tests that need the trained model ------------------------------------------------------------------

@needs_model
def test_open_shows_sigma_and_t_estimated_on_worker(qtbot, window, denoiser, tmp_path):
    path = write_png(tmp_path / "noisy.png", add_noise(smooth_image(64, 64)))
    denoiser.estimate_on_main_thread.clear()
    with qtbot.waitSignals([window.image_loaded, window.estimate_ready], order="strict", timeout=TIMEOUT):
        window.open_image(path)
    est = window.noise_panel.estimate()
    assert denoiser.estimate_on_main_thread and not any(denoiser.estimate_on_main_thread)
    assert 15 < est.sigma < 35 and est.timestep > 0
    panel = window.noise_panel
    assert f"{est.sigma:.1f}" in panel.sigma_label.text()
    assert panel.t_label.text() == str(est.timestep)
    assert panel.steps_label.text() == "1"  # fidelity default
    assert window.viewer.has_image() and "noisy.png" in window.windowTitle()
    assert window.focusWidget() is window.viewer  # the keys act on the photo
    assert all(b.focusPolicy() == Qt.FocusPolicy.TabFocus  # a click on them leaves the focus there
               for b in (window.run_button, window.preview_button, window.cancel_button))
    assert window.settings.recent_files[0] == str(path.resolve())
    # manual override: t* follows the chosen sigma, and the run uses it
    panel.set_override(50.0)
    assert "manual" in panel.t_label.text() and int(panel.t_label.text().split()[0]) > est.timestep
    assert panel.options().sigma == pytest.approx(50.0)
    assert panel.options().noise_model == "gaussian"  # "Auto" keeps the detected kind: white noise here
    assert "white noise" in panel.sigma_label.text() and not est.correlated
    panel.set_override(None)
    assert panel.t_label.text() == str(est.timestep)
    assert panel.options().sigma is None and panel.options().noise_model == "auto"  # planned from est.analysis
    panel.set_mode("detail")
    assert int(panel.steps_label.text()) == est.timestep + 1


def test_a_one_bit_image_is_explained_not_denoised(qtbot, window, tmp_path):
    """A 1-bit (black-and-white only) image: the panel and the status say so, and Denoise leaves it as is."""
    from PIL import Image

    gradient = np.tile(np.linspace(0, 255, 96, dtype=np.float32), (64, 1)).astype(np.uint8)
    path = tmp_path / "scan.png"
    Image.fromarray(gradient).convert("1").save(path)
    est = open_and_estimate(qtbot, window, path)
    assert est.timestep < 0 and "black and white only" in window.noise_panel.sigma_label.text()
    assert "1-bit" in window.progress_label.text() and "nothing to denoise" in window.progress_label.text()
    with qtbot.waitSignal(window.run_finished, timeout=TIMEOUT) as blocker:
        window.run_denoise()
    np.testing.assert_array_equal(blocker.args[0].pixels, window.image.pixels)
    assert not window.has_unsaved_result()


@needs_model
def test_run_progress_previews_and_psnr(qtbot, window, tmp_path):
    clean = smooth_image(96, 96)
    path = write_png(tmp_path / "noisy.png", add_noise(clean, seed=1))
    noisy = cv2.imread(str(path))[:, :, ::-1].astype(np.float32) / 255
    open_and_estimate(qtbot, window, path)
    window.noise_panel.set_mode("fidelity")
    rec = Recorder()
    with qtbot.waitSignal(window.run_finished, timeout=TIMEOUT) as blocker:
        start_run(qtbot, window, rec)
    qtbot.waitUntil(lambda: "finished" in rec.kinds(), timeout=TIMEOUT)  # queued after run_finished
    result = blocker.args[0]
    steps = rec.steps()
    assert steps == list(range(1, len(steps) + 1)) and steps[-1] == result.steps
    kinds = rec.kinds()
    assert "preview" in kinds and kinds.index("preview") < kinds.index("finished")
    assert kinds[-1] == "finished"
    out = result.pixels
    assert out.shape == clean.shape and not np.allclose(out, noisy, atol=1e-3)
    assert psnr(out, clean) > psnr(noisy, clean) + 1.0
    assert window.result is result and window.viewer.after() is not None
    assert window.save_action.isEnabled() and not window.cancel_action.isEnabled()
    assert window.progress_bar.value() == window.progress_bar.maximum()
    assert window.x0_preview.pixmap() is not None and not window.x0_preview.pixmap().isNull()


@needs_model
def test_strength_updates_the_result_without_a_new_run(qtbot, window, tmp_path):
    """The run removes all the noise; the Strength control mixes the original back in at once (no new
    run), and Save writes what is shown; the batch gets the strength as an option."""
    clean = smooth_image(96, 96)
    path = write_png(tmp_path / "noisy.png", add_noise(clean, seed=6))
    open_and_estimate(qtbot, window, path)
    panel = window.noise_panel
    panel.set_strength(40)  # set before the run: the run itself still removes everything
    panel.set_color_strength(40)
    with qtbot.waitSignal(window.run_finished, timeout=TIMEOUT) as blocker:
        window.run_denoise()
    full, noisy = blocker.args[0].pixels, window.image.pixels
    run_alone = window.denoiser.run(noisy, replace(panel.options(), strength=1.0, color_strength=1.0))
    np.testing.assert_allclose(full, run_to_end(run_alone).pixels, atol=1e-6)  # the run was at full strength
    np.testing.assert_allclose(window.result.pixels, 0.4 * full + 0.6 * noisy, atol=1e-6)
    shown_40 = qimage_to_array(window.viewer.after())
    starts = []
    window.worker_started.connect(starts.append)
    panel.set_color_strength(100)
    panel.set_strength(100)
    assert window.result.pixels is full and not starts and window.worker is None
    qtbot.waitUntil(lambda: not np.array_equal(qimage_to_array(window.viewer.after()), shown_40), timeout=5000)
    np.testing.assert_array_equal(qimage_to_array(window.viewer.after()), qimage_to_array(array_to_qimage(full)))
    panel.set_strength(70)
    panel.set_color_strength(70)
    np.testing.assert_allclose(window.result.pixels, 0.7 * full + 0.3 * noisy, atol=1e-6)
    out = window.save_to(tmp_path / "out.png")
    saved = cv2.imread(str(out))[:, :, ::-1].astype(np.float32) / 255
    assert np.abs(saved - (0.7 * full + 0.3 * noisy)).max() <= 0.5 / 255 + 1e-6
    assert psnr(noisy, clean) < psnr(saved, clean) < psnr(full, clean)
    assert panel.batch_options().strength == pytest.approx(0.7)
    # Colour noise back to 100 %: the grain kept at 30 %, the colour noise all removed; still no run
    assert not window.has_unsaved_result()
    panel.set_color_strength(100)
    weights = np.asarray(LUMA_WEIGHTS, np.float32)
    result = window.result.pixels
    np.testing.assert_allclose(result @ weights, (0.7 * full + 0.3 * noisy) @ weights, atol=1e-5)
    np.testing.assert_allclose(result - (result @ weights)[..., None], full - (full @ weights)[..., None],
                               atol=1e-5)
    assert window.has_unsaved_result() and not starts
    assert psnr(saved, clean) < psnr(result, clean)
    assert panel.batch_options().color_strength == 1.0 and panel.batch_options().strength == pytest.approx(0.7)


def test_an_unsaved_result_is_marked_and_not_dropped_without_asking(qtbot, window, tmp_path):
    """After a run the title marks the unsaved result; opening another photo or quitting asks first and
    keeps everything when the answer is no; saving clears the mark, moving Strength sets it again (Save
    would now write something else); a run that removed nothing leaves nothing to lose."""
    window.ask_before_discarding = True
    questions = []
    window.confirm = lambda q, title="": questions.append(q) or window.auto_confirm
    first = write_png(tmp_path / "first.png", add_noise(smooth_image(), seed=2))
    second = write_png(tmp_path / "second.png", add_noise(smooth_image(), seed=3))
    open_and_estimate(qtbot, window, first)
    assert not window.isWindowModified() and window.open_image(second) is not None  # nothing to lose yet
    qtbot.waitUntil(lambda: window.image_path == second, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: window.noise_panel.estimate() is not None, timeout=TIMEOUT)
    with qtbot.waitSignal(window.run_finished, timeout=TIMEOUT):
        window.run_denoise()
    assert window.has_unsaved_result() and window.isWindowModified() and not questions
    window.auto_confirm = False
    assert window.open_image(first) is None and window.image_path == second and window.result is not None
    assert "not saved" in questions[-1] and "Open another photo" in questions[-1]
    window.close()
    assert window.isVisible() and "Quit" in questions[-1]
    assert window.save_to(tmp_path / "out.png") is not None
    assert not window.has_unsaved_result() and not window.isWindowModified()
    window.noise_panel.set_strength(60)
    assert window.has_unsaved_result()
    n = len(questions)
    window.auto_confirm = True
    open_and_estimate(qtbot, window, first)  # asked, and the answer was yes
    assert len(questions) == n + 1 and window.image_path == first and window.result is None
    assert not window.isWindowModified()
    window.noise_panel.set_strength(100)
    clean = write_png(tmp_path / "clean.png", np.full((64, 64, 3), 0.5, np.float32))
    open_and_estimate(qtbot, window, clean)
    with qtbot.waitSignal(window.run_finished, timeout=TIMEOUT) as blocker:
        window.run_denoise()
    assert blocker.args[0].timestep < 0 and not window.has_unsaved_result()


@needs_model
def test_preview_denoises_the_area_in_view_and_is_not_saved(qtbot, window, tmp_path, monkeypatch):
    """Zoomed in, Preview area runs only the part in view (planned from the whole photo's estimate); the
    result is that part denoised and outlined, the rest the original; it cannot be saved, Strength
    re-mixes it, and Denoise then runs the whole photo, which can be saved. With the whole photo in view
    the preview is the whole-photo run. An unsaved whole-photo result is not dropped without asking."""
    from desktop_denoiser.pipeline.region import plan_region
    from desktop_denoiser.qt import main_window

    clean = smooth_image(400, 560)
    path = write_png(tmp_path / "noisy.png", add_noise(clean, seed=8))
    monkeypatch.setattr(main_window, "BIG_PHOTO_PIXELS", 400 * 560)  # a big photo: the ready message says how
    est = open_and_estimate(qtbot, window, path)
    assert "Preview area (Ctrl+Shift+R)" in window.progress_label.text()
    noisy = window.image.pixels
    window.viewer.set_zoom(4.0)  # about a quarter of the photo's width in view
    box = window.viewer.visible_rect()
    region = plan_region(window.image.size, box)
    assert region is not None and region.size[0] < 200 and region.crop[2] - region.crop[0] < 560
    starts = []
    window.worker_started.connect(lambda w: starts.append(w.pixels.shape))
    with qtbot.waitSignal(window.run_finished, timeout=TIMEOUT) as blocker:
        window.preview_action.trigger()
    x0, y0, x1, y1 = region.box
    cx0, cy0, cx1, cy1 = region.crop
    assert starts == [(cy1 - cy0, cx1 - cx0, 3)]  # only the crop ran
    assert window.preview_region == region and window.viewer.after_region() == region.box
    shown = window.result.pixels
    inside = np.zeros(noisy.shape[:2], bool)
    inside[y0:y1, x0:x1] = True
    assert np.array_equal(shown[~inside], noisy[~inside])
    part = run_to_end(window.denoiser.run(region.cut(noisy), DenoiseOptions(device="auto"),
                                          window.denoiser.plan(region.cut(noisy), DenoiseOptions(),
                                                               analysis=est.analysis))).pixels
    np.testing.assert_allclose(shown[y0:y1, x0:x1], part[y0 - cy0:y1 - cy0, x0 - cx0:x1 - cx0], atol=1e-6)
    assert psnr(shown[inside], clean[inside]) > psnr(noisy[inside], clean[inside]) + 3
    # what the viewer shows is the result (only the part converted for it)
    assert window.viewer.after() == array_to_qimage(shown)
    assert blocker.args[0].sigma == pytest.approx(est.sigma)  # the whole photo's level
    assert "Preview" in window.progress_label.text() and "Ctrl+R" in window.progress_label.text()
    # a preview is not saved, and leaves nothing to lose
    assert not window.save_action.isEnabled() and not window.can_save() and not window.has_unsaved_result()
    errors = []
    window.error_shown.connect(errors.append)
    assert window.save_to(tmp_path / "out.png") is None and not (tmp_path / "out.png").exists()
    assert "preview" in errors[-1] and "Ctrl+R" in errors[-1]
    window.noise_panel.set_strength(50)
    window.noise_panel.set_color_strength(50)
    np.testing.assert_allclose(window.result.pixels[inside], 0.5 * (shown[inside] + noisy[inside]), atol=1e-6)
    assert np.array_equal(window.result.pixels[~inside], noisy[~inside])
    window.noise_panel.set_strength(100)
    window.noise_panel.set_color_strength(100)
    # Denoise runs the whole photo: savable, no outline
    with qtbot.waitSignal(window.run_finished, timeout=TIMEOUT):
        window.run_denoise()
    assert starts[-1] == noisy.shape and window.preview_region is None and window.viewer.after_region() is None
    assert window.save_action.isEnabled() and window.has_unsaved_result()
    # an unsaved whole-photo result: the preview asks first, and "no" keeps it
    window.ask_before_discarding = True
    questions = []
    window.confirm = lambda q, title="": questions.append(q) or False
    assert window.preview_visible_area() is None and window.preview_region is None
    assert "Preview" in questions[-1] and window.can_save()
    # the whole photo in view: Preview area is the whole-photo run
    window.viewer.fit()
    window.ask_before_discarding = False
    with qtbot.waitSignal(window.run_finished, timeout=TIMEOUT):
        qtbot.mouseClick(window.preview_button, Qt.MouseButton.LeftButton)  # the panel's Preview button
    assert starts[-1] == noisy.shape and window.preview_region is None and window.can_save()


@needs_model
def test_compare_with_the_previous_run(qtbot, window, tmp_path):
    """Fidelity, then Detail: View ▸ Compare with the previous run puts the fidelity result on the before
    side, both labelled with their settings, both mixed at the panel's Strength; unticked, the original is
    back; another photo forgets the previous run."""
    path = write_png(tmp_path / "noisy.png", add_noise(smooth_image(96, 128), seed=9))
    open_and_estimate(qtbot, window, path)
    original = qimage_to_array(window.viewer.before())
    action = window.compare_previous_action
    window.noise_panel.set_mode("fidelity")
    with qtbot.waitSignal(window.run_finished, timeout=TIMEOUT) as first:
        window.run_denoise()
    assert not action.isEnabled() and window.previous is None
    window.noise_panel.set_mode("detail")
    window.noise_panel.set_steps(3)
    with qtbot.waitSignal(window.run_finished, timeout=TIMEOUT):
        window.run_denoise()
    fidelity = first.args[0].pixels
    assert action.isEnabled() and window.previous[0] is first.args[0]
    action.trigger()
    assert action.isChecked()
    np.testing.assert_array_equal(qimage_to_array(window.viewer.before()), qimage_to_array(array_to_qimage(fidelity)))
    before_label, after_label = window.viewer._before_label, window.viewer._after_label
    assert before_label.startswith("Previous: Fidelity · Normal · σ ") and after_label.startswith(
        "Now: Detail · Normal · 3 steps · σ ")
    window.noise_panel.set_strength(50)  # both sides follow the Strength (and Colour noise)
    window.noise_panel.set_color_strength(50)
    qtbot.waitUntil(lambda: not np.array_equal(qimage_to_array(window.viewer.before()),
                                               qimage_to_array(array_to_qimage(fidelity))), timeout=5000)
    mixed = 0.5 * fidelity + 0.5 * window.image.pixels
    np.testing.assert_array_equal(qimage_to_array(window.viewer.before()), qimage_to_array(array_to_qimage(mixed)))
    action.trigger()  # off: the original again
    np.testing.assert_array_equal(qimage_to_array(window.viewer.before()), original)
    assert window.viewer._before_label == "Original" and window.viewer._after_label == "Denoised"
    action.trigger()
    open_and_estimate(qtbot, window, path)
    assert window.previous is None and not action.isChecked() and not action.isEnabled()
    np.testing.assert_array_equal(qimage_to_array(window.viewer.before()), original)


@needs_model
def test_a_preview_follows_a_changed_setting(qtbot, window, tmp_path):
    """With a preview on show, changing the mode previews the same part again by itself (and Ctrl+4 then
    compares the two); Strength needs no run; after a whole-photo run a changed setting starts nothing."""
    path = write_png(tmp_path / "noisy.png", add_noise(smooth_image(400, 560), seed=12))
    open_and_estimate(qtbot, window, path)
    window.noise_panel.set_mode("fidelity")
    window.viewer.set_zoom(4.0)
    with qtbot.waitSignal(window.run_finished, timeout=TIMEOUT):
        window.preview_visible_area()
    region = window.preview_region
    assert region is not None and "Change a setting" in window.progress_label.text()
    window.viewer.pan_by(300, 0)  # the view moves on; the preview stays on its part
    window.noise_panel.set_steps(3)
    with qtbot.waitSignal(window.run_finished, timeout=TIMEOUT) as blocker:
        window.noise_panel.set_mode("detail")  # steps and mode changed together: one new preview
    assert window.preview_region == region and blocker.args[0].steps == 3
    assert window.previous is not None and window.previous[1].startswith("Fidelity · Normal · area in view")
    assert window._result_label.startswith("Detail · Normal · 3 steps · area in view")
    window.noise_panel.set_strength(60)
    assert not window._repreview_timer.isActive() and window.worker is None
    window.noise_panel.set_strength(100)
    with qtbot.waitSignal(window.run_finished, timeout=TIMEOUT):
        window.run_denoise()
    window.noise_panel.set_mode("fidelity")
    assert window.preview_region is None and not window._repreview_timer.isActive() and window.worker is None


@needs_model
def test_a_preview_without_the_estimate_takes_the_whole_photos_level(qtbot, window, tmp_path):
    """Preview pressed before the estimate has arrived (or after it failed): the run is still planned from
    the whole photo, not from the part in view, whose noise here is three times stronger."""
    clean = smooth_image(320, 480)
    noisy = add_noise(clean, sigma=8.0, seed=10)
    noisy[:, 240:] = add_noise(clean, sigma=30.0, seed=11)[:, 240:]
    path = write_png(tmp_path / "halves.png", noisy)
    open_and_estimate(qtbot, window, path)
    whole = window.denoiser.estimate(window.image.pixels).sigma
    window.noise_panel.clear_estimate("unknown")
    window.viewer.set_zoom(4.0)
    window.viewer.pan_by(-10_000, 0)  # the right edge, all strong noise
    x0 = window.viewer.visible_rect()[0]
    assert x0 > 240
    part = window.denoiser.estimate(window.image.pixels[:, int(x0):]).sigma
    assert part > whole + 5
    with qtbot.waitSignal(window.run_finished, timeout=TIMEOUT) as blocker:
        window.preview_visible_area()
    assert window.preview_region is not None and blocker.args[0].sigma == pytest.approx(whole)


def test_best_quality_runs_the_eight_view_ensemble(qtbot, window, tmp_path):
    """The Quality choice reaches the worker: "Best" averages 8 views and comes out cleaner than "Fast",
    "Maximum" 32 views, cleaner again."""
    clean = smooth_image(96, 96)
    path = write_png(tmp_path / "noisy.png", add_noise(clean, seed=4))
    open_and_estimate(qtbot, window, path)
    panel = window.noise_panel
    assert panel.quality_combo.currentData() == 1 and panel.options().ensemble == 1  # default: Fast
    results = {}
    assert [panel.quality_combo.itemData(i) for i in range(panel.quality_combo.count())] == [1, 2, 8, 32]
    for views in (1, 8, 32):
        panel.set_ensemble(views)
        assert panel.options().ensemble == views
        qtbot.waitUntil(lambda: panel.steps_label.text() == ("1" if views == 1 else f"1  (× {views} views)"),
                        timeout=TIMEOUT)
        with qtbot.waitSignal(window.run_finished, timeout=TIMEOUT) as blocker:
            window.run_denoise()
        results[views] = psnr(blocker.args[0].pixels, clean)
        qtbot.waitUntil(lambda: not window.is_running(), timeout=TIMEOUT)
    assert results[8] > results[1] + 0.3, results
    assert results[32] > results[8], results  # Maximum: the 8 views at 4 offsets of the pixel grid


def add_camera_noise(clean: np.ndarray, std: float = 8.0, seed: int = 0) -> np.ndarray:
    return np.clip(clean + blurred_noise(clean.shape, std, seed=seed) / 255.0, 0, 1).astype(np.float32)


@needs_model
def test_camera_noise_runs_the_real_noise_path_the_panel_planned(qtbot, window, tmp_path):
    from desktop_denoiser.core.real_noise import plan_real

    clean = smooth_image(128, 128)
    path = write_png(tmp_path / "camera.png", add_camera_noise(clean, seed=3))
    noisy = read_image(path).pixels
    open_and_estimate(qtbot, window, path)
    panel = window.noise_panel
    est = panel.estimate()
    assert est.correlated and "camera noise" in panel.sigma_label.text()
    real_steps = plan_real(window.denoiser.schedule, est.analysis).total
    assert real_steps > 1 and panel.steps_label.text() == str(real_steps)
    panel.set_noise_model("gaussian")  # the panel re-plans: the white-noise path at the white-noise sigma
    white = window.denoiser.plan(noisy, DenoiseOptions(noise_model="gaussian"), analysis=est.analysis)
    assert white.steps <= 1 and white.sigma < 0.5 * est.sigma  # the white estimator misses correlated noise
    assert panel.steps_label.text() == str(white.steps) and panel.options().noise_model == "gaussian"
    panel.set_noise_model("auto")
    assert panel.steps_label.text() == str(real_steps)
    rec = Recorder()
    with qtbot.waitSignal(window.run_finished, timeout=TIMEOUT) as blocker:
        start_run(qtbot, window, rec)
    qtbot.waitUntil(lambda: "finished" in rec.kinds(), timeout=TIMEOUT)  # queued after run_finished
    result = blocker.args[0]
    assert result.steps == real_steps and rec.steps()[-1] == real_steps
    assert result.sigma == pytest.approx(est.sigma)
    assert psnr(result.pixels, clean) > psnr(noisy, clean) + 2.0


@needs_model
def test_cancel_between_tiles_of_a_single_long_step(qtbot, denoiser):
    """A cancel must not wait for a whole step (a 12 MP photo is one long step): the worker stops
    between tiles. The cancel is asked for from the first tile_progress signal, in the worker thread
    (direct connection), so the check is deterministic."""
    noisy = add_noise(smooth_image(256, 256), seed=5)
    worker = DenoiseWorker(denoiser, noisy, DenoiseOptions(sigma=SIGMA, device="cpu", tile=64), previews=False)
    tiles, kinds = [], []
    worker.tile_progress.connect(lambda d, t: (tiles.append((d, t)), worker.cancel()),
                                 Qt.ConnectionType.DirectConnection)
    worker.finished.connect(lambda r: kinds.append("finished"), Qt.ConnectionType.DirectConnection)
    worker.cancelled.connect(lambda: kinds.append("cancelled"), Qt.ConnectionType.DirectConnection)
    with qtbot.waitSignal(worker.done, timeout=TIMEOUT):
        start_worker(worker)
    assert kinds == ["cancelled"]
    assert len(tiles) == 1 and tiles[0][0] == 1 and tiles[0][1] > 4  # stopped after the first of many tiles


@needs_model
def test_single_step_run_shows_its_tiles_on_the_progress_bar(qtbot, window, tmp_path, monkeypatch):
    """Fidelity on a big photo is one step: the bar counts the step's tiles, then shows the step done."""
    from dataclasses import replace

    from desktop_denoiser.qt.main_window import STEP_FORMAT, TILE_FORMAT

    path = write_png(tmp_path / "noisy.png", add_noise(smooth_image(256, 256), seed=6))
    open_and_estimate(qtbot, window, path)
    options = window.noise_panel.options
    monkeypatch.setattr(window.noise_panel, "options", lambda: replace(options(), tile=64))  # many tiles
    seen = []

    class BarWatcher(QObject):  # lives in the GUI thread: its slot is queued after the window's own
        @Slot(int, int)
        def on_tile(self, done, total):
            bar = window.progress_bar
            seen.append((bar.format(), bar.value(), bar.maximum(), window.progress_label.text()))

    watcher = BarWatcher()

    def attach(worker):
        worker.tile_progress.connect(watcher.on_tile)

    window.worker_started.connect(attach)
    with qtbot.waitSignal(window.run_finished, timeout=TIMEOUT) as blocker:
        window.run_denoise()
    window.worker_started.disconnect(attach)
    qtbot.waitUntil(lambda: not window.is_running(), timeout=TIMEOUT)
    assert blocker.args[0].steps == 1
    n = seen[0][2]
    assert n > 4 and seen[-1][:3] == (TILE_FORMAT, n, n)
    assert [v for _, v, _, _ in seen] == list(range(1, n + 1)) and seen[0][3] == f"Step 1/1 · tile 1/{n}"
    bar = window.progress_bar
    assert (bar.format(), bar.value(), bar.maximum()) == (STEP_FORMAT, 1, 1)


@needs_model
def test_noise_hidden_by_jpeg_chroma_subsampling_shows_a_hint(qtbot, window, tmp_path):
    """White noise saved as a 4:2:0 JPEG is measured at its flat-block level, no hint; clean near-grey
    grain with the same signature is not denoised, but the panel suggests a sigma, with a link that sets
    it; the noise in a PNG shows no hint either."""
    from test_real_noise import grey_grain

    noisy = add_noise(smooth_image(192, 256), sigma=25, seed=3)
    jpeg = tmp_path / "noisy.jpg"
    assert cv2.imwrite(str(jpeg), np.round(noisy * 255).astype(np.uint8)[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
    est = open_and_estimate(qtbot, window, jpeg)
    hint = window.noise_panel.hint_label
    assert 12 <= est.sigma <= 30 and not hint.isVisibleTo(window)
    grain = tmp_path / "grain.jpg"
    assert cv2.imwrite(str(grain), np.round(grey_grain(smooth_image(192, 256)) * 255).astype(np.uint8)[:, :, ::-1],
                       [cv2.IMWRITE_JPEG_QUALITY, 90])
    est = open_and_estimate(qtbot, window, grain)
    assert est.sigma < 3 and hint.isVisibleTo(window) and "set σ manually to about" in hint.text()
    link = re.search(r"href='(sigma:(\d+))'", hint.text())
    suggested = float(link.group(2))
    assert 8 <= suggested <= 20
    # the hint's link applies it: sigma set manually to the suggestion
    assert window.noise_panel.sigma_override() is None
    hint.linkActivated.emit(link.group(1))
    assert window.noise_panel.sigma_override() == suggested
    assert not hint.isVisibleTo(window)  # done: the hint no longer applies
    window.noise_panel.set_override(None)
    assert hint.isVisibleTo(window)
    open_and_estimate(qtbot, window, write_png(tmp_path / "noisy.png", noisy))
    assert not hint.isVisibleTo(window)
    # noise demosaiced from a raw mosaic and saved losslessly: the camera-noise path is suggested
    raw = raw_pipeline(smooth_image(192, 256), 0.006, 2)
    open_and_estimate(qtbot, window, write_png(tmp_path / "raw.png", raw))
    assert hint.isVisibleTo(window) and "choose Noise type ▸ Camera noise" in hint.text()
    assert "set σ manually" not in hint.text() and "href='noise:real'" in hint.text()
    assert window.noise_panel.noise_model() == "auto"
    hint.linkActivated.emit("noise:real")
    assert window.noise_panel.noise_model() == "real" and window.noise_panel.options().noise_model == "real"
    assert not hint.isVisibleTo(window)
    # the panel names the level the chosen path runs at (the estimate is the white-noise one)
    plan = window.denoiser.plan(raw, window.noise_panel.options(), analysis=window.noise_panel.estimate().analysis)
    assert plan.real and f"(runs at σ {plan.sigma:.1f})" in window.noise_panel.t_label.text()
    assert window.noise_panel.t_label.text().startswith(str(plan.timestep))


@needs_model
def test_strong_demosaiced_noise_is_camera_noise_with_a_link_back_to_white_noise(qtbot, window, tmp_path):
    from desktop_denoiser.bench.camera import raw_pipeline

    raw = raw_pipeline(smooth_image(192, 256), 0.02, 2)
    open_and_estimate(qtbot, window, write_png(tmp_path / "raw_strong.png", raw))
    panel, hint = window.noise_panel, window.noise_panel.hint_label
    est = panel.estimate()
    assert est.correlated and est.analysis.mosaic_noise and "camera noise" in panel.sigma_label.text()
    assert hint.isVisibleTo(window) and "removed as camera noise" in hint.text()
    assert "href='noise:gaussian'" in hint.text() and "choose Noise type ▸ Camera noise" not in hint.text()
    assert window.denoiser.plan(raw, panel.options(), analysis=est.analysis).real
    hint.linkActivated.emit("noise:gaussian")
    assert panel.noise_model() == "gaussian" and not hint.isVisibleTo(window)
    white = window.denoiser.plan(raw, panel.options(), analysis=est.analysis)
    assert not white.real and white.sigma == pytest.approx(est.analysis.sigma_white)


@needs_model
def test_cancel_mid_run_leaves_original_untouched(qtbot, window, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    path = write_png(folder / "noisy.png", add_noise(smooth_image(64, 64), seed=2))
    before = path.read_bytes()
    open_and_estimate(qtbot, window, path)
    window.noise_panel.set_mode("detail")
    rec = Recorder(cancel_after=1, window=window)
    with qtbot.waitSignal(window.run_cancelled, timeout=TIMEOUT):
        worker = start_run(qtbot, window, rec)
    qtbot.waitUntil(lambda: "cancelled" in rec.kinds(), timeout=TIMEOUT)
    total = next(e[2] for e in rec.events if e[0] == "progress")
    assert total > 20  # detail mode: many steps
    assert len(rec.steps()) <= 3  # stopped within a step of the request
    assert "finished" not in rec.kinds()
    assert worker.cancel_requested and window.result is None and window.worker is None
    assert sorted(p.name for p in folder.iterdir()) == ["noisy.png"]  # nothing written
    assert path.read_bytes() == before
    assert window.run_action.isEnabled()


class OpenDuringRun(Recorder):
    """Opens ``path`` in the window once the run's first step has arrived, from the event loop as a user's
    action would (calling open_image inside the slot of the worker's queued signal crashed later tests)."""

    def __init__(self, window: MainWindow, path: Path):
        super().__init__(window=window)
        self.path = path

    @Slot(int, int, float)
    def on_progress(self, index: int, total: int, left: float) -> None:
        super().on_progress(index, total, left)
        if len(self.steps()) == 1:
            QTimer.singleShot(0, self.window, lambda: self.window.open_image(self.path))


@needs_model
def test_opening_another_photo_mid_run(qtbot, window, tmp_path):
    """A file that cannot be read leaves the run on the photo shown going (it used to be cancelled before
    the new file was even read); a photo that opens stops it, and the new photo's state is not overwritten
    by the old run's late "Cancelled" message."""
    from desktop_denoiser.qt.workers import running_workers

    first = write_png(tmp_path / "first.png", add_noise(smooth_image(64, 64), seed=2))
    second = write_png(tmp_path / "second.png", add_noise(smooth_image(48, 48), seed=5))
    bad = tmp_path / "bad.png"
    bad.write_text("not a photo")
    errors: list[str] = []
    window.error_shown.connect(errors.append)
    open_and_estimate(qtbot, window, first)
    window.noise_panel.set_mode("detail")  # many steps: time to open a file in between
    rec = OpenDuringRun(window, bad)
    start_run(qtbot, window, rec)
    qtbot.waitUntil(lambda: bool({"finished", "cancelled"} & set(rec.kinds())), timeout=TIMEOUT)
    qtbot.waitUntil(lambda: not running_workers(), timeout=TIMEOUT)
    assert any("bad.png" in e for e in errors) and "finished" in rec.kinds()
    assert window.image_path == first and window.result is not None and window.worker is None

    window.auto_confirm = True  # the first photo's result is not saved: discard it
    rec2 = OpenDuringRun(window, second)
    with qtbot.waitSignal(window.estimate_ready, timeout=TIMEOUT):
        start_run(qtbot, window, rec2)
    qtbot.waitUntil(lambda: not running_workers(), timeout=TIMEOUT)  # the old run has wound down
    qtbot.waitUntil(lambda: "cancelled" in rec2.kinds(), timeout=TIMEOUT)  # and its signal was delivered
    assert window.image_path == second and window.result is None and window.worker is None
    assert window.progress_label.text().startswith("Ready."), window.progress_label.text()
    assert window.run_action.isEnabled()


def test_save_falls_back_to_a_folder_that_exists(qtbot, window, tmp_path, monkeypatch):
    """Ctrl+S on the bundled sample photo (or one in a read-only folder) goes to the last save folder, else
    Pictures, else the home folder: a Pictures folder that does not exist used to make saving fail."""
    from PySide6.QtCore import QStandardPaths

    import desktop_denoiser.qt.saving as saving

    pictures, home = tmp_path / "Pictures", tmp_path / "home"
    home.mkdir()

    class Paths:
        StandardLocation = QStandardPaths.StandardLocation

        @staticmethod
        def writableLocation(location):
            return str(pictures)

    monkeypatch.setattr(saving, "QStandardPaths", Paths)
    monkeypatch.setattr(saving.Path, "home", lambda: home)
    window.settings.last_save_dir = ""
    window.image_path = resource("sample_noisy.png")
    assert window.default_save_path() == home / "sample_noisy_denoised.png"  # no Pictures folder
    pictures.mkdir()
    assert window.default_save_path() == pictures / "sample_noisy_denoised.png"
    window.settings.last_save_dir = str(tmp_path / "gone")  # a remembered folder removed since
    assert window.default_save_path() == pictures / "sample_noisy_denoised.png"


@needs_model
def test_gui_stays_responsive_during_run(qtbot, window, tmp_path):
    path = write_png(tmp_path / "noisy.png", add_noise(smooth_image(160, 160), seed=3))
    open_and_estimate(qtbot, window, path)
    window.noise_panel.set_mode("detail")
    window.noise_panel.set_steps(40)  # enough work to last well over 0.2 s
    ticks = [0]
    timer = QTimer()
    timer.setInterval(20)
    timer.timeout.connect(lambda: ticks.__setitem__(0, ticks[0] + 1))
    rec = Recorder()
    timer.start()
    t0 = time.perf_counter()
    with qtbot.waitSignal(window.run_finished, timeout=TIMEOUT):
        start_run(qtbot, window, rec)
    qtbot.waitUntil(lambda: "finished" in rec.kinds(), timeout=TIMEOUT)  # queued after run_finished
    elapsed = time.perf_counter() - t0
    timer.stop()
    assert rec.steps() == list(range(1, 41))
    assert elapsed > 0.2
    assert ticks[0] >= 0.3 * elapsed / 0.02, (ticks[0], elapsed)


@needs_model
def test_save_keeps_16_bit_and_never_overwrites(qtbot, window, tmp_path):
    path = write_png(tmp_path / "photo16.png", add_noise(smooth_image(64, 80), seed=4), depth=16)
    original = path.read_bytes()
    open_and_estimate(qtbot, window, path)
    assert window.image.bit_depth == 16
    with qtbot.waitSignal(window.run_finished, timeout=TIMEOUT):
        window.run_denoise()

    expected = output_path_for(path)
    assert window.default_save_path() == expected and expected.name == "photo16_denoised.png"
    with qtbot.waitSignal(window.saved, timeout=5000):
        out = window.save()
    assert out == expected and out.is_file()
    data = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert data.dtype == np.uint16 and data.shape == (64, 80, 3)

    # an existing output is replaced only after confirmation
    stamp = out.read_bytes()
    window.auto_confirm = False
    assert window.save() is None and out.read_bytes() == stamp
    window.auto_confirm = True
    assert window.save() == expected

    # the original is protected, even when asked to overwrite
    errors = []
    window.error_shown.connect(errors.append)
    assert window.save_to(path, overwrite=True) is None
    assert errors and path.read_bytes() == original

    # another format through Save As's code path (no dialog)
    jpg = window.save_to(tmp_path / "photo16_denoised.jpg", format="JPEG")
    assert cv2.imread(str(jpg), cv2.IMREAD_UNCHANGED).dtype == np.uint8


@needs_model
def test_save_as_16_bit_tiff_from_an_8_bit_photo(qtbot, window, tmp_path, monkeypatch):
    """Save As with the 16-bit TIFF filter writes the denoised photo at 16 bits (values between the 8-bit
    levels kept); the plain TIFF filter keeps the original's 8 bits."""
    from PySide6.QtWidgets import QFileDialog

    path = write_png(tmp_path / "photo.png", add_noise(smooth_image(64, 80), seed=5))
    open_and_estimate(qtbot, window, path)
    with qtbot.waitSignal(window.run_finished, timeout=TIMEOUT):
        window.run_denoise()
    offered = []
    for name, chosen, dtype in (("a16", "TIFF image, 16-bit, for editing (*.tif *.tiff)", np.uint16),
                                ("a8", "TIFF image (*.tif *.tiff)", np.uint8)):
        monkeypatch.setattr(QFileDialog, "getSaveFileName",
                            lambda *a, n=name, c=chosen: offered.append(a[3]) or (str(tmp_path / n), c))
        out = window.save_as()
        assert out == tmp_path / f"{name}.tif"
        data = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
        assert data.dtype == dtype and data.shape == (64, 80, 3)
    assert "TIFF image, 16-bit, for editing (*.tif *.tiff)" in offered[0].split(";;")
    assert window.settings.save_as_filter == "TIFF image (*.tif *.tiff)"  # the last choice ...
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a: offered.append(a) or ("", ""))
    assert window.save_as() is None  # ... is offered first, with its extension (the dialog cancelled)
    assert offered[-1][4] == "TIFF image (*.tif *.tiff)" and offered[-1][2].endswith("photo_denoised.tif")
    data = cv2.imread(str(tmp_path / "a16.tif"), cv2.IMREAD_UNCHANGED)
    assert len(np.unique(data % 257)) > 50  # not an 8-bit result widened


@needs_model
def test_screenshot_after_run_is_not_blank(qtbot, window, tmp_path):
    clean = smooth_image(96, 128)
    path = write_png(tmp_path / "noisy.png", add_noise(clean, seed=5))
    open_and_estimate(qtbot, window, path)
    with qtbot.waitSignal(window.run_finished, timeout=TIMEOUT):
        window.run_denoise()
    window.viewer.set_split(0.5)
    shot = window.grab()
    assert shot.width() > 600 and shot.height() > 400
    out = tmp_path / "main_window.png"
    assert shot.save(str(out)) and out.stat().st_size > 10_000
    a = qimage_to_array(shot.toImage())
    assert a.std() > 20
    colours = np.unique((a[::4, ::4] // 16).reshape(-1, 3), axis=0)
    assert len(colours) > 50
    # the viewer really shows both images: left of the divider differs from right
    view = qimage_to_array(window.viewer.grab().toImage())
    assert view.std() > 10


@needs_model
def test_device_error_in_plain_words(qtbot, window, tmp_path):
    path = write_png(tmp_path / "noisy.png", add_noise(smooth_image(64, 64), seed=6))
    open_and_estimate(qtbot, window, path)
    window.noise_panel.device_combo.addItem("CUDA 9 (missing)", "cuda:9")
    window.noise_panel.set_device("cuda:9")
    with qtbot.waitSignal(window.run_failed, timeout=TIMEOUT) as blocker:
        window.run_denoise()
    msg = blocker.args[0]
    assert "CUDA" in msg and "Traceback" not in msg
    assert window.worker is None and window.run_action.isEnabled()


@needs_model
def test_drop_file_opens_it(qtbot, window, tmp_path):
    path = write_png(tmp_path / "dropped.png", add_noise(smooth_image(64, 64), seed=7))
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    event = QDropEvent(QPointF(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(window.estimate_ready, timeout=TIMEOUT):
        window.dropEvent(event)
    assert window.image_path == path


@needs_model
def test_reset_and_unticking_the_manual_sigma_show_the_estimate_again(qtbot, window, tmp_path):
    """After Reset the options the greyed σ box kept the manual 60, and ticking Set σ manually again
    started from it; unticked, the box shows the level a run uses: the estimate."""
    est = open_and_estimate(qtbot, window, write_png(tmp_path / "a.png", add_noise(smooth_image(64, 64))))
    panel = window.noise_panel
    panel.set_override(60.0)
    window.reset_options_action.trigger()
    assert panel.sigma_override() is None
    assert panel.sigma_spin.value() == pytest.approx(est.sigma, abs=0.05)
    panel.set_override(40.0)
    panel.override_check.setChecked(False)
    assert panel.sigma_spin.value() == pytest.approx(est.sigma, abs=0.05)


@needs_model
def test_a_hint_link_does_nothing_while_a_run_holds_the_options(qtbot, window, tmp_path):
    """Clicking "Set σ 18" during a run set σ by hand and turned the σ controls back on while the rest were
    off; the result, made at the estimate, then stood beside a panel saying σ 18."""
    est = open_and_estimate(qtbot, window, write_png(tmp_path / "a.png", add_noise(smooth_image(96, 96))))
    window.noise_panel.set_mode("detail")
    with qtbot.waitSignal(window.run_finished, timeout=TIMEOUT) as blocker:
        assert window.run_denoise() is not None
        assert not window.noise_panel.hint_label.isEnabled()
        window.noise_panel.hint_label.linkActivated.emit("sigma:18")
        window.noise_panel.hint_label.linkActivated.emit("noise:real")
        assert not window.noise_panel.sigma_spin.isEnabled() and not window.noise_panel.sigma_slider.isEnabled()
    assert window.noise_panel.sigma_override() is None and window.noise_panel.noise_model() == "auto"
    assert blocker.args[0].sigma == pytest.approx(est.sigma, abs=0.05)
    assert window.noise_panel.hint_label.isEnabled()


@needs_model
def test_the_same_photo_dropped_twice_is_opened(qtbot, window, tmp_path):
    """Two copies of one path (or a path and a link to it) opened the batch dialog with '(2 chosen)' and one
    row; they are one photo, so it opens."""
    path = write_png(tmp_path / "a.png", add_noise(smooth_image(64, 64)))
    (tmp_path / "link.png").symlink_to(path)
    with qtbot.waitSignal(window.estimate_ready, timeout=TIMEOUT):
        window.handle_dropped_paths([path, path, tmp_path / "link.png"])
    assert window.batch_dialog is None and window.image_path == path


@needs_model
def test_a_file_name_not_valid_in_the_locale_is_shown_opened_and_saved(qtbot, window, tmp_path):
    """A Latin-1 name on a UTF-8 system (Python keeps the byte as a lone surrogate): Qt dropped the letter
    from the title ("caf.png"); the name shows '�' there, and the photo opens and saves under its own bytes."""
    name = os.fsdecode(os.fsencode(str(tmp_path)) + b"/caf\xe9.png")
    write_png(tmp_path / "plain.png", add_noise(smooth_image(64, 64))).rename(name)  # (OpenCV's imwrite crashes on it)
    open_and_estimate(qtbot, window, Path(name))
    assert window.windowTitle().startswith("caf\ufffd.png")
    assert "caf\ufffd.png" in window.info_label.text()
    with qtbot.waitSignal(window.run_finished, timeout=TIMEOUT):
        window.run_denoise()
    saved = window.save()
    assert saved is not None and os.fsencode(saved).endswith(b"/caf\xe9_denoised.png") and saved.is_file()


@needs_model
def test_what_the_reader_and_the_writer_could_not_keep_is_said(qtbot, window, tmp_path):
    """A 2-page TIFF's note stays in the info line after the run (the status bar's went with "Done"), and
    Save As JPEG of a photo whose XMP is too big for a JPEG says so (it was dropped without a word)."""
    from PIL import Image

    pages = [Image.fromarray(np.round(add_noise(smooth_image(64, 64), seed=i) * 255).astype(np.uint8)) for i in (1, 2)]
    pages[0].save(tmp_path / "two.tif", save_all=True, append_images=pages[1:],
                  tiffinfo={700: b"<x:xmpmeta " + b"x" * 70000 + b"/>"})
    open_and_estimate(qtbot, window, tmp_path / "two.tif")
    with qtbot.waitSignal(window.run_finished, timeout=TIMEOUT):
        window.run_denoise()
    assert "2 pages" in window.info_label.text() and "2 pages" not in window.statusBar().currentMessage()
    with pytest.warns(RuntimeWarning):
        out = window.save_to(tmp_path / "two_denoised.jpg", format="JPEG")
    assert out is not None and "XMP was too big for a JPEG file" in window.statusBar().currentMessage()


# -- tests without the model ------------------------------------------------------------------------------

def test_odd_settings_values_do_not_stop_the_window_from_opening(qtbot, tmp_path):
    """A seed past 2^31 or a recent-files entry that is no list (a hand-edited settings file) ended the app
    before its window appeared."""
    ini = tmp_path / "s.ini"
    ini.write_text("[denoise]\nseed=3000000000\nsteps=3000000000\n[recent]\nfiles=@Size(1 2)\n")
    w = MainWindow(settings=Settings.from_file(ini), denoiser=Denoiser(tmp_path / "none"), quiet=True)
    qtbot.addWidget(w)
    assert w.noise_panel.seed() == 2**31 - 1 and w.noise_panel.steps() == 1000


def test_a_photo_too_small_to_measure_says_once_how_to_denoise_it(qtbot, tmp_path):
    """The message named a command-line option in the GUI and said "set σ" twice."""
    from desktop_denoiser.core.noise_estimation import NoiseEstimationError, estimate_sigma

    with pytest.raises(NoiseEstimationError) as err:
        estimate_sigma(np.zeros((10, 10, 3), np.float32))
    text = describe_error(err.value)
    assert "--sigma" not in text and text.lower().count("σ") == 1 and "Set σ manually" in text


def test_unreadable_file_reports_plain_error(qtbot, tmp_path):
    w = MainWindow(settings=Settings.from_file(tmp_path / "s.ini"), denoiser=Denoiser(tmp_path / "none"),
                   quiet=True)
    qtbot.addWidget(w)
    bad = tmp_path / "broken.png"
    bad.write_text("this is not an image")
    with qtbot.waitSignal(w.error_shown, timeout=TIMEOUT) as blocker:
        w.open_image(bad)
    assert "broken.png" in blocker.args[0] and "Traceback" not in blocker.args[0]
    assert w.image is None and not w.run_action.isEnabled()
    assert "broken.png" in w.statusBar().currentMessage()


def test_missing_model_is_explained(qtbot, tmp_path):
    w = MainWindow(settings=Settings.from_file(tmp_path / "s.ini"), denoiser=Denoiser(tmp_path / "none.safetensors"),
                   quiet=True)
    qtbot.addWidget(w)
    path = write_png(tmp_path / "noisy.png", add_noise(smooth_image(48, 48)))
    with qtbot.waitSignal(w.error_shown, timeout=TIMEOUT) as blocker:
        w.open_image(path)
    assert "model" in blocker.args[0].lower()
    assert w.image is not None  # the photo still opens
    assert w.noise_panel.sigma_label.text() == "unknown"


def test_sample_photo_is_bundled_and_reachable(qtbot, tmp_path):
    sample = resource("sample_noisy.png")
    assert sample.is_file() and sample.stat().st_size < 300_000
    img = read_image(sample)
    assert img.size == (384, 256) and img.bit_depth == 8
    w = MainWindow(settings=Settings.from_file(tmp_path / "s.ini"), denoiser=Denoiser(tmp_path / "none"),
                   quiet=True)
    qtbot.addWidget(w)
    opened = []
    w.open_image = opened.append  # no need to estimate here: just check the wiring
    w.sample_action.trigger()
    assert opened == [sample]
    menus = {a.text().replace("&", ""): a.menu() for a in w.menuBar().actions()}
    assert w.sample_action in menus["Help"].actions() and w.sample_action in menus["File"].actions()
    w.image_path = sample  # the bundled folder is not offered as the save location
    assert w.default_save_path().parent != sample.parent
    assert w.default_save_path().name == "sample_noisy_denoised.png"


def test_settings_are_remembered(qtbot, tmp_path):
    ini = tmp_path / "settings.ini"
    w = MainWindow(settings=Settings.from_file(ini), denoiser=Denoiser(tmp_path / "none"), quiet=True)
    qtbot.addWidget(w)
    w.noise_panel.set_mode("detail")
    w.noise_panel.set_steps(17)
    w.noise_panel.set_seed(42)
    w.noise_panel.set_ensemble(8)
    w.noise_panel.set_strength(85)
    w.noise_panel.set_color_strength(90)
    w.noise_panel.set_noise_model("real")
    w.noise_panel.set_network("fast")
    w.set_side_by_side(True)
    w.show()
    w.resize(720, 520)  # smaller than the offscreen screen (800x600), else Qt clamps the restore
    size = w.size()
    w.settings.add_recent_file(tmp_path / "a.png")
    w.close()
    assert ini.is_file()
    w2 = MainWindow(settings=Settings.from_file(ini), denoiser=Denoiser(tmp_path / "none"), quiet=True)
    qtbot.addWidget(w2)
    assert w2.noise_panel.mode() == "detail" and w2.noise_panel.steps() == 17 and w2.noise_panel.seed() == 42
    assert w2.viewer.is_side_by_side() and w2.side_action.isChecked()
    assert w2.size() == size
    assert w2.settings.recent_files == [str((tmp_path / "a.png").resolve())]
    w2._fill_recent_menu()
    assert any(a.text().endswith("a.png") for a in w2.recent_menu.actions())
    opts = w2.noise_panel.options()
    assert opts.mode == "detail" and opts.steps == 17 and opts.seed == 42 and opts.device == "auto"
    assert opts.noise_model == "real" and w2.noise_panel.batch_options().noise_model == "real"
    assert opts.ensemble == 8 and w2.noise_panel.batch_options().ensemble == 8
    assert opts.network == "fast" and w2.noise_panel.batch_options().network == "fast"
    assert opts.strength == pytest.approx(0.85) and w2.noise_panel.batch_options().strength == pytest.approx(0.85)
    assert opts.color_strength == pytest.approx(0.9) and w2.noise_panel.batch_options().color_strength == 0.9


def test_reset_the_options_brings_back_the_defaults(qtbot, tmp_path):
    """Denoise ▸ Reset the options: every option the panel sets goes back to DenoiseOptions()'s default."""
    w = MainWindow(settings=Settings.from_file(tmp_path / "s.ini"), denoiser=Denoiser(tmp_path / "none"), quiet=True)
    qtbot.addWidget(w)
    panel = w.noise_panel
    panel.set_mode("detail")
    panel.set_steps(17)
    panel.set_seed(42)
    panel.set_ensemble(8)
    panel.set_strength(60)
    panel.set_color_strength(30)
    panel.set_noise_model("real")
    panel.set_network("fast")
    panel.set_override(12.0)
    assert panel.batch_options() != DenoiseOptions()
    menus = {a.text().replace("&", ""): a.menu() for a in w.menuBar().actions()}
    assert w.reset_options_action in menus["Denoise"].actions() and w.reset_options_action.isEnabled()
    w.reset_options_action.trigger()
    assert panel.batch_options() == DenoiseOptions()
    assert panel.sigma_override() is None and not panel.sigma_slider.isEnabled()


def test_the_network_choice_reaches_the_run(qtbot, tmp_path):
    """Each network chosen runs and the status line says which; "Auto" names what it picks here."""
    from desktop_denoiser.pipeline.devices import NETWORKS, auto_network_label

    w = MainWindow(settings=Settings.from_file(tmp_path / "s.ini"), denoiser=Denoiser(), quiet=True)
    qtbot.addWidget(w)
    panel = w.noise_panel
    assert panel.network() == "auto" and panel.options().network == "auto"
    assert panel.network_combo.currentText() == f"Auto ({auto_network_label('cpu')})"
    clean = smooth_image(64, 64)
    open_and_estimate(qtbot, w, write_png(tmp_path / "noisy.png", add_noise(clean, seed=2)))
    results = {}
    assert [panel.network_combo.itemData(i) for i in range(panel.network_combo.count())] == list(NETWORKS)
    for network in ("standard", "fast", "camera"):
        panel.set_network(network)
        assert panel.options().network == network
        with qtbot.waitSignal(w.run_finished, timeout=TIMEOUT) as blocker:
            w.run_denoise()
        res = blocker.args[0]
        assert res.network == network and f"({network} network)" in w.progress_label.text()
        results[network] = res.pixels
        assert psnr(res.pixels, clean) > psnr(add_noise(clean, seed=2), clean) + 3
    assert not np.array_equal(results["standard"], results["fast"])
    assert not np.array_equal(results["fast"], results["camera"])


def test_viewer_zoom_pan_split_in_sync(qtbot):
    view = CompareView()
    qtbot.addWidget(view)
    view.resize(400, 300)
    view.show()
    before = array_to_qimage(np.zeros((100, 200, 3), np.float32))
    after = array_to_qimage(np.ones((100, 200, 3), np.float32))
    view.set_images(before, after)
    assert view.zoom() == pytest.approx(view.fit_zoom())
    view.zoom_100()
    assert view.zoom() == pytest.approx(1.0)
    c = view.center()
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=QPoint(100, 150))
    qtbot.mouseMove(view, QPoint(130, 170))
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=QPoint(130, 170))
    dpr = view.devicePixelRatioF()
    assert view.center().x() == pytest.approx(c.x() - 30 * dpr, abs=1.5)
    # the divider drags (starts at the middle)
    x = int(view.divider_x())
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=QPoint(x, 150))
    qtbot.mouseMove(view, QPoint(100, 150))
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=QPoint(100, 150))
    assert view.split() == pytest.approx(0.25, abs=0.01)
    view.fit()
    img = qimage_to_array(view.grab().toImage())
    assert img[150, 50].mean() < 10 and img[150, 300].mean() > 245  # before (black) left, after (white) right
    # side by side: both panes show the same image point at the same place
    view.set_side_by_side(True)
    left, right = view.panes()
    p = QPointF(50, 40)
    a, b = view.map_from_image(p, left), view.map_from_image(p, right)
    assert a.y() == pytest.approx(b.y()) and b.x() - a.x() == pytest.approx(right.left() - left.left())
    view.zoom_in()
    a2, b2 = view.map_from_image(p, left), view.map_from_image(p, right)
    assert b2.x() - a2.x() == pytest.approx(right.left() - left.left())
    view.fit()
    assert view.zoom() == pytest.approx(view.fit_zoom())


def test_help_lists_the_keyboard_shortcuts_and_the_mouse(qtbot, tmp_path):
    w = MainWindow(settings=Settings.from_file(tmp_path / "s.ini"), denoiser=Denoiser(tmp_path / "none"), quiet=True)
    qtbot.addWidget(w)
    text = w.shortcuts_text()
    for what, keys in (("Denoise", "Ctrl+R"), ("Preview the area in view", "Ctrl+Shift+R"), ("Batch", "Ctrl+B"),
                       ("Actual size (100%)", "Ctrl+1"), ("Keyboard and mouse", "F1")):
        assert re.search(f"<td>{re.escape(what)}</td><td>&nbsp;&nbsp;<b>[^<]*{re.escape(keys)}", text), what
    assert "mouse wheel" in text and "double-click" in text and "hold Space" in text
    help_menu = next(a.menu() for a in w.menuBar().actions() if a.text() == "&Help")
    assert w.shortcuts_action in help_menu.actions()


def test_viewer_reports_the_area_in_view_and_outlines_a_preview(qtbot):
    view = CompareView()
    qtbot.addWidget(view)
    view.resize(400, 300)
    view.show()
    grey = np.full((100, 200, 3), 0.5, np.float32)
    view.set_images(array_to_qimage(grey), array_to_qimage(grey))
    assert view.visible_rect() == (0.0, 0.0, 200.0, 100.0)  # fitted: all of it, clipped to the photo
    dpr = view.devicePixelRatioF()
    view.set_zoom(4.0 * dpr)  # 4 screen pixels per photo pixel: 100 x 75 photo pixels around the centre
    x0, y0, x1, y1 = view.visible_rect()
    assert (x0, y0, x1, y1) == pytest.approx((50, 12.5, 150, 87.5), abs=0.01)
    view.set_split(0.0)  # all of the pane shows the after image
    view.set_after_region((75, 25, 125, 75))
    img = qimage_to_array(view.grab().toImage())
    left_edge = int(round(view.map_from_image(QPointF(75, 50)).x()))
    band = img[140:160, left_edge - 2:left_edge + 3]
    assert (band[..., 2] < 0.5 * band[..., 0]).any()  # the yellow dashes (blue well below red)
    assert np.allclose(img[150, left_edge + 20], img[150, left_edge - 20], atol=2)  # only an outline
    view.set_images(array_to_qimage(grey))  # another photo: no outline
    assert view.after_region() is None


def test_holding_space_shows_the_before_image_on_the_after_side(qtbot):
    """Space held in the viewer: the after side shows the original (and says so), split or side by side;
    released, or when the viewer loses focus, the result again. Without a result Space does nothing."""
    view = CompareView()
    qtbot.addWidget(view)
    view.resize(400, 300)
    view.show()
    dark, light = np.full((100, 200, 3), 0.2, np.float32), np.full((100, 200, 3), 0.8, np.float32)
    view.set_images(array_to_qimage(dark))
    qtbot.keyPress(view, Qt.Key.Key_Space)
    assert not view.is_peeking()
    qtbot.keyRelease(view, Qt.Key.Key_Space)
    view.set_images(array_to_qimage(dark), array_to_qimage(light))
    view.set_labels("Original", "Denoised")

    def right_side():  # 0-1 from the grabbed screen (8 bits)
        return qimage_to_array(view.grab().toImage())[150, 300] / 255

    for side_by_side in (False, True):
        view.set_side_by_side(side_by_side)
        assert right_side()[0] > 0.7
        qtbot.keyPress(view, Qt.Key.Key_Space)
        assert view.is_peeking() and right_side()[0] < 0.3
        qtbot.keyRelease(view, Qt.Key.Key_Space)
        assert not view.is_peeking() and right_side()[0] > 0.7
    view.set_peeking(True)
    view.clearFocus()
    view.focusOutEvent(QFocusEvent(QEvent.Type.FocusOut))
    assert not view.is_peeking()


def test_a_part_written_into_a_qimage_equals_converting_the_whole():
    """convert.with_region: for grey, RGB (odd widths: padded lines) and with alpha, the same QImage as
    converting the whole composite, and the image it started from is left as it was."""
    from desktop_denoiser.qt.convert import with_region

    rng = np.random.default_rng(0)
    for channels, with_alpha in ((3, False), (1, False), (3, True), (1, True)):
        base = rng.random((41, 53, channels), dtype=np.float32)
        part = rng.random((15, 23, channels), dtype=np.float32)
        alpha = rng.random((41, 53), dtype=np.float32) if with_alpha else None
        whole = base.copy()
        whole[5:20, 7:30] = part
        start = array_to_qimage(base, alpha)
        kept = start.copy()
        got = with_region(start, part, 7, 5, alpha[5:20, 7:30] if with_alpha else None)
        assert got == array_to_qimage(whole, alpha) and start == kept
    with pytest.raises(ValueError, match="outside"):
        with_region(array_to_qimage(base), part[..., :1], 40, 0)


def test_convert_owns_data():
    a = (np.random.default_rng(0).random((7, 5, 3)) * 255).astype(np.uint8)
    img = array_to_qimage(a)
    a[:] = 0  # the QImage must not see this
    assert qimage_to_array(img).max() > 0
    g = array_to_qimage(np.full((4, 6, 1), 0.5, np.float32))
    assert g.format() == QImage.Format.Format_Grayscale8 and g.width() == 6
    u16 = array_to_qimage(np.full((3, 3, 3), 65535, np.uint16))
    assert qimage_to_array(u16).min() == 255
    # floats: out-of-range values clipped, NaN shown as 0, 8-bit values exact, others to the nearest level
    from desktop_denoiser.qt.convert import to_uint8

    levels = np.arange(256, dtype=np.float32) / 255
    assert np.array_equal(to_uint8(levels.reshape(16, 16))[..., 0], np.arange(256).reshape(16, 16))
    odd = np.array([[-0.5, 1.7, np.nan, 0.31, 100.4 / 255, 100.6 / 255]], np.float32)
    assert to_uint8(odd)[0, :, 0].tolist() == [0, 255, 0, 79, 100, 101]
    assert np.isnan(odd[0, 2]) and odd[0, 0] == -0.5  # the input itself is left alone


def test_excepthook_logs_and_explains(qtbot, caplog):
    try:
        raise RuntimeError("boom")
    except RuntimeError as exc:
        info = (type(exc), exc, exc.__traceback__)
    with caplog.at_level("CRITICAL", logger="desktop_denoiser"):
        msg = qt_app.handle_exception(*info, show_dialog=True)
    assert "boom" in msg and "log" in msg
    assert "Traceback" in caplog.text and "boom" in caplog.text
    boxes = list(qt_app._dialogs)
    assert boxes and boxes[-1].isVisible() and not boxes[-1].isModal()
    for b in boxes:
        b.close()


def test_save_as_format_and_plain_error_messages(tmp_path):
    tiff16 = "TIFF image, 16-bit, for editing (*.tif *.tiff)"
    assert resolve_save_as(tmp_path / "x.TIF", "PNG image (*.png)") == (tmp_path / "x.TIF", "TIFF", None)
    assert resolve_save_as(tmp_path / "x", "JPEG image (*.jpg *.jpeg)") == (tmp_path / "x.jpg", "JPEG", None)
    assert resolve_save_as(tmp_path / "x.v2", "") == (tmp_path / "x.v2.png", "PNG", None)
    assert resolve_save_as(tmp_path / "x", tiff16) == (tmp_path / "x.tif", "TIFF", 16)
    assert resolve_save_as(tmp_path / "x.tiff", tiff16) == (tmp_path / "x.tiff", "TIFF", 16)
    assert resolve_save_as(tmp_path / "x.jpg", tiff16) == (tmp_path / "x.jpg", "JPEG", None)  # the name decides
    from desktop_denoiser.pipeline.devices import DeviceError

    assert "memory" in describe_error(MemoryError())
    assert "memory" in describe_error(RuntimeError("CUDA out of memory. Tried to allocate 2 GiB"))
    assert describe_error(DeviceError("no CUDA GPU"), "Denoising failed") == "Denoising failed: no CUDA GPU"
