"""Background work on QThreads: open + estimate, denoise one image, and batches of files.

Each worker is a QObject moved to its own QThread (``start_worker``); it consumes the pipeline's
generators and talks to the GUI only through signals (queued across threads). Images crossing threads
are owned copies (StepEvent previews are owned arrays; QImages are built with ``array_to_qimage``, which
copies). ``cancel()`` / ``pause()`` / ``resume()`` are thread-safe flags checked between steps, so they
can be called directly from the GUI thread while ``run`` is busy. A cancel is also honoured between the
tiles of a step (a 12-megapixel photo is one long step in fidelity mode): the pipeline's ``on_tile``
hook raises :class:`Cancelled` inside the generator.

Signals
-------
ImageLoadWorker: loaded(LoadedImage), compare_loaded(LoadedImage), compare_failed(str), estimated(NoiseEstimate),
                 estimate_failed(str), failed(str), done()
DenoiseWorker:   planned(steps, sigma, t*), progress(index, total, seconds_left), tile_progress(done, total),
                 preview(QImage x_t, QImage pred_x0), finished(DenoiseResult), cancelled(), failed(str), done()
BatchWorker:     job_started(row, steps), progress(row, index, total), overall(fraction), preview(QImage),
                 job_done(row, summary), job_skipped(row, output), job_failed(row, reason), paused(bool),
                 finished(ok, failed), cancelled(ok, failed), failed(str), done()
``done`` is always the last signal of a worker; its thread quits on it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import numpy as np
from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot
from PySide6.QtGui import QImage

from ..core.noise_analysis import NoiseAnalysis
from ..core.sampler import StepEvent
from ..pipeline.imageio import DiskFullError, read_image
from ..pipeline.jobs import Denoiser, DenoiseOptions, FileJob, denoise_files
from .convert import array_to_qimage
from .errors import describe_error

PREVIEW_INTERVAL = 0.1  # seconds: at most ~10 preview updates per second


class Cancelled(Exception):
    """Raised between tiles by a worker's ``on_tile`` hook when a cancel was asked for."""


