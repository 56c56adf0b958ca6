"""Typed access to the remembered settings (QSettings, organisation "DesktopDenoiser").

Each setting is one class attribute: its key in the QSettings, its default, and how a stored value is
read back (a value that is missing, of the wrong type or out of range reads as the default)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable

from PySide6.QtCore import QByteArray, QSettings

from ..core.denoise import ENSEMBLE_SIZES
from ..pipeline.imageio import OUTPUT_FORMATS
from ..pipeline.jobs import NOISE_MODELS
from .noise_panel import MAX_SEED, MAX_STEPS

ORGANISATION = "DesktopDenoiser"
APPLICATION = "Desktop Denoiser"
MAX_RECENT = 8


class _Setting:
    """A remembered value: ``key`` in the QSettings, read through ``parse`` (None or an error: ``default``)
    and written through ``store``."""

    def __init__(self, key: str, default: Any, parse: Callable[[Any], Any], store: Callable[[Any], Any] = str,
                 doc: str = ""):
        self.key, self.default, self.parse, self.store = key, default, parse, store
        self.__doc__ = doc

    def __get__(self, obj: "Settings | None", objtype=None):
        if obj is None:
            return self
        try:
            value = self.parse(obj.q.value(self.key, self.default))
        except (TypeError, ValueError):
            return self.default
        return self.default if value is None else value

    def __set__(self, obj: "Settings", value) -> None:
        obj.q.setValue(self.key, self.store(value))


def _text(key: str, default: str = "", choices: Iterable[str] | None = None, doc: str = "") -> _Setting:
    """A string; an empty one, or one not among ``choices``, reads as ``default``."""
    allowed = None if choices is None else set(choices)
    return _Setting(key, default, lambda v: str(v) if v and (allowed is None or str(v) in allowed) else None,
                    doc=doc)


def _number(key: str, default: int, lo: int = 0, hi: int | None = None, choices: Iterable[int] | None = None,
            doc: str = "") -> _Setting:
    """An int, clamped to [lo, hi]; one not among ``choices`` reads as ``default``."""
    allowed = None if choices is None else set(choices)

    def parse(v) -> int | None:
        n = max(lo, int(v)) if hi is None else min(hi, max(lo, int(v)))
        return n if allowed is None or n in allowed else None

    return _Setting(key, default, parse, int, doc)


def _flag(key: str, default: bool) -> _Setting:
    """A bool (an INI file gives it back as "true" / "false")."""
    return _Setting(key, default, lambda v: v.lower() in ("1", "true", "yes") if isinstance(v, str) else bool(v),
                    bool)


def _folder(key: str) -> _Setting:
    """A folder's path, read back only while the folder exists ("" otherwise)."""
    return _Setting(key, "", lambda v: str(v) if v and Path(str(v)).is_dir() else None)


def _blob(key: str) -> _Setting:
    """Window geometry or state (None when not saved yet)."""
    return _Setting(key, None, lambda v: v if isinstance(v, QByteArray) and not v.isEmpty() else None, lambda v: v)


class Settings:
    """Wraps a QSettings; pass one (e.g. an INI file in a temp folder) to isolate tests."""

    def __init__(self, qsettings: QSettings | None = None):
        self.q = qsettings if qsettings is not None else QSettings(ORGANISATION, APPLICATION)

    @classmethod
    def from_file(cls, path: str | Path) -> "Settings":
        return cls(QSettings(str(path), QSettings.Format.IniFormat))

    def sync(self) -> None:
        self.q.sync()

    # -- folders and saving ------------------------------------------------------------------------
    last_open_dir = _folder("folders/open")
    last_save_dir = _folder("folders/save")
    batch_input_dir = _folder("folders/batch_input")
    batch_output_dir = _text("folders/batch_output")  # made by the batch when missing
    batch_recursive = _flag("batch/recursive", False)
    save_as_filter = _text("save/filter", doc="The file type chosen in the last Save As (its filter text), "
                                              "offered first the next time.")
    batch_format = _text("batch/format", "same", OUTPUT_FORMATS,
                         doc="How the batch saves its results (a key of ``imageio.OUTPUT_FORMATS``).")

    # -- denoising options -------------------------------------------------------------------------
    device = _text("denoise/device", "auto")
    network = _text("denoise/network", "auto")
    mode = _text("denoise/mode", "fidelity", ("fidelity", "detail"))
    noise_model = _text("denoise/noise_model", "auto", NOISE_MODELS)
    ensemble = _number("denoise/ensemble", 1, choices=ENSEMBLE_SIZES)
    strength = _number("denoise/strength", 100, hi=100,
                       doc="Share of the brightness noise removed, in percent (``DenoiseOptions.strength`` × 100).")
    color_strength = _number("denoise/color_strength", 100, hi=100,
                             doc="Share of the colour noise removed, in percent (``DenoiseOptions.color_strength`` "
                                 "× 100).")
    steps = _number("denoise/steps", 0, hi=MAX_STEPS)
    seed = _number("denoise/seed", 0, hi=MAX_SEED)

    # -- window ------------------------------------------------------------------------------------
    geometry = _blob("window/geometry")
    window_state = _blob("window/state")
    side_by_side = _flag("view/side_by_side", False)

    # -- recent files ------------------------------------------------------------------------------
    @property
    def recent_files(self) -> list[str]:
        v = self.q.value("recent/files", [])
        if isinstance(v, str):
            v = [v] if v else []
        if not isinstance(v, (list, tuple)):  # a hand-edited or foreign value (a number, a size): none
            return []
        return [str(p) for p in v if isinstance(p, str) and p][:MAX_RECENT]

    @recent_files.setter
    def recent_files(self, files: list[str]) -> None:
        self.q.setValue("recent/files", list(files)[:MAX_RECENT])

    def add_recent_file(self, path: str | Path) -> list[str]:
        p = str(Path(path).resolve())
        files = [p] + [f for f in self.recent_files if f != p]
        self.recent_files = files
        return self.recent_files

    def clear_recent_files(self) -> None:
        self.recent_files = []
