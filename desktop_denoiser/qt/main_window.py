"""The main window: menus, toolbar, before/after viewer, noise panel, run/cancel with live previews, save."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QSize, QStandardPaths, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QCloseEvent, QImage, QPixmap
from PySide6.QtWidgets import QFileDialog, QMainWindow, QMessageBox

from ..paths import resource, resources_dir
from ..pipeline.imageio import (SUPPORTED_SUFFIXES, LoadedImage, display_name, left_out_note, not_a_photo_message,
                                split_inputs)
from ..pipeline.jobs import Denoiser, DenoiseResult, NoiseEstimate
from ..pipeline.progress import format_seconds
from ..pipeline.region import Region, plan_region
from .batch import BatchDialog
from .convert import array_to_qimage
from .drops import FileDropTarget
from .icons import app_icon, icon
from .help import HelpMixin
from .results import ResultMixin
from .saving import SaveMixin
from .settings import Settings
from .viewer import CompareView
from .window_layout import PREVIEW_SIZE, WindowLayoutMixin
from .workers import DenoiseWorker, ImageLoadWorker, start_worker, stop_all

APP_TITLE = "Desktop Denoiser"
SAMPLE_NAME = "sample_noisy.png"
BIG_PHOTO_PIXELS = 4_000_000  # from this size on, the ready message points to Preview area
REPREVIEW_DELAY_MS = 400  # a preview follows a changed setting once the controls have rested this long
STEP_FORMAT = "step %v / %m"  # the progress bar counts reverse steps ...
TILE_FORMAT = "tile %v / %m"  # ... or, in a single-step run, the tiles of that step
class MainWindow(WindowLayoutMixin, SaveMixin, ResultMixin, HelpMixin, FileDropTarget, QMainWindow):
    """``quiet=True`` (tests, screenshots) shows no message boxes: errors still go to ``error_shown`` and the
    status bar, and ``confirm()`` answers ``auto_confirm``. A denoised result not yet saved is marked in
    the title, and opening another photo or quitting asks first (``ask_before_discarding``; off when quiet)."""

    error_shown = Signal(str)
    image_loaded = Signal(object)  # LoadedImage
    estimate_ready = Signal(object)  # NoiseEstimate
    worker_started = Signal(object)  # DenoiseWorker, emitted before its thread starts
    run_finished = Signal(object)  # DenoiseResult
    run_cancelled = Signal()
    run_failed = Signal(str)
    preview_shown = Signal()
    saved = Signal(str)

    def __init__(self, settings: Settings | None = None, denoiser: Denoiser | None = None, *, quiet: bool = False):
        super().__init__()
        self.settings = settings or Settings()
        self.denoiser = denoiser or Denoiser()
        self.quiet = quiet
        self.auto_confirm = False
        self.ask_before_discarding = not quiet
        self._unsaved = False  # a result that removed noise and has not been saved since (or since Strength moved)
        self.image: LoadedImage | None = None
        self.image_path: Path | None = None
        self.result: DenoiseResult | None = None  # what is shown and saved: the run mixed at the panel's strength
        self._full_result: DenoiseResult | None = None  # the run itself (strength 1)
        # the part a preview run denoised (the result is the original elsewhere, and is not saved); None for a
        # whole-photo result
        self.preview_region: Region | None = None
        self._result_label = ""  # how the shown result was made ("Fidelity · Normal · σ 25.2")
        # the run before it on this photo, (its result at strength 1, its label): View ▸ Compare with the
        # previous run shows it on the "before" side, to compare settings (fidelity against detail, say)
        self.previous: tuple[DenoiseResult, str] | None = None
        self.worker: DenoiseWorker | None = None
        self._load_worker: ImageLoadWorker | None = None
        self._run_region: Region | None = None  # what the running worker denoises (None: the whole photo)
        self._run_opts = None  # the running worker's DenoiseOptions
        self._preview_opts = None  # the shown preview's DenoiseOptions (what a changed setting is checked against)
        self._original_qimage: QImage | None = None  # the open photo as shown on the before side
        self._schedule = None
        self._loading_path: Path | None = None
        self.batch_dialog: BatchDialog | None = None
        self._boxes: list[QMessageBox] = []

        self.setWindowTitle(APP_TITLE)
        self.setWindowIcon(app_icon())
        self.setAcceptDrops(True)
        self.setDockOptions(QMainWindow.DockOption.AnimatedDocks)

        self.viewer = CompareView()
        self.setCentralWidget(self.viewer)
        self._build_side_panel()
        self._build_actions()
        self._build_menus()
        self._build_toolbar()
        self._build_status_bar()
        self._restore_settings()
        self._update_actions()

        self.viewer.zoom_changed.connect(self._on_zoom_changed)
        self.noise_panel.options_changed.connect(self._update_plan)
        # a preview on show is run again, on the same part, when a setting changes (once the controls rest;
        # after the run in progress, if any): fidelity against detail, or another σ, a second apart
        self._repreview_timer = QTimer(self)
        self._repreview_timer.setSingleShot(True)
        self._repreview_timer.setInterval(REPREVIEW_DELAY_MS)
        self._repreview_timer.timeout.connect(self._repreview)
        self._repreview_pending = False  # a setting changed while a run was going: preview again after it
        self.noise_panel.options_changed.connect(self._on_options_changed)
        # a new Strength re-mixes the result at once (what Save writes); the picture follows once the
        # control rests (converting a 24 MP result for display takes a few tenths of a second)
        self._display_timer = QTimer(self)
        self._display_timer.setSingleShot(True)
        self._display_timer.setInterval(150)
        self._display_timer.timeout.connect(self._display_result)
        self.noise_panel.strength_changed.connect(self._on_strength_changed)

    def _restore_settings(self) -> None:
        s = self.settings
        geo = s.geometry
        if geo is not None:
            self.restoreGeometry(geo)
        else:
            self.resize(1200, 780)
        state = s.window_state
        if state is not None:
            self.restoreState(state)
        self.noise_panel.set_mode(s.mode)
        self.noise_panel.set_noise_model(s.noise_model)
        self.noise_panel.set_ensemble(s.ensemble)
        self.noise_panel.set_strength(s.strength)
        self.noise_panel.set_color_strength(s.color_strength)
        self.noise_panel.set_steps(s.steps)
        self.noise_panel.set_seed(s.seed)
        self.noise_panel.set_device(s.device)
        self.noise_panel.set_network(s.network)
        self.set_side_by_side(s.side_by_side)

    def save_settings(self) -> None:
        s = self.settings
        s.geometry = self.saveGeometry()
        s.window_state = self.saveState()
        s.mode = self.noise_panel.mode()
        s.noise_model = self.noise_panel.noise_model()
        s.ensemble = self.noise_panel.ensemble()
        s.strength = round(self.noise_panel.strength() * 100)
        s.color_strength = round(self.noise_panel.color_strength() * 100)
        s.steps = self.noise_panel.steps()
        s.seed = self.noise_panel.seed()
        s.device = self.noise_panel.device()
        s.network = self.noise_panel.network()
        s.side_by_side = self.viewer.is_side_by_side()
        s.sync()

    # ------------------------------------------------------------------------------------------------
    # state helpers
    # ------------------------------------------------------------------------------------------------
    def is_running(self) -> bool:
        return self.worker is not None

    def _update_actions(self) -> None:
        running = self.is_running()
        has_image = self.image is not None
        self.run_action.setEnabled(has_image and not running)
        self.preview_action.setEnabled(has_image and not running)
        self.run_button.setEnabled(has_image and not running)
        self.preview_button.setEnabled(has_image and not running)
        self.cancel_action.setEnabled(running)
        self.cancel_button.setEnabled(running)
        self.reset_options_action.setEnabled(not running)
        self.compare_previous_action.setEnabled(self.previous is not None)
        self.save_action.setEnabled(self.can_save() and not running)
        self.save_as_action.setEnabled(self.can_save() and not running)
        self.noise_panel.set_controls_enabled(not running)
        for a in (self.fit_action, self.zoom100_action, self.zoom_in_action, self.zoom_out_action):
            a.setEnabled(has_image)

    def show_error(self, message: str, title: str = "Desktop Denoiser") -> None:
        """Plain-words error: emitted on ``error_shown``, put in the status bar and (unless quiet) a
        non-modal message box."""
        self.error_shown.emit(message)
        self.statusBar().showMessage(message, 15000)
        if self.quiet:
            return
        box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, self)
        box.setModal(False)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.finished.connect(lambda _=0, b=box: self._boxes.remove(b) if b in self._boxes else None)
        self._boxes.append(box)
        box.show()

    def confirm(self, question: str, title: str = "Desktop Denoiser") -> bool:
        if self.quiet:
            return self.auto_confirm
        answer = QMessageBox.question(self, title, question,
                                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                      QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    def set_side_by_side(self, on: bool) -> None:
        self.viewer.set_side_by_side(on)
        (self.side_action if on else self.split_action).setChecked(True)

    @Slot(float)
    def _on_zoom_changed(self, zoom: float) -> None:
        self.zoom_label.setText(f"{zoom * 100:.0f}%")

    # ------------------------------------------------------------------------------------------------
    # opening
    # ------------------------------------------------------------------------------------------------
    def open_dialog(self) -> None:
        exts = " ".join(f"*{e}" for e in SUPPORTED_SUFFIXES)
        start = self.settings.last_open_dir or QStandardPaths.writableLocation(
            QStandardPaths.StandardLocation.PicturesLocation)
        paths, _ = QFileDialog.getOpenFileNames(self, "Open a photo (or pick several for a batch)", start,
                                                f"Images ({exts} {exts.upper()});;All files (*)")
        if len(paths) == 1:
            self.open_image(paths[0])
        elif paths:  # several photos picked: queued in the batch dialog, as when dropped
            self.handle_dropped_paths(paths)

    def open_sample(self) -> None:
        self.open_image(resource(SAMPLE_NAME))

    def open_image(self, path: str | os.PathLike[str], *, compare_with: str | os.PathLike[str] | None = None
                   ) -> ImageLoadWorker | None:
        """Read the file and estimate its noise on a worker; ``image_loaded`` then ``estimate_ready`` follow.
        ``compare_with``: a saved result to show on the denoised side once it is loaded (compare_with_saved)."""
        path = Path(path)
        if not self._may_discard_result("Open another photo"):
            return None
        # a run on the photo shown goes on until the new one has loaded (_on_loaded): a file that cannot be
        # read must not cost the user that run
        if self._load_worker is not None:
            self._load_worker.cancel()
        worker = ImageLoadWorker(path, self.denoiser, compare_with=compare_with)
        worker.loaded.connect(self._on_loaded)
        worker.estimated.connect(self._on_estimated)
        worker.estimate_failed.connect(self._on_estimate_failed)
        worker.failed.connect(self._on_load_failed)
        worker.compare_loaded.connect(self._show_saved_result)
        worker.compare_failed.connect(self._on_compare_failed)
        self._load_worker = worker
        self._loading_path = path
        self.statusBar().showMessage(f"Opening {path.name}…")
        start_worker(worker)
        return worker

    def compare_with_saved(self, original: str | os.PathLike[str], saved: str | os.PathLike[str]
                           ) -> ImageLoadWorker | None:
        """Open ``original`` with ``saved`` (a batch's result for it) on the denoised side, to check a batch
        photo by photo in the split view. Nothing runs, and there is nothing new to save; Denoise still
        runs on the photo as usual."""
        return self.open_image(original, compare_with=saved)

    @Slot(object)
    def _show_saved_result(self, saved: LoadedImage) -> None:
        """The load worker read ``compare_with`` (after the photo itself, so ``self.image`` is that photo)."""
        if self.sender() is not self._load_worker or self.image is None:
            return  # another photo was opened meanwhile
        if saved.size != self.image.size:
            self.show_error(f"{saved.path.name} is {saved.size[0]}×{saved.size[1]}, not the size of "
                            f"{self.image_path.name}: it cannot be compared with it.")
            return
        self.viewer.set_after(array_to_qimage(saved.pixels, saved.alpha))
        self.viewer.set_labels("Original", "Saved result")
        self.statusBar().showMessage(f"Comparing with the saved result {saved.path}", 15000)

    @Slot(str)
    def _on_compare_failed(self, message: str) -> None:
        if self.sender() is self._load_worker:
            self.show_error(message)

    @Slot(object)
    def _on_loaded(self, image: LoadedImage) -> None:
        if self.sender() is not self._load_worker:
            return
        if self.is_running():  # the run was on the photo now replaced: stop it, and ignore what it still sends
            self.cancel_run()
            self.worker = None
        self.image = image
        self.image_path = self._loading_path
        self.result = self._full_result = None
        self.preview_region = None
        self._repreview_timer.stop()
        self._repreview_pending = False
        self.previous = None
        self.compare_previous_action.setChecked(False)
        self._set_unsaved(False)
        self._original_qimage = array_to_qimage(image.pixels, image.alpha)
        self.viewer.set_images(self._original_qimage)
        self.viewer.set_labels("Original", "Denoised")
        self.viewer.setFocus()  # the keys (arrows, +/-, Space) act on the photo just opened
        self._clear_previews()
        self._set_progress(0, 1)
        self.progress_label.setText("Estimating the noise level…")
        self.noise_panel.set_estimating()
        name = display_name(self.image_path) if self.image_path else "image"
        self.setWindowTitle(f"{name}[*] — {APP_TITLE}")  # [*]: Qt shows '*' while the result is unsaved
        w, h = image.size
        self.info_label.setText(f"{name}  ·  {w}×{h}  ·  {image.bit_depth}-bit {image.format}"
                                + "".join(f"  ·  {note}" for note in image.notes))  # (stays after the run)
        if image.notes:  # pages left out, ...: say so while the photo is on show
            self.statusBar().showMessage(f"Opened {name}: " + "; ".join(image.notes) + ".", 20000)
        else:
            self.statusBar().showMessage(f"Opened {name}.", 5000)
        if self.image_path is not None and not self._is_bundled(self.image_path):
            self.settings.add_recent_file(self.image_path)
            self.settings.last_open_dir = str(self.image_path.parent)
        self._update_actions()
        self.image_loaded.emit(image)

    @Slot(object)
    def _on_estimated(self, est: NoiseEstimate) -> None:
        if self.sender() is not self._load_worker:
            return
        self._load_worker = None
        try:
            self._schedule = self.denoiser.schedule  # already loaded by the estimate
        except Exception:
            self._schedule = None
        self.noise_panel.set_estimate(est)
        if est.two_level:
            self.progress_label.setText("This image is only black and white (1-bit): its dots are the picture, "
                                        "not noise, so there is nothing to denoise.")
        elif est.timestep < 0:
            self.progress_label.setText("This photo looks clean: there is almost no noise to remove.")
        elif self.image.size[0] * self.image.size[1] >= BIG_PHOTO_PIXELS:
            self.progress_label.setText("Ready. Press Denoise (Ctrl+R), or zoom in and check a part first with "
                                        "Preview area (Ctrl+Shift+R).")
        else:
            self.progress_label.setText("Ready. Press Denoise (Ctrl+R).")
        self._update_plan()
        self.estimate_ready.emit(est)

    @Slot(str)
    def _on_estimate_failed(self, message: str) -> None:
        if self.sender() is not self._load_worker:
            return
        self._load_worker = None
        self.noise_panel.clear_estimate("unknown")
        self.progress_label.setText("The noise level is unknown; set σ manually.")
        self.show_error(message)

    @Slot(str)
    def _on_load_failed(self, message: str) -> None:
        if self.sender() is not self._load_worker:
            return
        self._load_worker = None
        self.show_error(message)

    @Slot()
    def _update_plan(self) -> None:
        if self.image is None or self._schedule is None:
            return
        opts = self.noise_panel.options()
        est = self.noise_panel.estimate()
        try:
            analysis = est.analysis if est is not None else None
            if analysis is None and self.denoiser.needs_analysis(opts):
                return  # not on the GUI thread: the estimate's analysis arrives from its worker
            plan = self.denoiser.plan(self.image.pixels, opts, analysis=analysis)  # the run's own plan
        except Exception:
            return
        self.noise_panel.set_planned(plan.steps, plan.timestep, plan.sigma)

    @staticmethod
    def _is_bundled(path: Path) -> bool:
        try:
            return path.resolve().is_relative_to(resources_dir().resolve())
        except OSError:
            return False

    def _fill_recent_menu(self) -> None:
        menu = self.recent_menu
        menu.clear()
        files = self.settings.recent_files
        for i, f in enumerate(files, 1):
            act = menu.addAction(f"&{i}  {Path(f).name}")
            act.setToolTip(f)
            act.setStatusTip(f)
            act.triggered.connect(lambda _=False, p=f: self.open_image(p))
        if not files:
            menu.addAction("No recent files").setEnabled(False)
        menu.addSeparator()
        clear = menu.addAction("Clear the list")
        clear.setEnabled(bool(files))
        clear.triggered.connect(lambda _=False: self.settings.clear_recent_files())

    # -- drag and drop (FileDropTarget) -----------------------------------------------------------------
    def files_dropped(self, paths: list[str]) -> None:
        self.handle_dropped_paths(paths)

    def handle_dropped_paths(self, paths) -> None:
        """One photo is opened; a folder, or several photos and folders, open the batch dialog with them queued
        (files that are not photos are left out, and the status bar says so)."""
        paths = [Path(p) for p in paths]
        inputs, others = split_inputs(paths)
        if not inputs:
            if paths:
                self.show_error(not_a_photo_message(paths[0]))
            return
        if len(inputs) == 1 and not inputs[0].is_dir():
            self.open_image(inputs[0])
        else:
            self.open_batch(inputs=inputs)
        if others:
            self.statusBar().showMessage(left_out_note(others), 12000)

    # ------------------------------------------------------------------------------------------------
    # running
    # ------------------------------------------------------------------------------------------------
    def run_denoise(self) -> DenoiseWorker | None:
        """Start denoising the open image on a worker; returns the worker (None if nothing to do)."""
        return self._start_run(None)

    def preview_visible_area(self) -> DenoiseWorker | None:
        """Denoise only the part of the photo in view (a second or two where the whole photo takes a
        minute), with the whole photo's noise level and path; the result shows that part denoised and the
        rest as it is, outlined, and is not saved. With the whole photo in view this is Denoise."""
        if self.image is None:
            return self._start_run(None)
        box = self.viewer.visible_rect()
        region = plan_region(self.image.size, box) if box is not None else None
        return self._start_run(region)

    def _start_run(self, region: Region | None) -> DenoiseWorker | None:
        """A run of the whole photo (``region`` None) or of ``region`` (preview_visible_area)."""
        if self.image is None:
            self.show_error("Open a photo first (File ▸ Open).")
            return None
        if self.is_running():
            return None
        if region is not None and not self._may_discard_result("Preview the area in view"):
            return None
        # the run removes all the noise it finds; the panel's strength is mixed in afterwards (_show_result),
        # so changing it later needs no new run
        opts = self.noise_panel.options().at_full_strength()
        est = self.noise_panel.estimate()
        pixels = region.cut(self.image.pixels) if region is not None else self.image.pixels
        # planned from the whole photo's analysis: the part is denoised at the whole photo's level and path
        worker = DenoiseWorker(self.denoiser, pixels, opts, analysis=est.analysis if est else None,
                               plan_from=self.image.pixels if region is not None else None)
        self._run_region = region
        self._run_opts = opts
        worker.planned.connect(self._on_planned)
        worker.progress.connect(self._on_progress)
        worker.tile_progress.connect(self._on_tile_progress)
        worker.preview.connect(self._on_preview)
        worker.finished.connect(self._on_finished)
        worker.cancelled.connect(self._on_cancelled)
        worker.failed.connect(self._on_failed)
        self.worker = worker
        self._set_progress(0, 1)
        self.progress_label.setText("Starting…")
        self._update_actions()
        self.worker_started.emit(worker)
        start_worker(worker)
        return worker

    def cancel_run(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
            self.progress_label.setText("Cancelling…")

    def _is_current(self) -> bool:
        return self.worker is not None and self.sender() is self.worker

    def _set_progress(self, value: int, maximum: int, fmt: str = STEP_FORMAT) -> None:
        """The bar shows ``value`` of ``maximum`` (at least 1) steps, or tiles with TILE_FORMAT."""
        self.progress_bar.setFormat(fmt)
        self.progress_bar.setRange(0, max(1, maximum))
        self.progress_bar.setValue(value)

    @Slot(int, float, int)
    def _on_planned(self, steps: int, sigma: float, timestep: int) -> None:
        if not self._is_current():
            return
        self._set_progress(0, steps)
        self.noise_panel.set_planned(steps, timestep, sigma)
        what = "the area in view" if self._run_region is not None else "the photo"
        self.progress_label.setText(f"Denoising {what} at σ {sigma:.1f} (t* = {timestep}), {steps} step(s)…")

    @Slot(int, int, float)
    def _on_progress(self, index: int, total: int, seconds_left: float) -> None:
        if not self._is_current():
            return
        self._set_progress(index, total)
        left = f" · about {format_seconds(seconds_left)} left" if index < total else ""
        self.progress_label.setText(f"Step {index}/{total}{left}")

    @Slot(int, int)
    def _on_tile_progress(self, done: int, total: int) -> None:
        """Within a step of a big photo: which tile (the bar itself counts whole steps)."""
        if not self._is_current() or self.worker.cancel_requested:
            return
        if self.progress_bar.format() == TILE_FORMAT or self.progress_bar.maximum() == 1:
            # a single-step run (fidelity on a big photo): the bar counts its tiles until the step is done
            self._set_progress(done, total, TILE_FORMAT)
            self.progress_label.setText(f"Step 1/1 · tile {done}/{total}")
            return
        step = min(self.progress_bar.value() + 1, self.progress_bar.maximum())
        self.progress_label.setText(f"Step {step}/{self.progress_bar.maximum()} · tile {done}/{total}")

    @Slot(QImage, QImage)
    def _on_preview(self, x_t: QImage, pred_x0: QImage) -> None:
        if not self._is_current():
            return
        for label, img in ((self.xt_preview, x_t), (self.x0_preview, pred_x0)):
            dpr = self.devicePixelRatioF()
            pm = QPixmap.fromImage(img).scaled(QSize(PREVIEW_SIZE, PREVIEW_SIZE) * dpr,
                                               Qt.AspectRatioMode.KeepAspectRatio,
                                               Qt.TransformationMode.SmoothTransformation)
            pm.setDevicePixelRatio(dpr)
            label.setPixmap(pm)
        self.preview_shown.emit()

    def _clear_previews(self) -> None:
        for label in (self.xt_preview, self.x0_preview):
            label.clear()
            label.setText("–")

    @Slot(object)
    def _on_finished(self, result: DenoiseResult) -> None:
        if not self._is_current():
            return
        self.worker = None
        region, self.preview_region = self._run_region, self._run_region
        if region is not None:  # a preview: the part denoised, the rest of the photo as it is
            result = replace(result, pixels=region.paste(self.image.pixels, result.pixels))
        if self._full_result is not None:
            self.previous = (self._full_result, self._result_label)
        self._full_result = result
        self._result_label = f"{self._run_label_for(self._run_opts, region)} · σ {result.sigma:.1f}"
        self._preview_opts = self._run_opts if region is not None else None
        self._show_result()
        self._set_unsaved(region is None and result.timestep >= 0)  # nothing removed: nothing to lose
        self.progress_bar.setValue(self.progress_bar.maximum())
        done = (f"in {format_seconds(result.seconds)} on {result.device} ({result.network} network): "
                f"σ {result.sigma:.1f}, t* {result.timestep}, {result.steps} step(s).")
        if region is None:
            msg = f"Done {done} Save with Ctrl+S."
            if self.previous is not None and not self.compare_previous_action.isChecked():
                msg += " Ctrl+4 compares it with the previous run."
        else:
            w, h = region.size
            msg = (f"Preview of the area in view ({w}×{h}, outlined) done {done} Change a setting to preview "
                   f"it again; Denoise (Ctrl+R) runs the whole photo, to save it.")
        self.progress_label.setText(msg)
        self.statusBar().showMessage(msg, 10000)
        if result.warnings:
            self.statusBar().showMessage("; ".join(result.warnings), 15000)
        self._update_actions()
        self.run_finished.emit(result)
        self._repreview_if_pending()

    @Slot()
    def _on_options_changed(self) -> None:
        if self.preview_region is not None or (self.is_running() and self._run_region is not None):
            self._repreview_timer.start()

    def _repreview(self) -> None:
        """Preview the shown preview's part again with the panel's settings, unless they are its own."""
        if self.is_running():
            self._repreview_pending = self._run_region is not None
            return
        region = self.preview_region
        if region is None or self.image is None:
            return
        if self.noise_panel.options().at_full_strength() == self._preview_opts:
            return
        self._start_run(region)

    def _repreview_if_pending(self) -> None:
        if self._repreview_pending:
            self._repreview_pending = False
            self._repreview_timer.start()

    def _set_unsaved(self, unsaved: bool) -> None:
        self._unsaved = bool(unsaved)
        self.setWindowModified(self._unsaved)

    def has_unsaved_result(self) -> bool:
        """A denoised result that removed noise and has not been saved (at its current Strength)."""
        return self._unsaved and self.result is not None

    def _may_discard_result(self, action: str) -> bool:
        """Whether ``action`` may go on and drop the unsaved result (asks when there is one)."""
        if not (self.ask_before_discarding and self.has_unsaved_result()):
            return True
        return self.confirm(f"The denoised photo is not saved.\n{action} without saving it?")

    @Slot()
    def _on_cancelled(self) -> None:
        if not self._is_current():
            return
        self.worker = None
        self.progress_bar.setValue(0)
        self._repreview_pending = False  # stopped by hand: not started again
        self.progress_label.setText("Cancelled. The original photo is untouched.")
        self.statusBar().showMessage("Denoising cancelled.", 5000)
        self._update_actions()
        self.run_cancelled.emit()

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        if not self._is_current():
            return
        self.worker = None
        self.progress_bar.setValue(0)
        self._repreview_pending = False
        self.progress_label.setText("Denoising failed.")
        self._update_actions()
        self.show_error(message)
        self.run_failed.emit(message)

    # ------------------------------------------------------------------------------------------------
    # batch, about, closing
    # ------------------------------------------------------------------------------------------------
    def open_batch(self, input_dir: str | os.PathLike[str] | None = None, *,
                   inputs: list[str | os.PathLike[str]] | None = None) -> BatchDialog:
        """Show the batch dialog, with ``input_dir`` as its input folder or ``inputs`` (photos and folders)
        queued, unless a batch is running."""
        if self.batch_dialog is None:
            self.batch_dialog = BatchDialog(self.denoiser, self.noise_panel.batch_options, self.settings, self,
                                            quiet=self.quiet, icons=icon)
            self.batch_dialog.error_shown.connect(self.error_shown)
            self.batch_dialog.compare_requested.connect(self.compare_with_saved)
        if self.batch_dialog.is_running():
            if input_dir is not None or inputs:
                self.statusBar().showMessage("A batch is running: add these photos when it has finished.", 8000)
        elif input_dir is not None:
            self.batch_dialog.set_folders(input_dir)
        elif inputs:
            self.batch_dialog.set_inputs(inputs)
        self.batch_dialog.show()
        self.batch_dialog.raise_()
        self.batch_dialog.activateWindow()
        return self.batch_dialog

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        if not self._may_discard_result("Quit"):
            event.ignore()
            return
        if self.batch_dialog is not None and self.batch_dialog.is_running() and not self.quiet:
            if not self.confirm("A batch is still running. Cancel it and quit?"):
                event.ignore()
                return
        self._repreview_timer.stop()  # no preview may start once quitting has begun
        self._repreview_pending = False
        if self.worker is not None:
            self.worker.cancel()
        if self.batch_dialog is not None:
            self.batch_dialog.cancel()
        if self._load_worker is not None:
            self._load_worker.cancel()
        stop_all()
        try:
            self.save_settings()
        except Exception:  # never block quitting on a settings problem
            pass
        super().closeEvent(event)
