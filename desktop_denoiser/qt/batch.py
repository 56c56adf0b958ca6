"""Batch dialog: pick input/output folders, then denoise every image on a worker thread with a queue table
(waiting / running / done / skipped / failed + reason), overall progress, a preview of the current image,
pause/resume and cancel. A broken file is marked failed and the batch goes on. A photo whose result is already
in the output folder is skipped unless replacing is ticked, so starting a stopped batch again resumes it."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QSize, Qt, QUrl, Signal, Slot
from PySide6.QtGui import QBrush, QCloseEvent, QColor, QDesktopServices, QImage, QPixmap
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QComboBox, QDialog, QFileDialog, QFormLayout, QGroupBox,
                               QHBoxLayout, QHeaderView, QLabel, QLineEdit, QMessageBox, QProgressBar, QPushButton,
                               QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from ..pipeline.imageio import (OUTPUT_FORMATS, has_images_below, left_out_note, name_list, not_a_photo_message,
                                split_inputs, unreadable_photos_in)
from ..pipeline.jobs import Denoiser, DenoiseOptions, FileJob, collect_inputs, will_skip
from ..pipeline.progress import TimeLeft, format_seconds
from .drops import FileDropTarget
from .errors import describe_error
from .noise_panel import quality_name
from .settings import Settings
from .workers import BatchWorker, start_worker

WAITING, RUNNING, DONE, SKIPPED, FAILED = "waiting", "running", "done", "skipped", "failed"
_STATE_COLOURS = {WAITING: None, RUNNING: QColor(70, 130, 200, 60), DONE: QColor(60, 170, 90, 60),
                  SKIPPED: QColor(140, 140, 150, 50), FAILED: QColor(220, 70, 60, 70)}


def _denoised_beside(folder: Path) -> Path:
    """The default output folder: ``folder``'s sibling named ``<folder>_denoised``."""
    folder = folder.absolute()
    return folder.with_name(folder.name + "_denoised")


