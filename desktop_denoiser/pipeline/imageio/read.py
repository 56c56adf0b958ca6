"""Reading a file into a :class:`~.common.LoadedImage`: the size and safety checks, Pillow for what it
decodes well, OpenCV for 16-bit/float colour PNG and TIFF, EXIF orientation applied."""

from __future__ import annotations

import io
import os
import stat
import warnings
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image, TiffImagePlugin, UnidentifiedImageError

from .common import (
    _EXIF_IFD,
    _FORMAT_DEPTHS,
    _GPS_IFD,
    _ICC_TAG,
    ImageReadError,
    LoadedImage,
    MAX_PIXELS,
    _ORIENTATION,
    _depth_info,
    _name,
    _to_unit_float,
    unsupported_photo_message,
)
from .metadata import (
    _apply_orientation,
    _clean_dpi,
    _exif_dpi,
    _exif_swap_resolution,
    _xmp_orientation,
    _exif_orientation,
    _exif_reset_orientation,
    _icc_colour_space,
    _normalise_exif,
    _png_add_metadata,
    _png_metadata,
    _tiff_exif,
    _xmp_reset_orientation,
)
from .tiff import _XMP_TAG, _cv2_tiff_ok, _encode_tiff, _tiff_description, _tiff_hint, _tiff_orientation


def _os_error(verb: str, where: str, exc: BaseException) -> ImageReadError:
    """The plain-words error for an OSError or MemoryError met while opening or reading a file."""
    if isinstance(exc, FileNotFoundError):
        reason = "the file does not exist"
    elif isinstance(exc, PermissionError):
        reason = "permission denied"
    elif isinstance(exc, MemoryError):
        reason = "not enough memory to read it"
    else:
        reason = getattr(exc, "strerror", None) or str(exc)
    return ImageReadError(f"Cannot {verb} {where}: {reason}.")


def _read_bytes(path: Path) -> bytes:
    where = f"{_name(path)} (in {path.parent})"
    try:
        st = path.stat()
    except OSError as exc:
        raise _os_error("open", where, exc) from None
    if stat.S_ISDIR(st.st_mode):
        raise ImageReadError(f"Cannot open {where}: it is a folder, not an image file.")
    if st.st_size == 0:
        raise ImageReadError(f"Cannot open {where}: the file is empty (0 bytes).")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except (OSError, MemoryError) as exc:
        raise _os_error("read", where, exc) from None
    if not data:
        raise ImageReadError(f"Cannot open {where}: the file is empty (0 bytes).")
    return data


def _check_pixels(path: Path, width: int, height: int) -> None:
    n = int(width) * int(height)
    if n > MAX_PIXELS:
        raise ImageReadError(
            f"Refusing to open {_name(path)}: it is {width} x {height} pixels "
            f"({n / 1e6:.1f} megapixels), more than the limit of {MAX_PIXELS / 1e6:.0f} "
            f"megapixels. The file may be a decompression bomb (a small file that "
            f"expands to a huge image)."
        )


def _cv2_decode(data: bytes) -> np.ndarray | None:
    buf = np.frombuffer(data, dtype=np.uint8)
    try:
        arr = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    except cv2.error:
        return None
    if arr is None or arr.size == 0:
        return None
    return arr


