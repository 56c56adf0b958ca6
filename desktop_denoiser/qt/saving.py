"""Saving the result: Save beside the original, Save As with a format and bit depth, and the checks that keep
originals and previews from being written (a mixin of the main window, which owns the result)."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QStandardPaths
from PySide6.QtWidgets import QFileDialog

from ..pipeline.imageio import output_path_for, write_image
from .errors import describe_error

SAVE_FORMATS = [  # (filter, format name, extension, bit depth: None = the original's, as far as the format holds it)
    ("PNG image (*.png)", "PNG", ".png", None),
    ("PNG image, 16-bit (*.png)", "PNG", ".png", 16),
    ("TIFF image (*.tif *.tiff)", "TIFF", ".tif", None),
    ("TIFF image, 16-bit, for editing (*.tif *.tiff)", "TIFF", ".tif", 16),
    ("JPEG image (*.jpg *.jpeg)", "JPEG", ".jpg", None),
]
_EXT_FORMAT = {".png": "PNG", ".tif": "TIFF", ".tiff": "TIFF", ".jpg": "JPEG", ".jpeg": "JPEG"}


def resolve_save_as(path: str | os.PathLike[str], chosen_filter: str = "") -> tuple[Path, str, int | None]:
    """Save As: the path, format and bit depth (None: the original's) from the typed name and the chosen
    filter. A known extension decides the format; without one, the filter's format is used and its
    extension appended. The filter's bit depth applies when its format is the one written."""
    path = Path(path)
    fmt, suffix, depth = next(((f2, e, d) for f, f2, e, d in SAVE_FORMATS if f == chosen_filter),
                              ("PNG", ".png", None))
    ext = path.suffix.lower()
    if ext in _EXT_FORMAT:
        return path, _EXT_FORMAT[ext], depth if _EXT_FORMAT[ext] == fmt else None
    return path.with_name(path.name + suffix), fmt, depth


class SaveMixin:
    """Save, Save As and their checks for :class:`~.main_window.MainWindow`: it provides ``result``,
    ``image``, ``image_path``, ``preview_region``, ``settings``, ``saved``, ``show_error``, ``confirm``,
    ``_set_unsaved`` and ``_is_bundled``."""

    def can_save(self) -> bool:
        """Whether there is a result of the whole photo to save (not a preview of part of it)."""
        return self.result is not None and self.preview_region is None

    def default_save_path(self) -> Path | None:
        if self.image_path is None:
            return None
        out = output_path_for(self.image_path)
        if self._is_bundled(self.image_path) or not os.access(out.parent, os.W_OK):
            # the first of these that is a folder one may write into (a Pictures folder may not exist)
            pictures = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.PicturesLocation)
            for folder in (self.settings.last_save_dir, pictures, str(Path.home())):
                if folder and Path(folder).is_dir() and os.access(folder, os.W_OK):
                    return Path(folder) / out.name
            out = Path(pictures or Path.home()) / out.name  # none is: saving says why
        return out

    def _check_savable(self) -> bool:
        """can_save(), or say why not."""
        if self.result is None or self.image is None:
            self.show_error("Nothing to save yet: denoise the photo first.")
            return False
        if self.preview_region is not None:
            self.show_error("Only the area in view is denoised (a preview). Denoise the whole photo (Ctrl+R) "
                            "to save it.")
            return False
        return True

    def save(self) -> Path | None:
        """Save next to the original as <stem>_denoised.<ext>, same format and bit depth."""
        if not self._check_savable():
            return None
        path = self.default_save_path()
        overwrite = False
        if path.exists():
            if not self.confirm(f"'{path.name}' already exists in {path.parent}.\nReplace it?"):
                return None
            overwrite = True
        return self.save_to(path, overwrite=overwrite)

    def save_as(self) -> Path | None:
        if not self._check_savable():
            return None
        default = self.default_save_path()
        if self.settings.last_save_dir and default is not None:
            default = Path(self.settings.last_save_dir) / default.name
        src_fmt = _EXT_FORMAT.get(default.suffix.lower(), "PNG") if default else "PNG"
        filters = [f for f, _, _, _ in SAVE_FORMATS]
        selected = next((f for f, fmt, _, _ in SAVE_FORMATS if fmt == src_fmt), filters[0])
        last = self.settings.save_as_filter  # the choice of the last Save As (e.g. always 16-bit TIFF)
        if last in filters:
            selected = last
            if default is not None:
                default = default.with_suffix(next(e for f, _, e, _ in SAVE_FORMATS if f == last))
        if default is not None and default.suffix.lower() not in _EXT_FORMAT:
            default = default.with_suffix(".png")
        path_str, chosen = QFileDialog.getSaveFileName(
            self, "Save denoised photo", str(default or ""), ";;".join(filters), selected,
            QFileDialog.Option.DontConfirmOverwrite)
        if not path_str:
            return None
        path, fmt, depth = resolve_save_as(path_str, chosen)
        if chosen in filters:
            self.settings.save_as_filter = chosen
        overwrite = False
        if path.exists():
            if self.image_path is not None and path.resolve() == self.image_path.resolve():
                self.show_error("The original photo is never overwritten. Choose another name.")
                return None
            if not self.confirm(f"'{path.name}' already exists.\nReplace it?"):
                return None
            overwrite = True
        return self.save_to(path, format=fmt, bit_depth=depth, overwrite=overwrite)

    def save_to(self, path: str | os.PathLike[str], *, format: str | None = None, bit_depth: int | None = None,
                overwrite: bool = False) -> Path | None:
        """Write the result (no dialogs). Keeps bit depth, alpha, EXIF and ICC of the original; refuses to
        write onto the original, and onto an existing file unless ``overwrite``."""
        if not self._check_savable():
            return None
        protect = [self.image_path] if self.image_path is not None else []
        notes: list[str] = []  # metadata the format could not keep
        try:
            out = write_image(path, self.result.pixels, like=self.image, format=format, bit_depth=bit_depth,
                              overwrite=overwrite, protect=protect, notes=notes)
        except Exception as exc:
            self.show_error(describe_error(exc, "Saving failed"))
            return None
        self.settings.last_save_dir = str(Path(out).parent)
        self._set_unsaved(False)
        self.statusBar().showMessage(f"Saved {out}" + "".join(f"; {n}" for n in notes), 20000 if notes else 8000)
        self.saved.emit(str(out))
        return Path(out)
