"""Writing an image file safely: format and bit depth chosen, inputs protected, atomic replace."""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from .common import (
    _FORMAT_ALIASES,
    _FORMAT_DEPTHS,
    ImageWriteError,
    DiskFullError,
    LoadedImage,
    OutputExistsError,
    _SUFFIX_FORMATS,
    SUPPORTED_SUFFIXES,
    _name,
    _same_file,
)
from .encode import _encode
from .metadata import _clean_dpi, _icc_colour_space, _normalise_exif, _xmp_bytes

# no space left on the disk, or the user's quota used up
_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


def _umask() -> int:
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022


def _as_pixels(pixels: Any) -> tuple[np.ndarray, np.ndarray | None]:
    a = np.asarray(pixels)
    if a.dtype == np.uint8:
        a = a.astype(np.float32) / 255.0
    elif a.dtype == np.uint16:
        a = a.astype(np.float32) / 65535.0
    elif a.dtype == np.bool_ or a.dtype.kind in "iu":
        a = a.astype(np.float32)
    elif a.dtype.kind != "f":
        raise ValueError(f"pixel values must be numbers, got {a.dtype}")
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected an HxW, HxWx1, HxWx3 or HxWx4 array, got shape {a.shape}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError("the image is empty (0 pixels)")
    alpha = None
    if a.shape[2] == 4:
        a, alpha = a[:, :, :3], a[:, :, 3]
    return a, alpha  # NaN and infinities are handled by _quantise (without another full-size copy)


def _resolve_format(path: Path, fmt: str | None, like: LoadedImage | None) -> str:
    if fmt:
        f = _FORMAT_ALIASES.get(fmt.upper(), fmt.upper())
        if f not in _FORMAT_DEPTHS:
            raise ImageWriteError(
                f"Cannot write {_name(path)}: unsupported format '{fmt}' "
                f"(use JPEG, PNG, TIFF, WEBP or BMP)."
            )
        return f
    by_suffix = _SUFFIX_FORMATS.get(path.suffix.lower())
    if by_suffix:
        return by_suffix
    if like is not None and like.format in _FORMAT_DEPTHS:
        return like.format
    raise ImageWriteError(
        f"Cannot write {_name(path)}: cannot tell the file type from its extension "
        f"(use one of {', '.join(SUPPORTED_SUFFIXES)})."
    )


def check_destination(
    path: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    protect: Iterable[str | os.PathLike[str]] = (),
    make_folder: bool = False,
) -> None:
    """Raise ImageWriteError if :func:`write_image` could not write ``path``: it is one of ``protect``,
    its folder is missing or read-only, a folder has its name, or the file exists and not ``overwrite``.
    With ``make_folder`` a missing folder is fine if it can be made (:func:`make_output_folder`): no file
    stands in its way and the nearest existing folder above it is writable.
    A batch checks this before spending minutes on a photo whose result could not be saved."""
    path = Path(path)
    name = _name(path)
    folder = path.parent
    for p in protect:
        if _same_file(path, Path(p)):
            raise ImageWriteError(
                f"Refusing to write {name}: that is an input file and would be overwritten."
            )
    if not folder.exists():
        if not make_folder:
            raise ImageWriteError(f"Cannot write {name}: the folder '{folder}' does not exist.")
        problem = _unmakeable(folder)
        if problem:
            raise ImageWriteError(f"Cannot write {name}: {problem}.")
        return
    if not folder.is_dir():
        raise ImageWriteError(f"Cannot write {name}: '{folder}' is not a folder.")
    if path.is_dir():
        raise ImageWriteError(f"Cannot write {name}: a folder with that name already exists.")
    if path.exists() and not overwrite:
        raise OutputExistsError(f"Refusing to write {name}: the file already exists in '{folder}'.")
    if not os.access(folder, os.W_OK):
        raise ImageWriteError(
            f"Cannot write {name}: no permission to write into the folder '{folder}' "
            f"(it may be read-only)."
        )


def _unmakeable(folder: Path) -> str | None:
    """Why the missing ``folder`` could not be made (a file in its path, a read-only folder above it), or
    None."""
    above = folder
    while not above.exists() and above.parent != above:
        above = above.parent
    if above.exists() and not above.is_dir():
        return f"the folder '{folder}' cannot be made, because '{above}' is a file, not a folder"
    if not os.access(above, os.W_OK | os.X_OK):
        return f"the folder '{folder}' cannot be made: no permission to write into '{above}' (it may be read-only)"
    return None


