"""Batch dialog tests (pytest-qt, offscreen): a folder with good images and a corrupt file, pause/resume,
cancel, and dropping a folder on the main window. Small synthetic images in tmp_path; no sleeps."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import Qt  # noqa: E402

from conftest import smooth_test_image  # noqa: E402
from desktop_denoiser.bench.camera import raw_pipeline  # noqa: E402
from desktop_denoiser.paths import default_model_path  # noqa: E402
from desktop_denoiser.pipeline.jobs import Denoiser, DenoiseOptions  # noqa: E402
from desktop_denoiser.qt import batch as batch_module  # noqa: E402
from desktop_denoiser.qt.batch import DONE, FAILED, SKIPPED, WAITING, BatchDialog  # noqa: E402
from desktop_denoiser.qt.main_window import MainWindow  # noqa: E402
from desktop_denoiser.qt.settings import Settings  # noqa: E402

MODEL = Path(os.environ.get("DESKTOP_DENOISER_MODEL") or default_model_path())
needs_model = pytest.mark.skipif(not MODEL.is_file(), reason=f"model file {MODEL} not available yet")
TIMEOUT = 120_000  # ms


def _clean(seed: int, h: int = 64, w: int = 64) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.stack([0.3 + 0.4 * x / w, 0.3 + 0.4 * y / h, 0.5 + 0.2 * np.sin(x / 9.0 + seed)], axis=2)


def noisy_image(seed: int, h: int = 64, w: int = 64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    clean = _clean(seed, h, w)
    return np.clip(clean + rng.normal(0, 25 / 255, clean.shape), 0, 1)


def make_folder(root: Path) -> Path:
    """3 good images (one in a sub-folder) + 1 corrupt file (text renamed .png)."""
    src = root / "in"
    (src / "sub").mkdir(parents=True)
    for i, rel in enumerate(["a.png", "b.png", "sub/c.png"]):
        a = np.round(noisy_image(i) * 255).astype(np.uint8)
        assert cv2.imwrite(str(src / rel), a[:, :, ::-1])
    (src / "broken.png").write_text("this is a text file, not a PNG\n")
    return src


@pytest.fixture(scope="module")
def denoiser():
    return Denoiser(MODEL)


@pytest.fixture
def dialog(qtbot, tmp_path, denoiser):
    settings = Settings.from_file(tmp_path / "settings.ini")
    d = BatchDialog(denoiser, lambda: DenoiseOptions(mode="fidelity"), settings, quiet=True)
    qtbot.addWidget(d)
    d.show()
    yield d
    d.cancel()
    d.close()


@needs_model
def test_batch_with_a_corrupt_file_goes_on(qtbot, dialog, tmp_path):
    src = make_folder(tmp_path)
    out = tmp_path / "out"
    dialog.set_folders(src, out, recursive=True)
    assert dialog.table.rowCount() == 4 and set(dialog.states) == {WAITING}
    with qtbot.waitSignal(dialog.batch_finished, timeout=TIMEOUT) as blocker:
        assert dialog.start()
        assert dialog.is_running() and not dialog.start_button.isEnabled()
    assert blocker.args == [3, 1]
    for rel in ("a.png", "b.png", "sub/c.png"):  # sub-folder structure kept
        written = out / rel
        assert written.is_file(), rel
        img = cv2.imread(str(written), cv2.IMREAD_UNCHANGED)
        assert img.shape == (64, 64, 3) and img.dtype == np.uint8
        assert dialog.state_of(dialog.row_of(src / rel)) == DONE
    bad = dialog.row_of(src / "broken.png")
    assert dialog.state_of(bad) == FAILED and "broken.png" in dialog.reason_of(bad)
    assert dialog.table.item(bad, 1).text() == "failed" and dialog.table.item(bad, 2).text()
    assert not (out / "broken.png").exists()
    assert dialog.progress.value() == dialog.progress.maximum()
    assert "3 image(s) denoised" in dialog.summary_label.text() and "1 failed" in dialog.summary_label.text()
    assert not dialog.is_running() and dialog.start_button.isEnabled()
    assert dialog.preview_label.pixmap() is not None and not dialog.preview_label.pixmap().isNull()
    # folders remembered
    assert dialog.settings.batch_input_dir == str(src) and dialog.settings.batch_recursive


@needs_model
def test_starting_a_batch_again_skips_photos_already_done(qtbot, dialog, tmp_path, monkeypatch):
    """A batch stopped half way (here: one result saved) and started again resumes: the photo whose result
    exists is skipped, its file left as it is, the others are denoised; the queue says so before Start."""
    src = make_folder(tmp_path)
    (src / "broken.png").unlink()
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.png").write_bytes(b"saved by the stopped batch")
    dialog.set_folders(src, out, recursive=False)
    a, b = dialog.row_of(src / "a.png"), dialog.row_of(src / "b.png")
    assert dialog.table.item(a, 2).text() == "result exists: skipped" and dialog.table.item(b, 2).text() == ""
    assert dialog.summary_label.text().startswith("1 image(s) to denoise; 1 already have a result")
    job_events = []

    class Recording(batch_module.BatchWorker):  # connected before its thread starts: no signal missed
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.job_skipped.connect(lambda row, output: job_events.append(("skipped", row, output)))
            self.job_done.connect(lambda row, summary: job_events.append(("done", row)))

    monkeypatch.setattr(batch_module, "BatchWorker", Recording)
    dialog.batch_finished.connect(lambda ok, bad: job_events.append(("finished", ok, bad)))
    with qtbot.waitSignal(dialog.batch_finished, timeout=TIMEOUT) as blocker:
        assert dialog.start()
    assert blocker.args == [1, 0]
    assert job_events == [("skipped", a, str(out / "a.png")), ("done", b), ("finished", 1, 0)]
    assert dialog.state_of(a) == SKIPPED and dialog.state_of(b) == DONE
    assert "a.png" in dialog.table.item(a, 2).text() and dialog.table.item(a, 1).text() == "skipped"
    assert (out / "a.png").read_bytes() == b"saved by the stopped batch"
    assert cv2.imread(str(out / "b.png")).shape == (64, 64, 3)
    assert dialog.summary_label.text() == "Finished: 1 image(s) denoised, 1 skipped (their result already existed)."
    opened = []
    monkeypatch.setattr(batch_module.QDesktopServices, "openUrl", staticmethod(lambda url: opened.append(url) or True))
    assert dialog.open_output_button.isEnabled() and dialog.open_output_folder()
    assert [u.toLocalFile() for u in opened] == [str(out)]
    dialog.output_edit.setText(str(tmp_path / "not_made_yet"))
    assert not dialog.open_output_button.isEnabled() and not dialog.open_output_folder() and len(opened) == 1
    dialog.output_edit.setText(str(out))
    assert dialog.progress.value() == dialog.progress.maximum()
    # replacing: the queue says both results will be replaced
    dialog.overwrite_check.setChecked(True)
    assert dialog.table.item(a, 2).text() == "result exists: to be replaced"
    assert "2 of them already have a result, which will be replaced" in dialog.summary_label.text()


@needs_model
def test_double_clicking_a_finished_photo_compares_it_with_its_result(qtbot, tmp_path, denoiser):
    """After a batch, a done or skipped row opens its photo in the main window with the saved result on the
    denoised side (nothing runs, nothing to save); a waiting row, or a result of another size, does not."""
    src = tmp_path / "in"
    src.mkdir()
    noisy = np.round(noisy_image(3) * 255).astype(np.uint8)
    assert cv2.imwrite(str(src / "a.png"), noisy[:, :, ::-1])
    assert cv2.imwrite(str(src / "b.png"), noisy[:, :, ::-1])
    out = tmp_path / "out"
    out.mkdir()
    smooth = np.round(_clean(3) * 255).astype(np.uint8)
    assert cv2.imwrite(str(out / "a.png"), smooth[:, :, ::-1])  # a: skipped, its "result" is the clean image
    assert cv2.imwrite(str(out / "b.png"), smooth[:32, :, ::-1])  # b: a result of another size
    w = MainWindow(settings=Settings.from_file(tmp_path / "s.ini"), denoiser=denoiser, quiet=True)
    qtbot.addWidget(w)
    d = w.open_batch(src)
    d.set_folders(src, out)
    assert not d.request_compare(0)  # waiting: nothing to compare yet
    d.overwrite_check.setChecked(False)
    with qtbot.waitSignal(d.batch_finished, timeout=TIMEOUT) as blocker:
        assert d.start()
    assert blocker.args == [0, 0] and d.states == [SKIPPED, SKIPPED]
    with qtbot.waitSignal(w.image_loaded, timeout=TIMEOUT):
        d.table.cellDoubleClicked.emit(d.row_of(src / "a.png"), 0)
    qtbot.waitUntil(lambda: "Comparing with the saved result" in w.statusBar().currentMessage(), timeout=TIMEOUT)
    assert w.image_path == src / "a.png" and w.result is None and not w.has_unsaved_result()
    after = w.viewer._after.convertToFormat(w.viewer._after.Format.Format_RGB888)
    shown = np.frombuffer(after.constBits(), np.uint8).reshape(64, after.bytesPerLine())[:, :64 * 3].reshape(64, 64, 3)
    assert np.array_equal(shown, smooth) and w.viewer._after_label == "Saved result"
    with qtbot.waitSignal(w.run_finished, timeout=TIMEOUT):  # Denoise still runs on the photo
        w.run_denoise()
    assert w.viewer._after_label == "Denoised" and w.has_unsaved_result()
    errors = []
    w.error_shown.connect(errors.append)
    with qtbot.waitSignal(w.error_shown, timeout=TIMEOUT):
        assert d.request_compare(d.row_of(src / "b.png"))
    assert "cannot be compared" in errors[-1] and "b.png" in errors[-1]
    w.close()


@needs_model
def test_a_full_disk_stops_the_batch_with_the_rest_left_waiting(qtbot, dialog, tmp_path, monkeypatch):
    import errno

    from desktop_denoiser.pipeline.imageio import write as iio_write

    src = make_folder(tmp_path)
    (src / "broken.png").unlink()

    def full(_fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(iio_write.os, "fsync", full)
    errors = []
    dialog.error_shown.connect(errors.append)
    dialog.set_folders(src, tmp_path / "out", recursive=True)
    with qtbot.waitSignal(dialog.batch_finished, timeout=TIMEOUT) as blocker:
        assert dialog.start()
    assert blocker.args == [0, 1] and dialog.states == [FAILED, WAITING, WAITING]
    assert "is full" in dialog.reason_of(0) and "2 photo(s) not started" in errors[-1]
    assert dialog.summary_label.text().startswith("The batch stopped: ") and not dialog.is_running()


def test_time_left_leaves_out_pauses_and_needs_some_work_done():
    from desktop_denoiser.pipeline.progress import TimeLeft, format_seconds

    now = [100.0]
    tl = TimeLeft(lambda: now[0])
    now[0] = 101.0
    assert tl.seconds_left(0.5, 1.5) is None  # 1 s running: too early to tell
    now[0] = 110.0
    assert tl.seconds_left(0.01, 2.0) is None  # too little done
    assert tl.seconds_left(1.0, 2.0) == 20.0  # 10 s per photo, 2 left
    tl.set_paused(True)
    now[0] = 170.0  # a minute's pause
    assert tl.running_seconds() == 10.0 and tl.seconds_left(1.0, 2.0) == 20.0
    tl.set_paused(False)
    now[0] = 180.0
    assert tl.running_seconds() == 20.0 and tl.seconds_left(2.0, 1.0) == 10.0
    assert [format_seconds(x) for x in (0.4, 20, 200)] == ["< 1 s", "20 s", "3 min 20 s"]


@needs_model
def test_batch_shows_the_time_left_counting_only_photos_it_denoises(qtbot, dialog, tmp_path, monkeypatch):
    """The bar says how long the rest will take, from the rate so far (a fake clock: 10 s per reading), and
    photos that are skipped count neither as work done nor as work left; at the end it is gone."""
    src = make_folder(tmp_path)
    (src / "broken.png").unlink()
    for i, name in enumerate(("d.png", "e.png")):
        assert cv2.imwrite(str(src / name), np.round(noisy_image(5 + i) * 255).astype(np.uint8)[:, :, ::-1])
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.png").write_bytes(b"done before")  # a.png is skipped; b, d and e are denoised
    ticks = []

    def clock():  # 10 s pass between two readings
        ticks.append(10.0 * (len(ticks) + 1))
        return ticks[-1]

    dialog.clock = clock
    formats = []
    original = dialog.progress.setFormat
    monkeypatch.setattr(dialog.progress, "setFormat", lambda f: (formats.append(f), original(f)))
    dialog.set_folders(src, out, recursive=False)
    with qtbot.waitSignal(dialog.batch_finished, timeout=TIMEOUT):
        assert dialog.start()
    lefts = [f for f in formats if "left" in f]
    # a skipped (no work), b done: 1 photo done in 2 readings (20 s), 2 to go, so 40 s left; had a counted,
    # it would read 2 done and 2 left (20 s), or 3 left had it been counted as work still to do
    assert lefts[0] == "%p% · about 40 s left"
    assert formats[-1] == "%p%" and dialog.progress.format() == "%p%"


@needs_model
def test_batch_applies_the_strength_and_says_so(qtbot, tmp_path, denoiser):
    """A batch at 40 % (grain and colour noise) writes 0.4 x the full-strength result + 0.6 x the input, and
    shows both shares."""
    src = tmp_path / "in"
    src.mkdir()
    noisy = np.round(noisy_image(7) * 255).astype(np.uint8)
    assert cv2.imwrite(str(src / "a.png"), noisy[:, :, ::-1])
    outs = {}
    for strength in (1.0, 0.4):
        d = BatchDialog(denoiser, lambda s=strength: DenoiseOptions(sigma=25, device="cpu", strength=s,
                                                                    color_strength=s), None, quiet=True)
        qtbot.addWidget(d)
        d.set_folders(src, tmp_path / f"out{strength}", recursive=False)
        with qtbot.waitSignal(d.batch_finished, timeout=TIMEOUT) as blocker:
            assert d.start()
        assert blocker.args == [1, 0] and f"strength: {round(strength * 100)} %" in d.options_label.text()
        assert f"colour noise: {round(strength * 100)} %" in d.options_label.text()
        assert "quality: Normal" in d.options_label.text()
        outs[strength] = cv2.imread(str(tmp_path / f"out{strength}" / "a.png"))[:, :, ::-1].astype(np.float32)
        d.close()
    expected = 0.4 * outs[1.0] + 0.6 * noisy.astype(np.float32)
    assert np.abs(outs[0.4] - expected).max() <= 1.0  # both outputs rounded to 8 bits
    assert np.abs(outs[0.4] - outs[1.0]).mean() > 3


@needs_model
def test_batch_saves_in_the_chosen_format_and_remembers_it(qtbot, dialog, tmp_path):
    """Save as 16-bit TIFF: the queue names the .tif results (and sees an existing one as done), the results
    are 16-bit TIFFs, the choice is remembered, and the control is locked while the batch runs."""
    src = make_folder(tmp_path)
    (src / "broken.png").unlink()
    out = tmp_path / "out"
    dialog.set_folders(src, out, recursive=False)
    dialog.set_output_format("tif")
    assert dialog.output_format() == "tif"
    assert [j.output.name for j in dialog.jobs] == ["a.tif", "b.tif"] and all(j.bit_depth == 16 for j in dialog.jobs)
    assert "a.tif" in dialog.table.item(0, 0).toolTip()
    out.mkdir()
    cv2.imwrite(str(out / "b.tif"), np.zeros((8, 8, 3), np.uint16))  # a result from an earlier run
    dialog.refresh_queue()
    assert "skipped" in dialog.table.item(1, 2).text()
    with qtbot.waitSignal(dialog.batch_finished, timeout=TIMEOUT) as blocker:
        assert dialog.start()
        assert not dialog.format_combo.isEnabled()
    assert blocker.args == [1, 0] and dialog.format_combo.isEnabled()
    img = cv2.imread(str(out / "a.tif"), cv2.IMREAD_UNCHANGED)
    assert img.shape == (64, 64, 3) and img.dtype == np.uint16
    assert not (out / "a.png").exists() and cv2.imread(str(out / "b.tif"), cv2.IMREAD_UNCHANGED).max() == 0
    assert dialog.settings.batch_format == "tif"
    again = BatchDialog(dialog.denoiser, dialog.options_provider, dialog.settings, quiet=True)
    qtbot.addWidget(again)
    assert again.output_format() == "tif"


@needs_model
def test_batch_pause_resume_and_cancel(qtbot, dialog, tmp_path):
    src = make_folder(tmp_path)
    out = tmp_path / "out"
    dialog.set_folders(src, out, recursive=False)
    assert dialog.table.rowCount() == 3  # sub-folder not included
    assert dialog.start()
    dialog.set_paused(True)
    qtbot.waitUntil(lambda: dialog.summary_label.text().startswith("Paused"), timeout=TIMEOUT)
    assert dialog.worker.is_paused and dialog.pause_button.text() == "Resume"
    paused_states = list(dialog.states)
    assert paused_states.count(DONE) + paused_states.count(FAILED) < 3
    with qtbot.waitSignal(dialog.batch_finished, timeout=TIMEOUT) as blocker:
        dialog.set_paused(False)
    assert blocker.args == [2, 1]

    # cancel: starts again (outputs exist now -> replace them), stops early
    dialog.overwrite_check.setChecked(True)
    with qtbot.waitSignal(dialog.batch_finished, timeout=TIMEOUT) as blocker:
        assert dialog.start()
        dialog.cancel()
    ok, failed = blocker.args
    assert ok + failed < 3
    assert dialog.summary_label.text().startswith("Cancelled")
    assert not dialog.is_running()


def test_bad_folders_are_explained(qtbot, tmp_path):
    d = BatchDialog(Denoiser(tmp_path / "none"), lambda: DenoiseOptions(), None, quiet=True)
    qtbot.addWidget(d)
    errors = []
    d.error_shown.connect(errors.append)
    d.set_folders(tmp_path / "missing", tmp_path / "out")
    assert d.table.rowCount() == 0 and "does not exist" in d.summary_label.text()
    assert d.start() is False and errors and "does not exist" in errors[-1]
    src = make_folder(tmp_path)
    d.set_folders(src, src)  # output == input would overwrite originals
    assert d.start() is False and "overwrite" in errors[-1]
    raws = tmp_path / "raws"
    raws.mkdir()
    Image.new("RGB", (160, 120)).save(raws / "DSC_1.NEF", format="TIFF")  # a raw file: TIFF inside
    d.set_folders(raws, tmp_path / "out")
    assert d.table.rowCount() == 0 and "1 camera raw or HEIC file(s) left out" in d.summary_label.text()
    # photos only in sub-folders, which are not searched: say how to include them
    cards = tmp_path / "cards"
    (cards / "card1").mkdir(parents=True)
    Image.new("RGB", (32, 24)).save(cards / "card1" / "IMG_1.jpg")
    d.set_folders(cards, tmp_path / "out2")
    assert d.table.rowCount() == 0 and "tick “Include sub-folders”" in d.summary_label.text()
    assert d.start() is False and "Include sub-folders" in errors[-1]
    d.recursive_check.setChecked(True)
    assert d.table.rowCount() == 1


def test_close_the_title_bar_x_and_esc_close_the_dialog(qtbot, tmp_path):
    """Each used to leave the dialog open: QDialog's closeEvent calls reject(), which closes, re-entered."""
    from PySide6.QtGui import QCloseEvent

    d = BatchDialog(Denoiser(tmp_path / "none"), lambda: DenoiseOptions(), None, quiet=True)
    qtbot.addWidget(d)
    d.show()
    qtbot.mouseClick(d.close_button, Qt.MouseButton.LeftButton)
    assert not d.isVisible()
    d.show()
    event = QCloseEvent()
    d.closeEvent(event)  # what the title bar's X sends
    assert event.isAccepted()
    d.show()
    qtbot.keyClick(d, Qt.Key.Key_Escape)
    assert not d.isVisible()