def _split_cv2(arr: np.ndarray, gray: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """OpenCV array (BGR/BGRA/gray) -> (RGB or HxWx1 gray, alpha or None)."""
    if arr.ndim == 2:
        return arr[:, :, None], None
    c = arr.shape[2]
    if c == 1:
        return arr, None
    if c == 2:
        return arr[:, :, :1], arr[:, :, 1]
    alpha = arr[:, :, 3] if c == 4 else None
    if gray:
        return arr[:, :, :1], alpha
    return arr[:, :, 2::-1], alpha


def _read_tiff_fallback(path: Path, data: bytes) -> LoadedImage:
    """TIFFs Pillow cannot identify (e.g. 3-channel float32): OpenCV pixels."""
    tags: Any = {}
    try:
        ifd = TiffImagePlugin.ImageFileDirectory_v2(data[:8])
        fp = io.BytesIO(data)
        fp.seek(ifd.next)
        ifd.load(fp)
        tags = ifd
        _check_pixels(path, int(ifd[256]), int(ifd[257]))
    except ImageReadError:
        raise
    except Exception:
        tags = {}
    arr = _cv2_decode(data)
    if arr is None and not tags:  # not even its tag directory could be read: say so, not a made-up variant
        raise ImageReadError(
            f"Cannot read {_name(path)}: the file is damaged or incomplete "
            f"(it may have been cut off while copying or downloading)."
        )
    if arr is None or (hasattr(tags, "get") and not _cv2_tiff_ok(arr, tags)):
        raise ImageReadError(
            f"Cannot read {_name(path)}: it is a TIFF variant this program does not support "
            f"({_tiff_description(tags)}), or the file is damaged.{_tiff_hint(tags)}"
        )
    _check_pixels(path, arr.shape[1], arr.shape[0])
    photometric = tags.get(262) if hasattr(tags, "get") else None
    gray = photometric in (0, 1) or arr.ndim == 2
    px, alpha = _split_cv2(arr, gray)
    depth, maxval = _depth_info(arr.dtype)
    exif = None
    if hasattr(tags, "get"):
        try:
            exif_tags = dict(tags)
            if _EXIF_IFD in tags:
                sub = TiffImagePlugin.ImageFileDirectory_v2(data[:8])
                fp = io.BytesIO(data)
                fp.seek(int(tags[_EXIF_IFD]))
                sub.load(fp)
                exif_tags[_EXIF_IFD] = dict(sub)
            exif_tags.pop(_GPS_IFD, None)
            exif = _tiff_exif(exif_tags)
        except Exception:
            exif = None
    icc = tags.get(_ICC_TAG) if hasattr(tags, "get") else None
    suffix = {16: ";16", 32: ";F32"}.get(depth, "")
    mode = ("L" if gray else "RGB") + ("A" if alpha is not None else "") + suffix
    orientation = turned = _tiff_orientation(tags)
    if _cv2_applies_orientation("TIFF"):
        orientation = 1
    return _finish(path, px, alpha, maxval, depth, "TIFF", exif, icc, mode, orientation, **_tiff_extras(tags, depth),
                   turned_before=turned if orientation == 1 else 1)


def _tiff_extras(tags: Any, depth: int) -> dict[str, Any]:
    """What a TIFF's tags add to :func:`_finish`: its XMP, MinIsWhite grey beyond 8 bits (which neither Pillow
    nor OpenCV inverts there) and associated alpha (OpenCV leaves it premultiplied). (Its resolution is in the
    EXIF made from the same tags, which :func:`_finish` reads it from.)"""
    try:
        extra_samples = tags.get(338, ())
        extra_samples = extra_samples if isinstance(extra_samples, tuple) else (extra_samples,)
        return {"xmp": tags.get(_XMP_TAG), "min_is_white": depth > 8 and tags.get(262) == 0,
                "associated_alpha": bool(extra_samples) and extra_samples[0] == 1}
    except (TypeError, ValueError):
        return {}


_CV2_ORIENTATION: dict[str, bool] = {}


def _cv2_applies_orientation(fmt: str) -> bool:
    """Whether this OpenCV build rotates ``fmt`` files itself in IMREAD_UNCHANGED.

    OpenCV's TIFF decoder honours the TIFF Orientation tag, its PNG decoder
    ignores eXIf; rather than rely on version details, decode a tiny probe
    (1x2 pixels, orientation 2 = mirrored) once per format and look.
    """
    if fmt not in _CV2_ORIENTATION:
        try:
            probe = np.array([[[0, 0, 0], [65535, 65535, 65535]]], dtype=np.uint16)
            ex = Image.Exif()
            ex[_ORIENTATION] = 2
            if fmt == "TIFF":
                data = _encode_tiff(probe, False, False, ex.tobytes(), None)
            else:
                ok, buf = cv2.imencode(".png", probe)
                data = _png_add_metadata(buf.tobytes(), ex.tobytes(), None)
            arr = _cv2_decode(data)
            _CV2_ORIENTATION[fmt] = bool(arr is not None and arr[0, 0, 0] > 0)
        except Exception:
            _CV2_ORIENTATION[fmt] = False
    return _CV2_ORIENTATION[fmt]


def _finish(
    path: Path | None,
    px: np.ndarray,
    alpha: np.ndarray | None,
    maxval: float | None,
    depth: int,
    fmt: str,
    exif: bytes | None,
    icc: bytes | None,
    mode: str,
    orientation: int | None = None,
    *,
    xmp: Any = None,
    dpi: Any = None,
    min_is_white: bool = False,
    associated_alpha: bool = False,
    turned_before: int = 1,
    notes: list[str] | None = None,
) -> LoadedImage:
    """Apply ``orientation`` (default: the one in ``exif``, else in ``xmp``) and build the result.
    ``min_is_white``: grey samples count from white (a TIFF's Photometric 0, which Pillow undoes only at 8
    bits); ``associated_alpha``: the colour is premultiplied by ``alpha`` (a TIFF's ExtraSamples 1), which is
    undone here; ``turned_before``: the orientation the decoder has applied already (the resolution turns
    with it as with ``orientation``)."""
    if min_is_white:
        px = (1.0 - px) if maxval is None else (px.dtype.type(maxval) - px)
    if maxval is None:
        _check_float_range(path, px)
    exif = _normalise_exif(exif)
    if orientation is None:  # (as Pillow's getexif: the XMP's where the EXIF states none)
        orientation = _exif_orientation(exif, default=0) or _xmp_orientation(xmp) or 1
    dpi = _clean_dpi(dpi) or _exif_dpi(exif)  # (where the format states none of its own: the EXIF's)
    quarter_turn = max(orientation, turned_before) >= 5  # the resolutions swap, here and in the EXIF
    if dpi is not None and quarter_turn:
        dpi = (dpi[1], dpi[0])
    if orientation != 1:
        px = _apply_orientation(px, orientation)
        if alpha is not None:
            alpha = _apply_orientation(alpha, orientation)
    if exif is not None:
        try:
            exif = _exif_reset_orientation(exif)
            if quarter_turn:
                exif = _exif_swap_resolution(exif)
        except Exception:
            exif = None
    pixels = _to_unit_float(np.ascontiguousarray(px), maxval)
    alpha_f = None
    if alpha is not None:
        alpha_f = _to_unit_float(np.ascontiguousarray(alpha), maxval)
        if associated_alpha:
            covered = alpha_f > 0
            np.divide(pixels, alpha_f[:, :, None], out=pixels, where=covered[:, :, None])
            np.clip(pixels, 0.0, 1.0, out=pixels)
    return LoadedImage(
        pixels=pixels,
        alpha=alpha_f,
        bit_depth=depth,
        format=fmt,
        path=path,
        exif=exif,
        icc_profile=bytes(icc) if icc else None,
        mode=mode,
        dpi=dpi,
        xmp=_xmp_reset_orientation(xmp),
        notes=list(notes or ()),
    )


# floating-point samples may stray this far past white (rounding in other programs) and are clipped to it
FLOAT_WHITE_TOLERANCE = 1.01


def _check_float_range(path: Path | None, px: np.ndarray) -> None:
    """Refuse floating-point pixels well above 1.0 (white): a high-dynamic-range or scene-linear picture,
    whose highlights the denoiser's [0, 1] range would clip without a word."""
    finite = px[np.isfinite(px)]
    top = float("inf") if np.isposinf(px).any() else float(finite.max()) if finite.size else 0.0
    if top > FLOAT_WHITE_TOLERANCE:
        name = _name(path) if path is not None else "the image"
        raise ImageReadError(
            f"Cannot read {name}: its floating-point values reach {top:.3g}, above 1.0 (white), as in a "
            f"high-dynamic-range or linear-light image; denoising would clip everything brighter than white. "
            f"Tone-map it and save it as a 16-bit TIFF, then denoise that."
        )


_I16_MODES = ("I;16", "I;16L", "I;16B", "I;16N")


class _UnsupportedSamples(ValueError):
    """Sample values the program cannot take (the message says which, for "Cannot read NAME: it holds ...")."""


def _needs_cv2(im: Image.Image) -> bool:
    """True for 16-bit / float colour PNG and TIFF, which Pillow reduces to 8 bits."""
    if im.mode in _I16_MODES or im.mode in ("I", "F"):
        return False
    if im.format == "PNG":
        try:
            rawmode = im.tile[0].args
        except (IndexError, AttributeError):
            return False
        return isinstance(rawmode, str) and rawmode.endswith(";16B")
    if im.format == "TIFF":
        tags = getattr(im, "tag_v2", {})
        bits = tags.get(258, (8,))
        bits = bits if isinstance(bits, tuple) else (bits,)
        return max(bits, default=8) > 8 and tags.get(262) in (0, 1, 2)
    return False


def _convert_cmyk(im: Image.Image, icc: bytes | None) -> tuple[Image.Image, bytes | None]:
    """CMYK -> RGB; colour-managed when the file carries a CMYK profile."""
    if icc and _icc_colour_space(icc) == b"CMYK":
        try:
            from PIL import ImageCms

            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            dst = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
            rgb = ImageCms.profileToProfile(im, src, dst, outputMode="RGB")
            if rgb is not None:
                return rgb, dst.tobytes()
        except Exception:
            pass
    rgb = im.convert("RGB")
    return rgb, (icc if _icc_colour_space(icc) == b"RGB " else None)


def _pillow_pixels(
    im: Image.Image, icc: bytes | None
) -> tuple[np.ndarray, np.ndarray | None, float | None, int, bytes | None]:
    """Loaded Pillow image -> (pixels HxWxC, alpha|None, maxval, depth, icc)."""
    mode = im.mode
    if mode in _I16_MODES:
        a = np.asarray(im).astype(np.uint16, copy=False)
        key = im.info.get("transparency")  # a 16-bit grey PNG's colour key (tRNS)
        alpha = np.where(a == key, 0, 65535).astype(np.uint16) if isinstance(key, int) else None
        return a[:, :, None], alpha, 65535.0, 16, icc
    if mode == "I":  # 32-bit integer samples: fine while they hold 16-bit values (some 16-bit files open so)
        a = np.asarray(im)
        if a.size and (int(a.min()) < 0 or int(a.max()) > 65535):
            raise _UnsupportedSamples(f"32-bit integer values ({int(a.min())} to {int(a.max())}), which this "
                                      "program does not read; save it as a 16-bit or a floating-point TIFF")
        return a.astype(np.uint16)[:, :, None], None, 65535.0, 16, icc
    if mode == "F":
        return np.asarray(im, dtype=np.float32)[:, :, None], None, None, 32, icc
    if mode == "1":
        im = im.convert("L")
    elif mode in ("La", "PA") or (mode == "P" and "transparency" in im.info):
        im = im.convert("LA" if mode == "La" else "RGBA")
    elif mode == "P":
        im = im.convert("RGB")
    elif mode == "RGBa":
        im = im.convert("RGBA")
    elif mode == "CMYK":
        im, icc = _convert_cmyk(im, icc)
    elif mode in ("L", "RGB") and "transparency" in im.info:  # a PNG's colour key (tRNS): that colour is clear
        im = im.convert(mode + "A")
    elif mode not in ("L", "LA", "RGB", "RGBA"):  # LAB, YCbCr, HSV, ... (the alpha modes are handled above)
        im = im.convert("RGB")
    a = np.asarray(im)
    if a.ndim == 2:
        return a[:, :, None], None, 255.0, 8, icc
    if im.mode == "LA":
        return a[:, :, :1], a[:, :, 1], 255.0, 8, icc
    if im.mode == "RGBA":
        return a[:, :, :3], a[:, :, 3], 255.0, 8, icc
    return a[:, :, :3], None, 255.0, 8, icc


def read_image(path: str | os.PathLike[str]) -> LoadedImage:
    """Read an image file into a :class:`LoadedImage`.

    Raises :class:`ImageReadError` with a plain-words message for missing,
    empty, unreadable, truncated, unsupported or oversized files.
    """
    path = Path(path)
    unsupported = unsupported_photo_message(path)
    if unsupported is not None:
        raise ImageReadError(unsupported)
    data = _read_bytes(path)
    name = _name(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageReadError(
            f"Refusing to open {name}: the image is larger than the limit of "
            f"{MAX_PIXELS / 1e6:.0f} megapixels; the file may be a decompression bomb."
        ) from None
    except UnidentifiedImageError:
        if data[:4] in (b"II*\x00", b"MM\x00*"):
            return _read_tiff_fallback(path, data)
        raise ImageReadError(
            f"Cannot read {name}: it is not an image file, or not one of the supported "
            f"types (JPEG, PNG, TIFF, WebP, BMP)."
        ) from None
    except Exception as exc:
        raise ImageReadError(f"Cannot read {name}: the file is damaged ({exc}).") from None

    with im:
        fmt = im.format or ""
        if fmt == "MPO":  # a camera JPEG with its preview in an MPF extension: the first picture is the photo
            fmt = "JPEG"
        if fmt not in _FORMAT_DEPTHS:
            raise ImageReadError(
                f"Cannot read {name}: {fmt or 'this'} files are not supported "
                f"(supported: JPEG, PNG, TIFF, WebP, BMP)."
            )
        _check_pixels(path, im.width, im.height)
        damaged = (
            f"Cannot read {name}: the file is damaged or incomplete "
            f"(it may have been cut off while copying or downloading)."
        )

        notes = _frame_notes(im, name)
        if _needs_cv2(im):
            orientation = None
            extras: dict[str, Any] = {}
            if fmt == "PNG":
                exif, icc, xmp, dpi = _png_metadata(data)
                extras = {"xmp": xmp, "dpi": dpi}
                if _cv2_applies_orientation("PNG"):
                    orientation = 1
            else:
                orientation = _tiff_orientation(im.tag_v2)
                exif = _tiff_exif(im.getexif(), orientation != 1)
                icc = im.info.get("icc_profile")
                if _cv2_applies_orientation("TIFF"):
                    extras["turned_before"], orientation = orientation, 1
            arr = _cv2_decode(data)
            # (OpenCV may already have rotated a TIFF, hence the sorted sizes)
            if arr is None or sorted(arr.shape[:2]) != sorted((im.height, im.width)):
                raise ImageReadError(damaged)
            if fmt == "TIFF" and not _cv2_tiff_ok(arr, im.tag_v2):
                raise ImageReadError(
                    f"Cannot read {name}: this kind of TIFF is not supported "
                    f"({_tiff_description(im.tag_v2)}).{_tiff_hint(im.tag_v2)}"
                )
            if fmt == "PNG" and arr.dtype != np.uint16:
                raise ImageReadError(damaged)
            gray = im.mode in ("L", "LA", "I", "F") or im.mode in _I16_MODES
            px, alpha = _split_cv2(arr, gray)
            depth, maxval = _depth_info(arr.dtype)
            suffix = {16: ";16", 32: ";F32"}.get(depth, "")
            if fmt == "TIFF":
                extras.update(_tiff_extras(im.tag_v2, depth))
            return _finish(
                path, px, alpha, maxval, depth, fmt, exif, icc, im.mode + suffix, orientation, **extras, notes=notes
            )

        # Recent Pillow applies (and then deletes) a TIFF's Orientation tag in load().
        tiff_orientation = _tiff_orientation(im.tag_v2) if fmt == "TIFF" else 1
        try:
            im.load()
        except MemoryError:
            raise ImageReadError(f"Cannot read {name}: not enough memory to decode it.") from None
        except Exception as exc:
            if fmt == "TIFF":  # a layout Pillow cannot decode; OpenCV may
                try:
                    return _read_tiff_fallback(path, data)
                except ImageReadError:
                    pass
            raise ImageReadError(damaged) from exc

        orientation = None
        if fmt == "TIFF":
            ex = im.getexif()
            orientation = _tiff_orientation(ex)  # 1 if Pillow already applied it
            exif = _tiff_exif(ex, tiff_orientation != 1)
        else:
            exif = im.info.get("exif")
            if not exif:
                try:
                    ex = im.getexif()
                    exif = ex.tobytes() if len(ex) else None
                except Exception:
                    exif = None
        icc = im.info.get("icc_profile") or None
        mode = im.mode
        try:
            px, alpha, maxval, depth, icc = _pillow_pixels(im, icc)
        except MemoryError:
            raise ImageReadError(f"Cannot read {name}: not enough memory to decode it.") from None
        except _UnsupportedSamples as exc:
            raise ImageReadError(f"Cannot read {name}: it holds {exc}.") from None
        except Exception as exc:
            raise ImageReadError(
                f"Cannot read {name}: its colour mode ({mode}) is not supported ({exc})."
            ) from None
        if icc and _icc_colour_space(icc) == b"CMYK":
            icc = None
        if fmt == "TIFF":  # (Pillow has undone associated alpha: "RGBa" became "RGBA"; and turned it)
            extras = {**_tiff_extras(im.tag_v2, depth), "associated_alpha": False,
                      "turned_before": tiff_orientation if orientation == 1 else 1}
        elif fmt == "PNG":  # the chunks, as for a 16-bit PNG
            _, _, xmp, dpi = _png_metadata(data)
            extras = {"xmp": xmp, "dpi": dpi}
        else:
            # (a JPEG whose JFIF states an aspect only: Pillow then copies the EXIF's X resolution to both)
            own = im.info.get("dpi") if fmt != "JPEG" or im.info.get("jfif_unit") in (1, 2) else None
            extras = {"xmp": im.info.get("xmp"), "dpi": own}
        loaded = _finish(path, px, alpha, maxval, depth, fmt, exif, icc, mode, orientation, **extras, notes=notes)
        loaded.lossless = fmt == "WEBP" and _webp_is_lossless(data)
        return loaded


def _frame_notes(im: Image.Image, name: str) -> list[str]:
    """The note for a file of several pages or frames (only the first is read), or ImageReadError where the
    first page is a TIFF's reduced-size preview of a picture that follows (NewSubfileType bit 0)."""
    frames = getattr(im, "n_frames", 1) if im.format != "MPO" else 1  # (an MPO's second picture is a preview)
    if frames <= 1:
        return []
    if im.format == "TIFF" and int(im.tag_v2.get(254, 0) or 0) & 1:
        raise ImageReadError(f"Cannot read {name}: its first page is a reduced-size preview ({im.width} x "
                             f"{im.height}) of the picture in a later page; save that picture as a file of its own.")
    kind = "pages" if im.format == "TIFF" else "frames (an animation)"
    return [f"this file holds {frames} {kind}: only the first is denoised, and the result holds only that one"]


def _webp_is_lossless(data: bytes) -> bool:
    """Whether a WebP file's picture is stored losslessly (a ``VP8L`` chunk before any ``VP8 `` one)."""
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return False
    at = 12
    while at + 8 <= len(data):
        fourcc, size = data[at:at + 4], int.from_bytes(data[at + 4:at + 8], "little")
        if fourcc in (b"VP8L", b"VP8 "):
            return fourcc == b"VP8L"
        at += 8 + size + (size & 1)
    return False
