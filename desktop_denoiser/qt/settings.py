"""Typed access to the remembered settings (QSettings, organisation "DesktopDenoiser")."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

from ..core.denoise import ENSEMBLE_SIZES
from ..pipeline.imageio import OUTPUT_FORMATS
from ..pipeline.jobs import NOISE_MODELS

ORGANISATION = "DesktopDenoiser"
APPLICATION = "Desktop Denoiser"
MAX_RECENT = 8


class Settings:
    """Wraps a QSettings; pass one (e.g. an INI file in a temp folder) to isolate tests."""

    def __init__(self, qsettings: QSettings | None = None):
        self.q = qsettings if qsettings is not None else QSettings(ORGANISATION, APPLICATION)

    @classmethod
    def from_file(cls, path: str | Path) -> "Settings":
        return cls(QSettings(str(path), QSettings.Format.IniFormat))

    # -- generic helpers ---------------------------------------------------------------------------
    def _str(self, key: str, default: str = "") -> str:
        v = self.q.value(key, default)
        return str(v) if v is not None else default

    def _int(self, key: str, default: int) -> int:
        try:
            return int(self.q.value(key, default))
        except (TypeError, ValueError):
            return default

    def _bool(self, key: str, default: bool) -> bool:
        v = self.q.value(key, default)
        if isinstance(v, str):
            return v.lower() in ("1", "true", "yes")
        return bool(v)

    def sync(self) -> None:
        self.q.sync()

    # -- folders -----------------------------------------------------------------------------------
    def _folder(self, key: str) -> str:
        v = self._str(key)
        return v if v and Path(v).is_dir() else ""

    @property
    def last_open_dir(self) -> str:
        return self._folder("folders/open")

    @last_open_dir.setter
    def last_open_dir(self, v: str) -> None:
        self.q.setValue("folders/open", str(v))

    @property
    def last_save_dir(self) -> str:
        return self._folder("folders/save")

    @last_save_dir.setter
    def last_save_dir(self, v: str) -> None:
        self.q.setValue("folders/save", str(v))

    @property
    def batch_input_dir(self) -> str:
        return self._folder("folders/batch_input")

    @batch_input_dir.setter
    def batch_input_dir(self, v: str) -> None:
        self.q.setValue("folders/batch_input", str(v))

    @property
    def batch_output_dir(self) -> str:
        return self._str("folders/batch_output")

    @batch_output_dir.setter
    def batch_output_dir(self, v: str) -> None:
        self.q.setValue("folders/batch_output", str(v))

    @property
    def batch_recursive(self) -> bool:
        return self._bool("batch/recursive", False)

    @batch_recursive.setter
    def batch_recursive(self, v: bool) -> None:
        self.q.setValue("batch/recursive", bool(v))

    @property
    def save_as_filter(self) -> str:
        """The file type chosen in the last Save As (its filter text), offered first the next time."""
        return self._str("save/filter", "")

    @save_as_filter.setter
    def save_as_filter(self, v: str) -> None:
        self.q.setValue("save/filter", str(v))

    @property
    def batch_format(self) -> str:
        """How the batch saves its results (a key of ``imageio.OUTPUT_FORMATS``)."""
        v = self._str("batch/format", "same")
        return v if v in OUTPUT_FORMATS else "same"

    @batch_format.setter
    def batch_format(self, v: str) -> None:
        self.q.setValue("batch/format", str(v))

    # -- denoising options -------------------------------------------------------------------------
    @property
    def device(self) -> str:
        return self._str("denoise/device", "auto") or "auto"

    @device.setter
    def device(self, v: str) -> None:
        self.q.setValue("denoise/device", str(v))

    @property
    def network(self) -> str:
        return self._str("denoise/network", "auto") or "auto"

    @network.setter
    def network(self, v: str) -> None:
        self.q.setValue("denoise/network", str(v))

    @property
    def mode(self) -> str:
        v = self._str("denoise/mode", "fidelity")
        return v if v in ("fidelity", "detail") else "fidelity"

    @mode.setter
    def mode(self, v: str) -> None:
        self.q.setValue("denoise/mode", str(v))

    @property
    def noise_model(self) -> str:
        v = self._str("denoise/noise_model", "auto")
        return v if v in NOISE_MODELS else "auto"

    @noise_model.setter
    def noise_model(self, v: str) -> None:
        self.q.setValue("denoise/noise_model", str(v))

    @property
    def ensemble(self) -> int:
        v = self._int("denoise/ensemble", 1)
        return v if v in ENSEMBLE_SIZES else 1

    @ensemble.setter
    def ensemble(self, v: int) -> None:
        self.q.setValue("denoise/ensemble", int(v))

    @property
    def strength(self) -> int:
        """Share of the brightness noise removed, in percent (``DenoiseOptions.strength`` × 100)."""
        return min(100, max(0, self._int("denoise/strength", 100)))

    @strength.setter
    def strength(self, v: int) -> None:
        self.q.setValue("denoise/strength", int(v))

    @property
    def color_strength(self) -> int:
        """Share of the colour noise removed, in percent (``DenoiseOptions.color_strength`` × 100)."""
        return min(100, max(0, self._int("denoise/color_strength", 100)))

    @color_strength.setter
    def color_strength(self, v: int) -> None:
        self.q.setValue("denoise/color_strength", int(v))

    @property
    def steps(self) -> int:
        return max(0, self._int("denoise/steps", 0))

    @steps.setter
    def steps(self, v: int) -> None:
        self.q.setValue("denoise/steps", int(v))

    @property
    def seed(self) -> int:
        return max(0, self._int("denoise/seed", 0))

    @seed.setter
    def seed(self, v: int) -> None:
        self.q.setValue("denoise/seed", int(v))

    # -- window ------------------------------------------------------------------------------------
    @property
    def geometry(self) -> QByteArray | None:
        v = self.q.value("window/geometry")
        return v if isinstance(v, QByteArray) and not v.isEmpty() else None

    @geometry.setter
    def geometry(self, v: QByteArray) -> None:
        self.q.setValue("window/geometry", v)

    @property
    def window_state(self) -> QByteArray | None:
        v = self.q.value("window/state")
        return v if isinstance(v, QByteArray) and not v.isEmpty() else None

    @window_state.setter
    def window_state(self, v: QByteArray) -> None:
        self.q.setValue("window/state", v)

    @property
    def side_by_side(self) -> bool:
        return self._bool("view/side_by_side", False)

    @side_by_side.setter
    def side_by_side(self, v: bool) -> None:
        self.q.setValue("view/side_by_side", bool(v))

    # -- recent files ------------------------------------------------------------------------------
    @property
    def recent_files(self) -> list[str]:
        v = self.q.value("recent/files", [])
        if isinstance(v, str):
            v = [v] if v else []
        return [str(p) for p in (v or [])][:MAX_RECENT]

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