class BatchDialog(FileDropTarget, QDialog):
    """Non-modal. ``start()`` can be called directly (tests); ``batch_finished(ok, failed)`` ends every batch,
    cancelled or not."""

    batch_finished = Signal(int, int)
    error_shown = Signal(str)
    compare_requested = Signal(str, str)  # a finished row double-clicked: its photo and its saved result

    def __init__(self, denoiser: Denoiser, options: Callable[[], DenoiseOptions], settings: Settings | None = None,
                 parent: QWidget | None = None, *, quiet: bool = False, icons: Callable[[str], object] | None = None):
        super().__init__(parent)
        self.setWindowTitle("Batch denoise")
        self.setModal(False)
        self.setAcceptDrops(True)  # a folder, or photos, dropped here become the input
        self.denoiser = denoiser
        self.options_provider = options
        self.settings = settings
        self.quiet = quiet
        self.jobs: list[FileJob] = []
        self.states: list[str] = []
        self.reasons: list[str] = []
        self.worker: BatchWorker | None = None
        self._root: Path | None = None
        self.clock = time.monotonic  # what the time left is measured with (tests replace it)
        self._time_left: TimeLeft | None = None
        self._to_skip = 0  # photos of the running batch that will be skipped (their result exists)
        # photos and folders chosen together (set_inputs), shown in the input field as _chosen_text; typing or
        # browsing a folder there goes back to one input folder
        self._chosen: list[Path] | None = None
        self._chosen_text = ""

        folders = QGroupBox("Folders")
        form = QFormLayout(folders)
        self.input_edit = QLineEdit()
        self.input_edit.setPlaceholderText("Folder with the noisy photos (or drop a folder or photos on this window)")
        self.output_edit = QLineEdit()
        self.output_edit.setPlaceholderText("Folder for the denoised copies")
        in_browse, out_browse = QPushButton("Browse…"), QPushButton("Browse…")
        in_browse.clicked.connect(self._browse_input)
        out_browse.clicked.connect(self._browse_output)
        self.input_label = QLabel("Input folder:")  # "Photos:" while chosen photos are queued (set_inputs)
        form.addRow(self.input_label, self._row(self.input_edit, in_browse))
        form.addRow("Output folder:", self._row(self.output_edit, out_browse))
        self.format_combo = QComboBox()
        for key, fmt in OUTPUT_FORMATS.items():
            self.format_combo.addItem(fmt.label, key)
        self.format_combo.setToolTip("16-bit TIFF or PNG keeps the denoised photo's smooth gradients for further "
                                     "editing, also from a JPEG; the original's EXIF and colour profile are kept")
        form.addRow("Save as:", self.format_combo)
        self.recursive_check = QCheckBox("Include sub-folders (keeps the folder structure)")
        self.overwrite_check = QCheckBox("Replace results already in the output folder (otherwise their photos "
                                         "are skipped)")
        form.addRow(self.recursive_check)
        form.addRow(self.overwrite_check)

        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["File", "State", "Details"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.table.setToolTip("Double-click a finished photo to compare it with its result in the main window")
        self.table.cellDoubleClicked.connect(lambda row, _col: self.request_compare(row))

        self.preview_label = QLabel("Preview of the\ncurrent image")
        self.preview_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview_label.setFixedSize(QSize(200, 200))
        self.preview_label.setStyleSheet("QLabel { background: #26282c; color: #aab; border-radius: 4px; }")
        self.current_label = QLabel("")
        self.current_label.setWordWrap(True)
        self.current_label.setMaximumWidth(200)
        side = QVBoxLayout()
        side.addWidget(self.preview_label)
        side.addWidget(self.current_label)
        side.addStretch(1)
        middle = QHBoxLayout()
        middle.addWidget(self.table, 1)
        middle.addLayout(side)

        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setFormat("%p%")
        self.summary_label = QLabel("Choose an input and an output folder.")
        self.options_label = QLabel("")
        self.options_label.setStyleSheet("color: palette(mid);")

        self.start_button = QPushButton("Start")
        self.pause_button = QPushButton("Pause")
        self.pause_button.setCheckable(True)
        self.cancel_button = QPushButton("Cancel")
        self.close_button = QPushButton("Close")
        self.open_output_button = QPushButton("Open output folder")
        self.open_output_button.setToolTip("Show the denoised copies in the file manager")
        self.open_output_button.clicked.connect(self.open_output_folder)
        if icons is not None:
            self.start_button.setIcon(icons("run"))
            self.cancel_button.setIcon(icons("cancel"))
        self.start_button.setDefault(True)
        self.start_button.clicked.connect(self.start)
        self.pause_button.toggled.connect(self.set_paused)
        self.cancel_button.clicked.connect(self.cancel)
        self.close_button.clicked.connect(self.close)
        buttons = QHBoxLayout()
        buttons.addWidget(self.options_label, 1)
        buttons.addWidget(self.open_output_button)
        for b in (self.start_button, self.pause_button, self.cancel_button, self.close_button):
            buttons.addWidget(b)

        layout = QVBoxLayout(self)
        layout.addWidget(folders)
        layout.addLayout(middle, 1)
        layout.addWidget(self.summary_label)
        layout.addWidget(self.progress)
        layout.addLayout(buttons)
        self.resize(820, 560)

        if settings is not None:
            self.input_edit.setText(settings.batch_input_dir)
            self.output_edit.setText(settings.batch_output_dir)
            self.recursive_check.setChecked(settings.batch_recursive)
            self.set_output_format(settings.batch_format)
        self.input_edit.editingFinished.connect(self.refresh_queue)
        self.output_edit.editingFinished.connect(self.refresh_queue)
        self.output_edit.textChanged.connect(self._update_open_output)
        self.recursive_check.toggled.connect(self.refresh_queue)
        self.format_combo.currentIndexChanged.connect(self.refresh_queue)
        self.overwrite_check.toggled.connect(self.refresh_queue)
        self._set_running(False)
        self.refresh_queue()
        self._update_open_output()

    @staticmethod
    def _row(edit: QLineEdit, button: QPushButton) -> QWidget:
        w = QWidget()
        lay = QHBoxLayout(w)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(edit, 1)
        lay.addWidget(button)
        return w

    # -- folders -----------------------------------------------------------------------------------
    @staticmethod
    def _typed_folder(text: str) -> Path | None:
        """A folder as typed in a field: ``~`` is the home folder (as in a file manager's path bar)."""
        text = text.strip()
        return Path(text).expanduser() if text else None

    @staticmethod
    def _check_full_path(folder: Path, which: str) -> None:
        """A folder typed without its full path would be taken below wherever the app was started from (and
        remembered so, to mean another folder next time): refused."""
        if not folder.is_absolute():
            raise ValueError(f"Type the {which} folder's full path ('{folder}' names none), or choose it with "
                             "its … button.")

    def _output_dir(self) -> Path | None:
        return self._typed_folder(self.output_edit.text())

    def _input_dir(self) -> Path | None:
        return self._typed_folder(self.input_edit.text())

    def _update_open_output(self) -> None:
        out = self._output_dir()
        self.open_output_button.setEnabled(out is not None and out.is_dir())

    @Slot()
    def open_output_folder(self) -> bool:
        """Show the output folder in the system's file manager (False when it does not exist yet)."""
        out = self._output_dir()
        if out is None or not out.is_dir():
            self._update_open_output()
            return False
        return QDesktopServices.openUrl(QUrl.fromLocalFile(str(out.absolute())))

    def set_folders(self, input_dir: str | Path | None = None, output_dir: str | Path | None = None, *,
                    recursive: bool | None = None) -> None:
        if input_dir is not None:
            self._forget_chosen()
            self.input_edit.setText(str(input_dir))
            if output_dir is None:
                self.output_edit.setText(str(_denoised_beside(Path(input_dir))))
        if output_dir is not None:
            self.output_edit.setText(str(output_dir))
        if recursive is not None:
            self.recursive_check.blockSignals(True)
            self.recursive_check.setChecked(recursive)
            self.recursive_check.blockSignals(False)
        self.refresh_queue()

    def set_inputs(self, paths, output_dir: str | Path | None = None, *, recursive: bool | None = None) -> None:
        """Photos and folders chosen together (dropped on the main window, or given on the command line): one
        folder is the input folder (:meth:`set_folders`); anything else is queued as it is, the input field
        naming them. The default output folder sits beside the first one's folder, named ``…_denoised``."""
        paths = [Path(p) for p in paths]
        if not paths:
            return
        if len(paths) == 1 and paths[0].is_dir():
            self.set_folders(paths[0], output_dir, recursive=recursive)
            return
        self._chosen = paths
        self._chosen_text = f"{name_list(paths)} ({len(paths)} chosen)"
        self.input_edit.setText(self._chosen_text)
        self.input_edit.setToolTip("\n".join(str(p) for p in paths))
        self.input_label.setText("Photos:")
        self.set_folders(output_dir=output_dir or self._default_output(), recursive=recursive)

    def add_dropped(self, paths) -> bool:
        """Photos and folders dropped on the dialog become its input (set_inputs; a folder alone is the input
        folder). An output folder the user chose stays; the default one (beside the input) follows the new
        input. Files that are not photos are left out and the summary says so. Refused while a batch runs."""
        paths = [Path(p) for p in paths]
        if self.is_running():
            self.show_error("A batch is running: drop these photos when it has finished.")
            return False
        inputs, others = split_inputs(paths)
        if not inputs:
            if paths:
                self.show_error(not_a_photo_message(paths[0]))
            return False
        out = self._output_dir()
        default = self._default_output()
        chosen = out is not None and (default is None or out.absolute() != default)
        self.set_inputs(inputs, out if chosen else None)
        if others:
            self.summary_label.setText(f"{self.summary_label.text()} {left_out_note(others)}.")
        return True

    def _default_output(self) -> Path | None:
        """The output folder the current input gets by default (beside it), None without an input."""
        chosen = self._chosen_inputs()
        if chosen:
            folder = chosen[0] if chosen[0].is_dir() else chosen[0].parent
        else:
            folder = self._input_dir()
        return _denoised_beside(folder) if folder is not None else None

    def files_dropped(self, paths: list[str]) -> None:  # FileDropTarget
        self.add_dropped(paths)

    def _chosen_inputs(self) -> list[Path] | None:
        """The photos and folders of :meth:`set_inputs`, unless the input field has been changed since."""
        if self._chosen is not None and self.input_edit.text() != self._chosen_text:
            self._forget_chosen()
        return self._chosen

    def _forget_chosen(self) -> None:
        self._chosen = None
        self.input_edit.setToolTip("")
        self.input_label.setText("Input folder:")

    def _browse_input(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Input folder", self.input_edit.text())
        if d:
            self.set_folders(d)

    def _browse_output(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Output folder", self.output_edit.text() or self.input_edit.text())
        if d:
            self.set_folders(output_dir=d)

    # -- queue -------------------------------------------------------------------------------------
    def _collect(self) -> list[FileJob]:
        inp, out = self._input_dir(), self._output_dir()
        chosen = self._chosen_inputs()
        if chosen is None:
            if inp is None:
                raise ValueError("Choose an input folder first.")
            self._check_full_path(inp, "input")
            if not inp.is_dir():
                raise ValueError(f"The input folder '{inp}' does not exist.")
        if out is None:
            raise ValueError("Choose an output folder first.")
        self._check_full_path(out, "output")
        return collect_inputs(chosen if chosen is not None else [inp], out, recursive=self.recursive_check.isChecked(),
                              out_format=self.output_format())

    def output_format(self) -> str:
        """The chosen key of ``imageio.OUTPUT_FORMATS``."""
        return self.format_combo.currentData()

    def set_output_format(self, key: str) -> None:
        i = self.format_combo.findData(key)
        self.format_combo.setCurrentIndex(max(0, i))

    @Slot()
    def refresh_queue(self) -> None:
        """List the files that a batch would process (all 'waiting')."""
        if self.is_running():
            return
        try:
            jobs = self._collect()
            msg = f"{len(jobs)} image(s) to denoise." if jobs else self._no_images_message()
        except Exception as exc:
            jobs, msg = [], describe_error(exc)
        self._fill(jobs)
        existing = [row for row, job in enumerate(jobs) if job.output.is_file()]
        if existing:
            replace = self.overwrite_check.isChecked()
            for row in existing:
                self.table.item(row, 2).setText("result exists: " + ("to be replaced" if replace else "skipped"))
            n = len(jobs) - len(existing)
            msg = (f"{len(jobs)} image(s) to denoise; {len(existing)} of them already have a result, which will "
                   f"be replaced." if replace else
                   f"{n} image(s) to denoise; {len(existing)} already have a result in the output folder and "
                   f"will be skipped.")
        left = self._left_out_photos()
        if left:
            msg += (f" {left} camera raw or HEIC file(s) left out: they are not read (export them as TIFF or "
                    "JPEG first).")
        self.summary_label.setText(msg)
        self.progress.setValue(0)

    def _no_images_message(self) -> str:
        """Why the queue is empty, with the way on where the photos are in sub-folders not searched."""
        msg = "No images found in the input folder."
        if not self.recursive_check.isChecked():
            chosen = self._chosen_inputs()
            folders = [p for p in (chosen if chosen is not None else [self._input_dir()]) if p and p.is_dir()]
            if any(has_images_below(f) for f in folders):
                msg = ("No images directly in the input folder, but its sub-folders hold some: tick “Include "
                       "sub-folders” to denoise them.")
        return msg

    def _left_out_photos(self) -> int:
        """How many camera raw / HEIC files the chosen folders hold (list_images leaves them out)."""
        chosen = self._chosen_inputs()
        folder = self._input_dir()
        inputs = chosen if chosen is not None else ([folder] if folder is not None else [])
        try:
            return len(unreadable_photos_in(inputs, recursive=self.recursive_check.isChecked()))
        except Exception:  # an unreadable folder is already reported by the queue
            return 0

    def _fill(self, jobs: list[FileJob]) -> None:
        self.jobs = jobs
        self.states = [WAITING] * len(jobs)
        self.reasons = [""] * len(jobs)
        chosen = self._chosen_inputs()
        if chosen:  # names below the chosen items' common folder ("Trip/IMG_1.jpg" for a chosen folder Trip)
            try:
                self._root = Path(os.path.commonpath([p.absolute().parent for p in chosen]))
            except ValueError:  # on different drives: file names alone
                self._root = None
        else:
            self._root = self._input_dir()
        self.table.setRowCount(len(jobs))
        for row, job in enumerate(jobs):
            try:
                name = str(job.input.absolute().relative_to(self._root.absolute())) if self._root else job.input.name
            except ValueError:
                name = job.input.name
            item = QTableWidgetItem(name)
            item.setToolTip(f"{job.input}\n→ {job.output}")
            self.table.setItem(row, 0, item)
            self.table.setItem(row, 1, QTableWidgetItem(WAITING))
            self.table.setItem(row, 2, QTableWidgetItem(""))

    def _set_state(self, row: int, state: str, details: str = "") -> None:
        self.states[row] = state
        if state == FAILED:
            self.reasons[row] = details
        self.table.item(row, 1).setText(state)
        self.table.item(row, 2).setText(details)
        self.table.item(row, 2).setToolTip(details)
        colour = _STATE_COLOURS[state]
        for c in range(3):
            self.table.item(row, c).setBackground(QBrush(colour) if colour else QBrush())
        if state == RUNNING:
            self.table.scrollToItem(self.table.item(row, 0))

    def request_compare(self, row: int) -> bool:
        """Ask the main window to show a done (or skipped) row's photo beside its saved result."""
        if not (0 <= row < len(self.jobs)) or self.states[row] not in (DONE, SKIPPED):
            return False
        job = self.jobs[row]
        if not job.output.is_file():
            return False
        self.compare_requested.emit(str(job.input), str(job.output))
        return True

    def state_of(self, row: int) -> str:
        return self.states[row]

    def reason_of(self, row: int) -> str:
        return self.reasons[row]

    def row_of(self, path: str | Path) -> int:
        p = Path(path).resolve()
        for row, job in enumerate(self.jobs):
            if job.input.resolve() == p:
                return row
        raise KeyError(path)

    # -- running -----------------------------------------------------------------------------------
    def is_running(self) -> bool:
        return self.worker is not None

    def _set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        self.pause_button.setEnabled(running)
        self.cancel_button.setEnabled(running)
        for w in (self.input_edit, self.output_edit, self.format_combo, self.recursive_check, self.overwrite_check):
            w.setEnabled(not running)
        if not running:
            self.pause_button.blockSignals(True)
            self.pause_button.setChecked(False)
            self.pause_button.setText("Pause")
            self.pause_button.blockSignals(False)

    @Slot()
    def start(self) -> bool:
        """Start the batch. Returns False (and shows why) when it cannot start."""
        if self.is_running():
            return False
        try:
            jobs = self._collect()
        except Exception as exc:
            self.show_error(describe_error(exc))
            return False
        if not jobs:
            self.show_error(self._no_images_message())
            return False
        self._fill(jobs)
        out_dir = self._output_dir()
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self.show_error(f"Cannot create the output folder '{out_dir}': {exc.strerror or exc}.")
            return False
        if self.settings is not None:
            if self._chosen_inputs() is None:  # photos chosen together are not a folder to remember
                self.settings.batch_input_dir = str(self._input_dir())
            self.settings.batch_output_dir = str(out_dir)
            self.settings.batch_recursive = self.recursive_check.isChecked()
            self.settings.batch_format = self.output_format()
        opts = self.options_provider()
        self.options_label.setText(f"Mode: {opts.mode} · quality: {quality_name(opts.ensemble)}"
                                   f" · σ: {'auto' if opts.sigma is None else f'{opts.sigma:.1f}'}"
                                   f" · strength: {round(opts.strength * 100)} %"
                                   f" · colour noise: {round(opts.color_strength * 100)} % · device: {opts.device}"
                                   f" · network: {opts.network}")
        replace = self.overwrite_check.isChecked()
        worker = BatchWorker(jobs, opts, self.denoiser, overwrite=replace, skip_existing=not replace)
        worker.job_started.connect(self._on_job_started)
        worker.progress.connect(self._on_progress)
        worker.overall.connect(self._on_overall)
        worker.preview.connect(self._on_preview)
        worker.job_done.connect(self._on_job_done)
        worker.job_skipped.connect(self._on_job_skipped)
        worker.job_failed.connect(self._on_job_failed)
        worker.paused.connect(self._on_paused)
        worker.finished.connect(self._on_finished)
        worker.cancelled.connect(self._on_cancelled)
        worker.failed.connect(self._on_worker_failed)
        self.worker = worker
        self._ok = self._bad = self._skipped = 0
        self._to_skip = sum(will_skip(job, overwrite=replace, skip_existing=not replace) for job in jobs)
        self._time_left = TimeLeft(self.clock)
        self._set_running(True)
        self.progress.setValue(0)
        self.summary_label.setText(f"Denoising {len(jobs)} image(s)…")
        start_worker(worker)
        return True

    @Slot(bool)
    def set_paused(self, paused: bool) -> None:
        if self.worker is None:
            return
        if paused:
            self.worker.pause()
            self.pause_button.setText("Resume")
            self.summary_label.setText("Pausing after the current step…")
        else:
            self.worker.resume()
            self.pause_button.setText("Pause")
            self.summary_label.setText("Resumed.")
        if self.pause_button.isChecked() != paused:
            self.pause_button.blockSignals(True)
            self.pause_button.setChecked(paused)
            self.pause_button.blockSignals(False)

    @Slot()
    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
            self.worker.resume()
            self.summary_label.setText("Cancelling…")

    def _is_current(self) -> bool:
        return self.sender() is self.worker and self.worker is not None

    @Slot(int, int)
    def _on_job_started(self, row: int, steps: int) -> None:
        if not self._is_current():
            return
        self._set_state(row, RUNNING, f"{steps} step(s)")
        self.current_label.setText(self.table.item(row, 0).text())

    @Slot(int, int, int)
    def _on_progress(self, row: int, index: int, total: int) -> None:
        if self._is_current():
            self.table.item(row, 2).setText(f"step {index}/{total}")

    @Slot(float)
    def _on_overall(self, fraction: float) -> None:
        if not self._is_current():
            return
        self.progress.setValue(round(1000 * fraction))
        seconds = None if self._time_left is None else self._time_left.seconds_left_in_batch(
            photos=len(self.jobs), to_skip=self._to_skip, finished=fraction * len(self.jobs), skipped=self._skipped)
        self.progress.setFormat("%p%" if seconds is None or fraction >= 1.0 else
                                f"%p% · about {format_seconds(seconds)} left")

    @Slot(QImage)
    def _on_preview(self, image: QImage) -> None:
        if not self._is_current():
            return
        pm = QPixmap.fromImage(image)
        size = self.preview_label.size() * self.devicePixelRatioF()
        pm = pm.scaled(size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
        pm.setDevicePixelRatio(self.devicePixelRatioF())
        self.preview_label.setPixmap(pm)

    @Slot(int, object)
    def _on_job_done(self, row: int, summary: dict) -> None:
        if not self._is_current():
            return
        self._ok += 1
        out = Path(summary.get("output", ""))
        detail = (f"σ {summary.get('sigma', 0):.1f}, {summary.get('steps', 0)} step(s), "
                  f"{summary.get('seconds', 0):.1f} s → {out.name}")
        if summary.get("hidden_noise_sigma") is not None:
            detail += f" (noise may be hidden: if still grainy, try σ {summary['hidden_noise_sigma']:.0f})"
        if summary.get("suggest_camera_noise"):
            detail += " (grain kept as detail: if still grainy, try Noise type ▸ Camera noise)"
        if summary.get("mosaic_noise"):
            detail += " (grid-pattern grain removed as camera noise: if texture looks smeared, try Noise type ▸ " \
                      "Gaussian (white))"
        for warning in summary.get("warnings", ()):  # pages left out, an out-of-memory retry, ...
            detail += f" ({warning})"
        self._set_state(row, DONE, detail)
        self._update_summary()

    @Slot(int, str)
    def _on_job_skipped(self, row: int, output: str) -> None:
        if not self._is_current():
            return
        self._skipped += 1
        self._set_state(row, SKIPPED, f"result already saved: {Path(output).name}")
        self._update_summary()

    @Slot(int, str)
    def _on_job_failed(self, row: int, reason: str) -> None:
        if not self._is_current():
            return
        if reason == "cancelled":
            self._set_state(row, WAITING, "cancelled")
            return
        self._bad += 1
        self._set_state(row, FAILED, reason)
        self._update_summary()

    def _update_summary(self) -> None:
        n = len(self.jobs)
        text = f"{self._ok + self._skipped + self._bad} of {n} processed: {self._ok} done"
        if self._skipped:
            text += f", {self._skipped} skipped"
        if self._bad:
            text += f", {self._bad} failed"
        self.summary_label.setText(text + ".")

    @Slot(bool)
    def _on_paused(self, paused: bool) -> None:
        if not self._is_current():
            return
        if self._time_left is not None:
            self._time_left.set_paused(paused)  # a pause is not time the batch needs
        if paused:
            self.summary_label.setText("Paused. Press Resume to go on.")

    @Slot(int, int)
    def _on_finished(self, ok: int, failed: int) -> None:
        if not self._is_current():
            return
        skipped = f", {self._skipped} skipped (their result already existed)" if self._skipped else ""
        self._end(ok, failed, f"Finished: {ok} image(s) denoised{skipped}" + (f", {failed} failed." if failed else "."))

    @Slot(int, int)
    def _on_cancelled(self, ok: int, failed: int) -> None:
        if self._is_current():
            self._end(ok, failed, f"Cancelled: {ok} image(s) denoised before stopping.")

    @Slot(str)
    def _on_worker_failed(self, message: str) -> None:
        if self._is_current():
            self.show_error(message)
            self._end(self._ok, self._bad, f"The batch stopped: {message}")

    def _end(self, ok: int, failed: int, text: str) -> None:
        self.worker = None
        self._update_open_output()  # the batch made the folder
        self._time_left = None
        self.progress.setFormat("%p%")
        self._set_running(False)
        self.summary_label.setText(text)
        if not failed and text.startswith("Finished"):
            self.progress.setValue(1000)
        self.batch_finished.emit(ok, failed)

    # -- errors / closing --------------------------------------------------------------------------
    def show_error(self, message: str) -> None:
        self.error_shown.emit(message)
        self.summary_label.setText(message)
        if not self.quiet:
            box = QMessageBox(QMessageBox.Icon.Warning, "Batch denoise", message, QMessageBox.StandardButton.Ok, self)
            box.setModal(False)
            box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            box.show()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        if self.is_running():
            if not self.quiet:
                answer = QMessageBox.question(self, "Batch denoise", "A batch is running. Cancel it and close?")
                if answer != QMessageBox.StandardButton.Yes:
                    event.ignore()
                    return
            self.cancel()
        # not QDialog.closeEvent: it calls reject(), which is close() here, re-entered while closing, so the
        # dialog stayed open and the event was ignored (Close, the title bar's X and Esc did nothing)
        event.accept()

    def reject(self) -> None:  # Esc: the same as Close (asks first while a batch runs)
        self.close()