def test_dropping_a_folder_opens_batch_prefilled(qtbot, tmp_path):
    src = make_folder(tmp_path)
    w = MainWindow(settings=Settings.from_file(tmp_path / "s.ini"), denoiser=Denoiser(tmp_path / "none"),
                   quiet=True)
    qtbot.addWidget(w)
    w.handle_dropped_paths([src])
    d = w.batch_dialog
    assert d is not None and d.isVisible()
    assert d.input_edit.text() == str(src)
    assert d.output_edit.text() == str(tmp_path / "in_denoised")
    assert d.table.rowCount() == 3  # a.png, b.png, broken.png (not recursive)
    w.close()


def test_dropping_several_photos_queues_them_in_the_batch(qtbot, tmp_path, monkeypatch):
    """Photos picked in a file manager and dropped together are queued as they are (before, only the first
    was opened); a file that is not a photo is left out and the status bar says so; a folder dropped with
    them is queued with its photos."""
    src = make_folder(tmp_path)
    (tmp_path / "notes.txt").write_text("not a photo")
    w = MainWindow(settings=Settings.from_file(tmp_path / "s.ini"), denoiser=Denoiser(tmp_path / "none"),
                   quiet=True)
    qtbot.addWidget(w)
    w.handle_dropped_paths([src / "a.png", src / "sub" / "c.png", tmp_path / "notes.txt"])
    d = w.batch_dialog
    assert d is not None and d.isVisible() and w.image is None
    assert d.input_edit.text() == "a.png, c.png (2 chosen)" and d.input_label.text() == "Photos:"
    assert d.output_edit.text() == str(tmp_path / "in_denoised")  # beside the first photo's folder
    assert [d.table.item(r, 0).text() for r in range(d.table.rowCount())] == ["a.png", "sub/c.png"]
    assert [j.output for j in d.jobs] == [tmp_path / "in_denoised" / "a.png", tmp_path / "in_denoised" / "c.png"]
    assert "Left out 1 file(s) that cannot be opened as photos: notes.txt" in w.statusBar().currentMessage()
    # camera raw files: a raw dropped alone is explained, raws among photos are named as such
    Image.new("RGB", (160, 120)).save(tmp_path / "DSC_1.NEF", format="TIFF")
    errors = []
    w.error_shown.connect(errors.append)
    w.handle_dropped_paths([tmp_path / "DSC_1.NEF"])
    assert "camera raw file" in errors[-1] and "16-bit TIFF" in errors[-1] and w.image is None
    w.handle_dropped_paths([src / "a.png", src / "b.png", tmp_path / "DSC_1.NEF"])
    assert "(1 camera raw or HEIC" in w.statusBar().currentMessage()
    # a folder and a photo: the folder's photos keep their folder's name below the common parent
    w.handle_dropped_paths([src / "sub", tmp_path / "in" / "b.png"])
    assert sorted(d.table.item(r, 0).text() for r in range(d.table.rowCount())) == ["b.png", "sub/c.png"]
    assert d.summary_label.text() == "2 image(s) to denoise."
    # typing a folder into the input field goes back to one input folder
    d.input_edit.setText(str(src))
    d.refresh_queue()
    assert d.table.rowCount() == 3 and d.input_edit.toolTip() == "" and d.input_label.text() == "Input folder:"
    # one photo is opened in the main window, not queued
    w.handle_dropped_paths([src / "broken.png"])
    assert d.table.rowCount() == 3
    # while a batch runs its queue is kept, and the drop is not silently ignored
    monkeypatch.setattr(d, "is_running", lambda: True)
    w.handle_dropped_paths([src / "a.png", src / "b.png"])
    assert d.table.rowCount() == 3 and "A batch is running" in w.statusBar().currentMessage()
    w.close()


