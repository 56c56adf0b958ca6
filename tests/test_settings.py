"""The remembered settings: each value comes back as it was written, and a stored value that is missing,
of the wrong type or out of range (an old or hand-edited settings file) reads as the default."""

import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QByteArray  # noqa: E402

from desktop_denoiser.qt.settings import MAX_RECENT, Settings  # noqa: E402

DEFAULTS = {"last_open_dir": "", "last_save_dir": "", "batch_input_dir": "", "batch_output_dir": "",
            "batch_recursive": False, "save_as_filter": "", "batch_format": "same", "device": "auto",
            "network": "auto", "mode": "fidelity", "noise_model": "auto", "ensemble": 1, "strength": 100,
            "color_strength": 100, "steps": 0, "seed": 0, "geometry": None, "window_state": None,
            "side_by_side": False, "recent_files": []}


def test_defaults_and_round_trips_through_the_file(tmp_path):
    ini = tmp_path / "s.ini"
    s = Settings.from_file(ini)
    assert {k: getattr(s, k) for k in DEFAULTS} == DEFAULTS
    folder = tmp_path / "photos"
    folder.mkdir()
    values = {"last_open_dir": str(folder), "last_save_dir": str(folder), "batch_input_dir": str(folder),
              "batch_output_dir": str(tmp_path / "not yet made"), "batch_recursive": True,
              "save_as_filter": "TIFF, 16-bit (*.tif)", "batch_format": "tif", "device": "cuda:0",
              "network": "fast", "mode": "detail", "noise_model": "real", "ensemble": 8, "strength": 70,
              "color_strength": 85, "steps": 12, "seed": 42, "geometry": QByteArray(b"geo"),
              "window_state": QByteArray(b"state"), "side_by_side": True}
    for k, v in values.items():
        setattr(s, k, v)
    s.sync()
    again = Settings.from_file(ini)  # read back from the INI file (where every value is text)
    assert {k: getattr(again, k) for k in values} == values
    for i in range(MAX_RECENT + 2):
        again.add_recent_file(tmp_path / f"{i}.png")
    assert len(again.recent_files) == MAX_RECENT and again.recent_files[0].endswith(f"{MAX_RECENT + 1}.png")
    again.clear_recent_files()
    assert again.recent_files == []


@pytest.mark.parametrize("name,stored,expected", [
    ("ensemble", "3", 1), ("ensemble", "lots", 1), ("strength", "250", 100), ("strength", "-5", 0),
    ("color_strength", "x", 100), ("steps", "-2", 0), ("seed", "1.5", 0), ("mode", "sharp", "fidelity"),
    ("noise_model", "film", "auto"), ("batch_format", "gif", "same"), ("device", "", "auto"),
    ("batch_recursive", "yes", True), ("side_by_side", "false", False), ("geometry", "text", None)])
def test_bad_stored_values_read_as_the_default(tmp_path, name, stored, expected):
    s = Settings.from_file(tmp_path / "s.ini")
    key = type(s).__dict__[name].key
    s.q.setValue(key, stored)
    assert getattr(s, name) == expected


def test_a_folder_that_is_gone_is_not_offered(tmp_path):
    s = Settings.from_file(tmp_path / "s.ini")
    gone = tmp_path / "gone"
    gone.mkdir()
    s.last_open_dir = str(gone)
    assert s.last_open_dir == str(gone)
    gone.rmdir()
    assert s.last_open_dir == ""


@pytest.mark.parametrize("name,stored,expected", [("seed", "3000000000", 2**31 - 1), ("steps", "3000000000", 1000)])
def test_numbers_beyond_what_the_boxes_hold_read_as_their_top(tmp_path, name, stored, expected):
    """A seed or step count past the spin box's range stopped the app from starting (OverflowError)."""
    s = Settings.from_file(tmp_path / "s.ini")
    s.q.setValue(type(s).__dict__[name].key, stored)
    assert getattr(s, name) == expected


@pytest.mark.parametrize("stored", ["@Variant(\\0\\0\\0\\x2\\0\\0\\0\\x5)", "@Size(1 2)"])
def test_a_recent_files_value_that_is_no_list_reads_as_none(tmp_path, stored):
    """A number or a size under recent/files (a hand-edited file) stopped the app from starting (TypeError)."""
    ini = tmp_path / "s.ini"
    ini.write_text(f"[recent]\nfiles={stored}\n")
    assert Settings.from_file(ini).recent_files == []