class Worker(QObject):
    """Base: a cancel flag and the ``done`` signal that ends the thread."""

    done = Signal()

    def __init__(self) -> None:
        super().__init__()
        self._cancel = threading.Event()

    def cancel(self) -> None:
        """Ask the worker to stop after the current step, or tile of a step (thread-safe)."""
        self._cancel.set()

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    def _raise_if_cancelled(self) -> None:
        """Abandon the run (between two steps, or two tiles from an ``on_tile`` hook) once a cancel was asked for."""
        if self._cancel.is_set():
            raise Cancelled()

    @Slot()
    def _execute(self) -> None:
        """Entry point on the worker thread. (Subclasses override ``run``, a plain method: a slot overridden in
        a subclass would be invoked on the GUI thread by PySide6.)"""
        self.run()

    def run(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class _ThreadHandle(QObject):
    """Lives in the GUI thread; keeps the thread and worker alive until the thread has finished."""

    def __init__(self, thread: QThread, worker: Worker):
        super().__init__()
        self.thread, self.worker = thread, worker

    @Slot()
    def release(self) -> None:
        self.thread.wait()
        _RUNNING.discard(self)


_RUNNING: set[_ThreadHandle] = set()


def start_worker(worker: Worker) -> QThread:
    """Run ``worker.run`` on a new QThread; the thread quits when the worker emits ``done``."""
    thread = QThread()
    thread.setObjectName(type(worker).__name__)
    worker.moveToThread(thread)
    handle = _ThreadHandle(thread, worker)
    _RUNNING.add(handle)
    thread.started.connect(worker._execute)
    # direct: quit() is thread-safe, and a queued call would wait for the GUI thread (dead-locks stop_all)
    worker.done.connect(thread.quit, Qt.ConnectionType.DirectConnection)
    thread.finished.connect(handle.release)
    thread.start()
    return thread


def running_workers() -> list[Worker]:
    return [h.worker for h in _RUNNING if h.thread.isRunning()]


def stop_all(timeout_ms: int = 10000) -> bool:
    """Cancel every running worker and wait for the threads (used on quit and by tests)."""
    ok = True
    for h in list(_RUNNING):
        h.worker.cancel()
        if hasattr(h.worker, "resume"):
            h.worker.resume()
    for h in list(_RUNNING):
        ok = h.thread.wait(timeout_ms) and ok
    return ok


class ImageLoadWorker(Worker):
    """Read an image file (and ``compare_with``, a saved result for it, when given), then estimate its noise
    level (sigma, t*)."""

    loaded = Signal(object)  # LoadedImage
    compare_loaded = Signal(object)  # LoadedImage of compare_with, right after ``loaded``
    compare_failed = Signal(str)
    estimated = Signal(object)  # NoiseEstimate
    estimate_failed = Signal(str)
    failed = Signal(str)

    def __init__(self, path: str | Path, denoiser: Denoiser, *, compare_with: str | Path | None = None):
        super().__init__()
        self.path = Path(path)
        self.denoiser = denoiser
        self.compare_with = None if compare_with is None else Path(compare_with)

    def run(self) -> None:
        try:
            try:
                image = read_image(self.path)
            except Exception as exc:
                self.failed.emit(describe_error(exc, f"Cannot open {self.path.name}"))
                return
            self.loaded.emit(image)
            if self.compare_with is not None:
                try:
                    self.compare_loaded.emit(read_image(self.compare_with))
                except Exception as exc:
                    self.compare_failed.emit(describe_error(exc, f"Cannot open {self.compare_with.name}"))
            if self.cancel_requested:
                return
            try:
                self.estimated.emit(self.denoiser.estimate(image.pixels))
            except Exception as exc:
                self.estimate_failed.emit(describe_error(exc, "Noise estimate failed"))
        finally:
            self.done.emit()


class DenoiseWorker(Worker):
    """Consume ``Denoiser.run`` step by step; previews are throttled to PREVIEW_INTERVAL."""

    planned = Signal(int, float, int)  # steps, sigma, t*
    progress = Signal(int, int, float)  # step index (1-based), total, estimated seconds left
    tile_progress = Signal(int, int)  # tiles done in the current step, tiles per step
    preview = Signal(QImage, QImage)  # current x_t, predicted x0
    finished = Signal(object)  # DenoiseResult
    cancelled = Signal()
    failed = Signal(str)

    def __init__(self, denoiser: Denoiser, pixels: np.ndarray, opts: DenoiseOptions, *,
                 previews: bool = True, preview_interval: float = PREVIEW_INTERVAL,
                 analysis: NoiseAnalysis | None = None, plan_from: np.ndarray | None = None):
        super().__init__()
        self.denoiser = denoiser
        self.pixels = pixels
        self.opts = replace(opts, preview=previews)
        self.preview_interval = preview_interval
        self.analysis = analysis  # the estimate's noise analysis of these pixels (not recomputed)
        # the photo the run is planned from when ``pixels`` is a part of it (a preview): its noise level and
        # path, analysed here if ``analysis`` is missing (the estimate not arrived yet, or failed)
        self.plan_from = plan_from

    def run(self) -> None:
        gen = None
        try:
            plan = self.denoiser.plan(self.pixels if self.plan_from is None else self.plan_from, self.opts,
                                      analysis=self.analysis)
            self.planned.emit(plan.steps, float(plan.sigma), int(plan.timestep))
            gen = self.denoiser.run(self.pixels, self.opts, plan, on_tile=self._on_tile)
            t0 = time.perf_counter()
            last_preview = -1.0
            pending: StepEvent | None = None
            while True:
                if self.cancel_requested:
                    gen.close()
                    self.cancelled.emit()
                    return
                try:
                    ev = next(gen)
                except StopIteration as stop:
                    result = stop.value
                    break
                except Cancelled:
                    self.cancelled.emit()
                    return
                now = time.perf_counter()
                left = (now - t0) / ev.index * (ev.total - ev.index)
                self.progress.emit(ev.index, ev.total, left)
                if ev.pred_x0 is not None:
                    pending = ev
                    if now - last_preview >= self.preview_interval or ev.index == ev.total:
                        self._emit_preview(pending)
                        pending, last_preview = None, now
            if pending is not None:
                self._emit_preview(pending)
            self.finished.emit(result)
        except Exception as exc:
            self.failed.emit(describe_error(exc, "Denoising failed"))
        finally:
            if gen is not None:
                gen.close()
            self.done.emit()

    def _on_tile(self, done: int, total: int) -> None:
        self._raise_if_cancelled()
        if total > 1:
            self.tile_progress.emit(done, total)

    def _emit_preview(self, ev: StepEvent) -> None:
        x_t = ev.x_t if ev.x_t is not None else ev.pred_x0
        self.preview.emit(array_to_qimage(x_t), array_to_qimage(ev.pred_x0))


class BatchWorker(Worker):
    """Denoise a list of FileJobs by consuming the pipeline's ``denoise_files`` (as the CLI does); a broken
    file fails alone and the batch goes on, a full disk stops it. Pause and cancel act between steps (and
    between the tiles of a step) and between photos."""

    job_started = Signal(int, int)  # row, steps
    progress = Signal(int, int, int)  # row, step index, total
    overall = Signal(float)  # 0..1 over the whole batch
    preview = Signal(QImage)  # predicted x0 of the current image
    job_done = Signal(int, object)  # row, summary dict from process_file
    job_skipped = Signal(int, str)  # row, the output that already existed (skip_existing)
    job_failed = Signal(int, str)  # row, reason
    paused = Signal(bool)
    finished = Signal(int, int)  # files done, files failed (skipped ones are neither)
    cancelled = Signal(int, int)
    failed = Signal(str)

    def __init__(self, jobs: Sequence[FileJob], opts: DenoiseOptions, denoiser: Denoiser, *,
                 overwrite: bool = False, skip_existing: bool = False, preview_interval: float = PREVIEW_INTERVAL):
        super().__init__()
        self.jobs = list(jobs)
        self.opts = replace(opts, preview=True, preview_max_size=256)
        self.denoiser = denoiser
        self.overwrite = overwrite
        self.skip_existing = skip_existing
        self.preview_interval = preview_interval
        self._running = threading.Event()
        self._running.set()
        self._row, self._steps, self._steps_done = 0, 1, 0  # the photo in progress (row, its steps, steps done)

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def is_paused(self) -> bool:
        return not self._running.is_set()

    def _wait_if_paused(self) -> None:
        if self._running.is_set():
            return
        self.paused.emit(True)
        while not self._running.wait(0.05):
            if self.cancel_requested:
                break
        self.paused.emit(False)

    def _emit_overall(self, photo_fraction: float) -> None:
        """The overall bar: photos done plus the fraction of the current one."""
        self.overall.emit((self._row + photo_fraction) / max(1, len(self.jobs)))

    def _on_tile(self, done: int, total: int) -> None:
        self._raise_if_cancelled()
        if total > 1:  # a big photo: its one long step moves the overall bar tile by tile
            self._emit_overall((self._steps_done + done / total) / self._steps)

    def run(self) -> None:
        ok = bad = 0
        row = 0  # the photo in progress: each ends with one done, skipped or failed event
        last_preview, reason = -1.0, ""
        events = denoise_files(self.jobs, self.opts, overwrite=self.overwrite, skip_existing=self.skip_existing,
                               denoiser=self.denoiser, on_tile=self._on_tile)
        try:
            self._wait_if_paused()
            if self.cancel_requested:
                self.cancelled.emit(ok, bad)
                return
            for item in events:
                kind = item["kind"]
                if kind == "start":
                    self._row, self._steps, self._steps_done = row, max(1, int(item["steps"])), 0
                    self.job_started.emit(row, int(item["steps"]))
                    last_preview = -1.0
                    continue
                if kind == "step":
                    ev: StepEvent = item["event"]
                    # (a camera-noise run fixes its step count once it has measured what is left to refine)
                    self._steps_done, self._steps = ev.index, max(1, ev.total)
                    self.progress.emit(row, ev.index, ev.total)
                    self._emit_overall(ev.index / max(1, ev.total))
                    now = time.perf_counter()
                    if ev.pred_x0 is not None and (now - last_preview >= self.preview_interval
                                                   or ev.index == ev.total):
                        self.preview.emit(array_to_qimage(ev.pred_x0))
                        last_preview = now
                elif kind == "stopped":  # a full disk: every later photo would fail alike, the rest left waiting
                    self.failed.emit(f"{reason} The batch stopped with {len(item['not_started'])} "
                                     "photo(s) not started: free some space and start it again (unless Replace "
                                     "is ticked, the photos already done are skipped).")
                    return
                else:  # the photo's end: done, skipped or failed
                    if kind == "done":
                        ok += 1
                        self.job_done.emit(row, item)
                    elif kind == "skipped":
                        self.job_skipped.emit(row, item["output"])
                    elif isinstance(item["exception"], Cancelled):  # asked for between two tiles of a step
                        self.job_failed.emit(row, "cancelled")
                        self.cancelled.emit(ok, bad)
                        return
                    else:
                        reason = describe_error(item["exception"])
                        bad += not isinstance(item["exception"], DiskFullError)  # a full disk stops the batch
                        self.job_failed.emit(row, reason)
                    self._row = row
                    self._emit_overall(1.0)
                    row += 1
                self._wait_if_paused()
                if self.cancel_requested:  # between two steps, or two photos
                    if kind == "step":
                        self.job_failed.emit(row, "cancelled")
                    self.cancelled.emit(ok, bad)
                    return
            self.finished.emit(ok, bad)
        except Exception as exc:  # pragma: no cover - defensive
            self.failed.emit(describe_error(exc, "Batch failed"))
        finally:
            events.close()
            self.done.emit()