def _drop(qtbot, widget, paths) -> None:
    """Drop ``paths`` on ``widget`` and wait until it has taken them (FileDropTarget hands them on after the
    drop event has returned)."""
    from PySide6.QtCore import QMimeData, QPointF, QUrl
    from PySide6.QtGui import QDropEvent

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    taken = []
    original = widget.add_dropped
    widget.add_dropped = lambda ps: taken.append(original(ps))
    try:
        widget.dropEvent(QDropEvent(QPointF(20, 20), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                                    Qt.KeyboardModifier.NoModifier))
        qtbot.waitUntil(lambda: bool(taken), timeout=5000)
    finally:
        del widget.add_dropped


def test_dropping_on_the_batch_dialog_sets_its_input(qtbot, dialog, tmp_path):
    """A folder dropped on the dialog is its input folder, with the default output beside it (which
    follows the next drop); an output folder the user chose stays; photos dropped together are queued;
    a file that is not a photo is left out and said so; nothing is taken while a batch runs."""
    src = make_folder(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    assert cv2.imwrite(str(other / "x.png"), np.zeros((32, 32, 3), np.uint8))
    assert dialog.acceptDrops()
    _drop(qtbot, dialog, [src])
    assert dialog.input_edit.text() == str(src) and dialog.output_edit.text() == str(tmp_path / "in_denoised")
    assert dialog.table.rowCount() == 3  # a.png, b.png, broken.png
    _drop(qtbot, dialog, [other])  # the default output follows the input
    assert dialog.input_edit.text() == str(other) and dialog.output_edit.text() == str(tmp_path / "other_denoised")
    dialog.set_folders(output_dir=tmp_path / "mine")
    (tmp_path / "notes.txt").write_text("x")
    _drop(qtbot, dialog, [src / "a.png", src / "b.png", tmp_path / "notes.txt"])
    assert dialog.input_label.text() == "Photos:" and dialog.output_edit.text() == str(tmp_path / "mine")
    assert [j.input.name for j in dialog.jobs] == ["a.png", "b.png"]
    assert "Left out 1 file(s) that cannot be opened as photos: notes.txt" in dialog.summary_label.text()
    errors = []
    dialog.error_shown.connect(errors.append)
    _drop(qtbot, dialog, [tmp_path / "notes.txt"])
    assert "not a supported image file" in errors[-1] and [j.input.name for j in dialog.jobs] == ["a.png", "b.png"]
    dialog.worker = object()  # as if a batch were running
    try:
        assert not dialog.add_dropped([other]) and "batch is running" in errors[-1]
    finally:
        dialog.worker = None
    assert [j.input.name for j in dialog.jobs] == ["a.png", "b.png"]


def test_picking_several_photos_in_open_queues_them(qtbot, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    src = make_folder(tmp_path)
    w = MainWindow(settings=Settings.from_file(tmp_path / "s.ini"), denoiser=Denoiser(tmp_path / "none"),
                   quiet=True)
    qtbot.addWidget(w)
    picked = [str(src / "a.png"), str(src / "b.png")]
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", staticmethod(lambda *a, **k: (picked, "")))
    w.open_dialog()
    assert w.batch_dialog is not None and w.batch_dialog.isVisible() and w.image is None
    assert [str(j.input) for j in w.batch_dialog.jobs] == picked
    w.close()


@needs_model
def test_a_batch_of_chosen_photos_writes_each_and_remembers_no_folder(qtbot, tmp_path, denoiser):
    src = make_folder(tmp_path)
    settings = Settings.from_file(tmp_path / "settings.ini")
    d = BatchDialog(denoiser, lambda: DenoiseOptions(sigma=25, device="cpu"), settings, quiet=True)
    qtbot.addWidget(d)
    d.set_inputs([src / "b.png", src / "sub" / "c.png"], tmp_path / "picked")
    with qtbot.waitSignal(d.batch_finished, timeout=TIMEOUT) as blocker:
        assert d.start()
    assert blocker.args == [2, 0] and sorted(p.name for p in (tmp_path / "picked").iterdir()) == ["b.png", "c.png"]
    for name, seed in (("b.png", 1), ("c.png", 2)):
        out = cv2.imread(str(tmp_path / "picked" / name))[:, :, ::-1].astype(np.float32) / 255
        noisy = np.round(noisy_image(seed) * 255) / 255
        clean_err = np.abs(out - _clean(seed)).mean()
        assert clean_err < np.abs(noisy - _clean(seed)).mean() / 2  # denoised, not copied
    assert settings.batch_input_dir == "" and settings.batch_output_dir == str(tmp_path / "picked")
    d.close()


@needs_model
def test_batch_cancel_between_tiles_writes_nothing(qtbot, tmp_path):
    """A cancel arriving inside the one long step of a big photo stops the batch between two tiles; the
    half-done photo is not written (the cancel is asked for from the first tile, in the worker thread)."""
    from desktop_denoiser.pipeline.jobs import FileJob
    from desktop_denoiser.qt.workers import BatchWorker, start_worker

    src = tmp_path / "big.png"
    assert cv2.imwrite(str(src), np.round(noisy_image(7, 256, 256) * 255).astype(np.uint8)[:, :, ::-1])
    out = tmp_path / "out" / "big.png"
    tiles = []

    class CancelAtFirstTile(BatchWorker):
        def _on_tile(self, done, total):
            tiles.append((done, total))
            self.cancel()
            super()._on_tile(done, total)

    worker = CancelAtFirstTile([FileJob(src, out)], DenoiseOptions(sigma=25, device="cpu", tile=64),
                               Denoiser(MODEL))
    events = []
    worker.job_failed.connect(lambda row, why: events.append(("failed", why)))
    worker.cancelled.connect(lambda ok, bad: events.append(("cancelled", ok, bad)))
    worker.finished.connect(lambda ok, bad: events.append(("finished", ok, bad)))
    with qtbot.waitSignal(worker.done, timeout=TIMEOUT):
        start_worker(worker)
    qtbot.waitUntil(lambda: len(events) >= 2, timeout=TIMEOUT)
    assert events == [("failed", "cancelled"), ("cancelled", 0, 0)]
    assert tiles[0][0] == 1 and tiles[0][1] > 4 and len(tiles) == 1
    assert not out.exists() and not out.parent.exists()  # the output folder is made only when writing


@needs_model
def test_batch_overall_progress_moves_inside_a_big_photo(qtbot, tmp_path):
    """One photo, one long step: the overall bar still moves tile by tile, and ends at 1."""
    from desktop_denoiser.pipeline.jobs import FileJob
    from desktop_denoiser.qt.workers import BatchWorker, start_worker

    src = tmp_path / "big.png"
    assert cv2.imwrite(str(src), np.round(noisy_image(8, 256, 256) * 255).astype(np.uint8)[:, :, ::-1])
    worker = BatchWorker([FileJob(src, tmp_path / "out" / "big.png")],
                         DenoiseOptions(sigma=25, device="cpu", tile=64), Denoiser(MODEL))
    overall = []
    worker.overall.connect(overall.append, Qt.ConnectionType.DirectConnection)
    with qtbot.waitSignal(worker.done, timeout=TIMEOUT):
        start_worker(worker)
    inside = [f for f in overall if 0 < f < 1]
    assert len(inside) > 4 and inside == sorted(inside) and overall[-1] == 1.0
    assert (tmp_path / "out" / "big.png").is_file()


@needs_model
def test_batch_row_suggests_a_sigma_when_jpeg_hides_the_noise(qtbot, dialog, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    from test_real_noise import grey_grain

    noisy = np.round(noisy_image(3, 192, 256) * 255).astype(np.uint8)[:, :, ::-1]
    grain = np.round(grey_grain(smooth_test_image(192, 256, seed=6)) * 255).astype(np.uint8)[:, :, ::-1]
    assert cv2.imwrite(str(src / "hidden.jpg"), grain, [cv2.IMWRITE_JPEG_QUALITY, 90])  # 4:2:0, clean grain
    assert cv2.imwrite(str(src / "plain.png"), noisy)
    # noise demosaiced from a raw mosaic, saved losslessly: the row suggests the camera-noise path instead
    raw = raw_pipeline(smooth_test_image(192, 256, seed=8), 0.006, 2)
    assert cv2.imwrite(str(src / "raw.png"), np.round(raw * 255).astype(np.uint8)[:, :, ::-1])
    # strong demosaiced noise: removed as camera noise, the row names the way back to white noise
    strong = raw_pipeline(smooth_test_image(192, 256, seed=8), 0.02, 2)
    assert cv2.imwrite(str(src / "strong.png"), np.round(strong * 255).astype(np.uint8)[:, :, ::-1])
    dialog.set_folders(src, tmp_path / "out", recursive=False)
    with qtbot.waitSignal(dialog.batch_finished, timeout=TIMEOUT):
        assert dialog.start()
    hidden, plain, mosaic, removed = (dialog.table.item(dialog.row_of(src / n), 2).text()
                                      for n in ("hidden.jpg", "plain.png", "raw.png", "strong.png"))
    assert "removed as camera noise" in removed and "Gaussian (white)" in removed and "try Noise type ▸ Camera" not in removed
    assert "removed as camera noise" not in mosaic + hidden + plain
    assert "noise may be hidden" in hidden and "try σ" in hidden and "Camera noise" not in hidden
    assert "noise may be hidden" not in plain and "Camera noise" not in plain
    assert "try Noise type ▸ Camera noise" in mosaic and "noise may be hidden" not in mosaic


@needs_model
def test_the_bar_never_goes_back_in_a_tiled_camera_noise_run(qtbot, tmp_path, denoiser):
    """Detail mode on camera noise in tiles (as a photo whose sub-images pass the CPU tile size): the camera
    path held each step back by one, so the tiles of every sub-image's second step were drawn under its
    first and the bar dropped (50 -> 6, 250 -> 206 per mille), the time left with it."""
    from conftest import blurred_noise

    src = tmp_path / "in"
    src.mkdir()
    noisy = np.clip(_clean(0, 128, 128) + blurred_noise((128, 128, 3), 20 / 255, 1.0), 0, 1)
    assert cv2.imwrite(str(src / "a.png"), np.round(noisy * 255).astype(np.uint8)[:, :, ::-1])
    d = BatchDialog(denoiser, lambda: DenoiseOptions(mode="detail", noise_model="real", steps=4, tile=32),
                    Settings.from_file(tmp_path / "s.ini"), quiet=True)
    qtbot.addWidget(d)
    d.show()
    values: list[int] = []
    d.progress.valueChanged.connect(values.append)
    d.set_folders(src, tmp_path / "out")
    with qtbot.waitSignal(d.batch_finished, timeout=TIMEOUT):
        assert d.start()
    assert len(values) > 20 and values == sorted(values) and values[-1] == d.progress.maximum()


@needs_model
def test_an_output_folder_typed_with_a_tilde_is_in_the_home_folder(qtbot, tmp_path, denoiser, monkeypatch):
    """'~/Pictures/out' made a folder named '~' wherever the app was started; a relative path is refused."""
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(cwd)
    src = make_folder(home / "Pictures")
    d = BatchDialog(denoiser, lambda: DenoiseOptions(), Settings.from_file(tmp_path / "s.ini"), quiet=True)
    qtbot.addWidget(d)
    d.show()
    errors: list[str] = []
    d.error_shown.connect(errors.append)
    d.set_folders(src)
    d.output_edit.setText("trip_out")
    assert not d.start() and "full path" in errors[-1] and not (cwd / "trip_out").exists()
    d.output_edit.setText("~/Pictures/trip_out")
    d.input_edit.setText("in")  # relative: it would mean another folder when the app starts elsewhere
    assert not d.start() and "input folder's full path" in errors[-1]
    d.input_edit.setText("~/Pictures/in")
    with qtbot.waitSignal(d.batch_finished, timeout=TIMEOUT):
        assert d.start()
    assert (home / "Pictures" / "trip_out" / "a.png").is_file() and not (cwd / "~").exists()
    assert d.settings.batch_input_dir == str(src)  # remembered as the full path

