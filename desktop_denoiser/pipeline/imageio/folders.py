"""Where outputs go, and which files of a folder are images."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from .common import ImageReadError, SUPPORTED_SUFFIXES, _same_file, unsupported_photo_message


def output_path_for(
    input_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str] | None = None,
    *,
    suffix: str = "_denoised",
) -> Path:
    """Where the result for ``input_path`` goes.

    ``out_dir`` given (and not the input's own folder) -> ``out_dir/<name>``;
    otherwise ``<input folder>/<stem><suffix><ext>``.
    """
    src = Path(input_path)
    if out_dir is not None:
        out = Path(out_dir)
        if not _same_file(out, src.parent):
            return out / src.name
    return src.with_name(f"{src.stem}{suffix}{src.suffix}")


@dataclass(frozen=True)
class OutputFormat:
    """How a batch saves its results: ``suffix`` (None: each original's own) and ``bit_depth`` (None: the
    original's, as far as the format holds it)."""

    suffix: str | None
    bit_depth: int | None
    label: str  # in words, for the batch dialog


# a denoised photo is smooth where the noise was: 16 bits keep its gradients free of banding when it is
# edited further (curves, exposure), which an 8-bit copy of a JPEG would not
OUTPUT_FORMATS = {
    "same": OutputFormat(None, None, "Same as each original"),
    "tif": OutputFormat(".tif", 16, "16-bit TIFF (lossless, for editing)"),
    "png": OutputFormat(".png", 16, "16-bit PNG (lossless)"),
    "jpg": OutputFormat(".jpg", 8, "JPEG (quality 95)"),
}


def output_format(name: str) -> OutputFormat:
    """The OUTPUT_FORMATS entry ``name``, or a ValueError that lists them."""
    try:
        return OUTPUT_FORMATS[name]
    except KeyError:
        raise ValueError(f"output format must be one of {', '.join(OUTPUT_FORMATS)}, got {name!r}") from None


def _is_hidden(p: Path) -> bool:
    if p.name.startswith("."):
        return True
    attrs = getattr(os.stat(p, follow_symlinks=False), "st_file_attributes", 0)
    return bool(attrs & getattr(stat, "FILE_ATTRIBUTE_HIDDEN", 0))


def split_inputs(paths) -> tuple[list[Path], list[Path]]:
    """(the folders and photo files among ``paths``, the other files): what a drop or a pick of several
    files can queue, and what it leaves out. A path given twice (the same file dropped twice, or once by a
    link) counts once."""
    unique: dict[str, Path] = {}
    for p in map(Path, paths):
        unique.setdefault(os.path.realpath(p), p)
    paths = list(unique.values())
    inputs = [p for p in paths if p.is_dir() or p.suffix.lower() in SUPPORTED_SUFFIXES]
    return inputs, [p for p in paths if p not in inputs]


def not_a_photo_message(path: Path) -> str:
    """Why ``path`` (dropped or picked alone) cannot be opened: camera raw / HEIC, or not a photo at all."""
    return unsupported_photo_message(path) or (f"'{Path(path).name}' is not a supported image file "
                                               f"({', '.join(SUPPORTED_SUFFIXES)}).")


def display_name(path) -> str:
    """``path``'s file name as text a window can show: bytes that are not valid in the file system's encoding
    (a Latin-1 name on a UTF-8 system, which Python keeps as lone surrogates and Qt drops) become '�'."""
    return Path(path).name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def name_list(paths, more: str = "…") -> str:
    """The names of the first three of ``paths``, and ``more`` after them when there are others: for the
    messages that name files."""
    paths = list(paths)
    return ", ".join(Path(p).name for p in paths[:3]) + (f", {more}" if len(paths) > 3 else "")


def left_out_note(others: list[Path]) -> str:
    """The message for files left out of a drop (split_inputs), naming camera raw / HEIC ones as such."""
    raw = sum(unsupported_photo_message(p) is not None for p in others)
    why = f" ({raw} camera raw or HEIC: export them as TIFF or JPEG first)" if raw else ""
    return f"Left out {len(others)} file(s) that cannot be opened as photos{why}: {name_list(others)}"


def list_images(folder: str | os.PathLike[str], *, recursive: bool = False,
                unreadable: list[Path] | None = None) -> list[Path]:
    """Image files in ``folder`` (sorted; hidden files and folders skipped). ``unreadable``: a list the folders
    below ``folder`` that a recursive listing could not read (no permission, gone meanwhile) are appended
    to, in the same walk; their photos are left out."""
    return sorted(p for p in _files(folder, recursive, unreadable) if p.suffix.lower() in SUPPORTED_SUFFIXES)


def has_images_below(folder: str | os.PathLike[str]) -> bool:
    """Whether ``folder``'s sub-folders hold an image file: stops at the first one (a big tree is not walked
    whole for the answer); False where the folder cannot be listed."""
    try:
        return any(p.suffix.lower() in SUPPORTED_SUFFIXES for p in _files(folder, True))
    except (ImageReadError, OSError):
        return False


def list_unreadable_photos(folder: str | os.PathLike[str], *, recursive: bool = False) -> list[Path]:
    """Photo files in ``folder`` that are left out because they are not read (camera raw, HEIC:
    ``unsupported_photo_message``), sorted; for the message that a folder of raw files has no images."""
    return sorted(p for p in _files(folder, recursive) if unsupported_photo_message(p) is not None)


def unreadable_photos_in(inputs, *, recursive: bool = False) -> list[Path]:
    """list_unreadable_photos of each folder among ``inputs`` (files and folders, as a batch is given them)."""
    return [p for given in map(Path, inputs) if given.is_dir()
            for p in list_unreadable_photos(given, recursive=recursive)]


def _files(folder: str | os.PathLike[str], recursive: bool, unreadable: list[Path] | None = None):
    """The files in ``folder`` (and below it if ``recursive``), hidden files and folders skipped; the folders a
    recursive walk cannot read are appended to ``unreadable`` (if given)."""
    root = Path(folder)
    if not root.is_dir():
        raise ImageReadError(f"Cannot list images in '{root}': it is not an existing folder.")
    if recursive:
        def skipped(exc: OSError) -> None:
            if unreadable is not None:
                unreadable.append(Path(exc.filename))

        for dirpath, dirnames, filenames in os.walk(root, onerror=skipped):
            base = Path(dirpath)
            dirnames[:] = [d for d in dirnames if not _safe_hidden(base / d)]
            for fn in filenames:
                p = base / fn
                if not _safe_hidden(p) and p.is_file():
                    yield p
        return
    try:
        entries = list(root.iterdir())
    except OSError as exc:
        raise ImageReadError(f"Cannot list images in '{root}': {exc.strerror or exc}.") from None
    for p in entries:
        if not _safe_hidden(p) and p.is_file():
            yield p


def _safe_hidden(p: Path) -> bool:
    try:
        return _is_hidden(p)
    except OSError:
        return True