def output_folder_problem(folder: str | os.PathLike[str]) -> str | None:
    """Why files could not be saved in ``folder`` (a file, read-only, or missing and not to be made), or
    None: a writable folder, or a missing one that can be made."""
    folder = Path(folder)
    if not folder.exists():
        return _unmakeable(folder)
    if not folder.is_dir():
        return f"'{folder}' is a file, not a folder"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"no permission to write into the folder '{folder}' (it may be read-only)"
    return None


def check_output_folder(folder: str | os.PathLike[str]) -> None:
    """Raise ImageWriteError unless results can be saved in ``folder`` (:func:`output_folder_problem`). The
    CLI checks this once before a batch, so that it does not fail photo by photo."""
    problem = output_folder_problem(folder)
    if problem:
        raise ImageWriteError(f"Cannot save the results: {problem}.")


def make_output_folder(path: str | os.PathLike[str]) -> None:
    """Make the folder ``path`` is to be written into (and its parents); an OSError becomes an
    ImageWriteError that says which folder and why."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = _unmakeable(path.parent) or f"the folder '{path.parent}' cannot be made ({exc.strerror or exc})"
        raise ImageWriteError(f"Cannot write {_name(path)}: {reason}.") from exc


def write_image(
    path: str | os.PathLike[str],
    pixels: Any,
    *,
    like: LoadedImage | None = None,
    format: str | None = None,
    bit_depth: int | None = None,
    jpeg_quality: int = 95,
    alpha: Any = None,
    exif: bytes | None = ...,  # type: ignore[assignment]
    icc_profile: bytes | None = ...,  # type: ignore[assignment]
    xmp: bytes | None = ...,  # type: ignore[assignment]
    dpi: tuple[float, float] | None = ...,  # type: ignore[assignment]
    overwrite: bool = False,
    protect: Iterable[str | os.PathLike[str]] = (),
    notes: list[str] | None = None,
) -> Path:
    """Write ``pixels`` (float in [0, 1]; HxWx3, HxWx1 or HxW) to ``path`` atomically.

    * Format: ``format`` if given, else from the file extension, else
      ``like.format``.
    * Bit depth: ``bit_depth`` if given (ImageWriteError if the format cannot
      store it), else ``like.bit_depth`` reduced to what the format allows
      (JPEG/WebP/BMP 8; PNG 8/16; TIFF 8/16/32-float), else 8. Values are
      clipped to [0, 1] and rounded to the nearest integer level.
    * ``alpha``: None -> ``like.alpha`` (dropped if its size differs from the
      pixels), False -> no alpha, array -> that alpha (HxW, [0, 1]). An HxWx4
      ``pixels`` array is taken as RGB + alpha. JPEG and BMP output drop alpha.
    * ``exif`` / ``icc_profile`` / ``xmp`` / ``dpi``: left out -> taken from
      ``like``; None -> not written. EXIF, ICC and XMP are kept for JPEG, PNG
      (8 and 16-bit), TIFF and WebP; BMP stores none of them. The resolution
      is kept for JPEG, PNG, TIFF and BMP (WebP has no place for it). A
      profile whose colour space does not match the output (e.g. an RGB
      profile on a grayscale JPEG) is dropped.
    * JPEG uses 4:4:4 chroma when ``jpeg_quality >= 90``; WebP uses
      ``jpeg_quality`` as its quality and is lossless at 100, and always
      when ``like`` is a lossless WebP (:attr:`LoadedImage.lossless`).

    The data goes to a hidden temporary file in the same folder that is then
    moved into place; on failure the temporary file is removed. Refuses to
    write onto ``like.path`` or any path in ``protect`` and onto an existing
    file unless ``overwrite=True``. Returns the path written. ``notes``: a list the metadata that could
    not be kept is named in (EXIF or XMP too big for a JPEG), for the user.
    """
    path = Path(path)
    name = _name(path)
    fmt = _resolve_format(path, format, like)

    try:
        px, alpha4 = _as_pixels(pixels)
    except ValueError as exc:
        raise ImageWriteError(f"Cannot write {name}: {exc}.") from None
    h, w = px.shape[:2]

    allowed = _FORMAT_DEPTHS[fmt]
    if bit_depth is not None:
        if bit_depth not in allowed:
            raise ImageWriteError(
                f"Cannot write {name}: {fmt} files cannot store {bit_depth}-bit images "
                f"(possible: {', '.join(f'{d}-bit' for d in allowed)})."
            )
        depth = int(bit_depth)
    elif like is not None:
        depth = max([d for d in allowed if d <= like.bit_depth] or [8])
    else:
        depth = 8

    if alpha is False:
        alpha_arr = None
    elif alpha is not None:
        alpha_arr = np.asarray(alpha, dtype=np.float32)
        if alpha_arr.ndim == 3 and alpha_arr.shape[2] == 1:
            alpha_arr = alpha_arr[:, :, 0]
        if alpha_arr.shape != (h, w):
            raise ImageWriteError(
                f"Cannot write {name}: the alpha channel is {alpha_arr.shape} but the image "
                f"is {h}x{w}."
            )
    elif alpha4 is not None:
        alpha_arr = alpha4
    elif like is not None and like.alpha is not None and like.alpha.shape == (h, w):
        alpha_arr = like.alpha
    else:
        alpha_arr = None
    if alpha_arr is not None:
        alpha_arr = np.nan_to_num(alpha_arr.astype(np.float32, copy=False), nan=1.0)

    if exif is ...:
        exif = like.exif if like is not None else None
    if icc_profile is ...:
        icc_profile = like.icc_profile if like is not None else None
    if xmp is ...:
        xmp = like.xmp if like is not None else None
    if dpi is ...:
        dpi = like.dpi if like is not None else None
    xmp, dpi = _xmp_bytes(xmp), _clean_dpi(dpi) if dpi is not None else None
    exif = _normalise_exif(exif)
    if fmt == "BMP":
        exif = icc_profile = xmp = None
    if icc_profile and _icc_colour_space(icc_profile) not in (b"RGB ", b"GRAY"):
        icc_profile = None

    # --- destination checks -------------------------------------------------
    protected = [Path(p) for p in protect]
    if like is not None and like.path is not None:
        protected.append(Path(like.path))
    check_destination(path, overwrite=overwrite, protect=protected)
    folder = path.parent

    # --- encode ---------------------------------------------------------------
    if fmt == "WEBP" and like is not None and like.lossless:
        jpeg_quality = 100  # a lossless original stays lossless
    try:
        data = _encode(fmt, px, alpha_arr, depth, jpeg_quality, exif, icc_profile, xmp, dpi, notes)
    except MemoryError:
        raise ImageWriteError(f"Cannot write {name}: not enough memory to encode it.") from None
    except Exception as exc:
        raise ImageWriteError(f"Cannot write {name} as {fmt}: {exc}") from exc

    # --- atomic write ---------------------------------------------------------
    try:
        mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o666 & ~_umask()
    except OSError:
        mode = 0o666 & ~_umask()
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.chmod(tmp, mode)
        except OSError:
            pass
        if overwrite:
            os.replace(tmp, path)
            tmp = None
        else:
            try:
                os.link(tmp, path)  # atomic and never clobbers
            except FileExistsError:
                raise OutputExistsError(
                    f"Refusing to write {name}: the file already exists in '{folder}'."
                ) from None
            except OSError:
                # No hard links on this file system (e.g. FAT, some shares).
                if os.path.lexists(path):
                    raise OutputExistsError(
                        f"Refusing to write {name}: the file already exists in '{folder}'."
                    ) from None
                os.replace(tmp, path)
                tmp = None
    except ImageWriteError:
        raise
    except PermissionError:
        raise ImageWriteError(
            f"Cannot write {name}: no permission to write into the folder '{folder}' "
            f"(it may be read-only)."
        ) from None
    except OSError as exc:
        if exc.errno in _DISK_FULL:
            raise DiskFullError(f"Cannot write {name}: the disk holding '{folder}' is full "
                                f"({exc.strerror or exc}).") from None
        raise ImageWriteError(f"Cannot write {name}: {exc.strerror or exc}.") from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
    return path
