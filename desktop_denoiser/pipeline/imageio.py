"""Qt-free image reading and writing for photographers' files.

Reads JPEG, PNG (8/16-bit), TIFF (8/16-bit, 32-bit float), WebP and BMP into
float32 arrays in [0, 1] with the EXIF orientation applied, and writes them
back keeping bit depth, alpha, EXIF and the ICC profile where the format
allows it.

Implementation notes
--------------------
* Pillow is used for everything it handles well. 16-bit colour PNG/TIFF (and
  float colour TIFF) are decoded with OpenCV (``np.fromfile``-style
  ``cv2.imdecode``, so non-ASCII paths work), because Pillow reduces them to
  8 bits.
* 16-bit PNG is encoded with ``cv2.imencode``; the ICC profile (``iCCP``
  chunk) and EXIF (``eXIf`` chunk) are then spliced into the PNG stream, so
  metadata survives for 16-bit PNG as well.
* All TIFF output (8, 16 and 32-bit float) goes through a small built-in
  baseline TIFF writer (Deflate compression, horizontal predictor for integer
  data) that stores the ICC profile and the EXIF tags (IFD0 tags such as
  Make/Model plus the Exif and GPS sub-IFDs). Other TIFF-only tags of the
  input (XMP, IPTC, Photoshop data, resolution...) are not carried over.
* 16/32-bit grayscale with alpha is written as RGBA (PNG and TIFF), since
  OpenCV cannot write or read it; BMP and JPEG output drop alpha.
* XMP metadata is not carried for any format.
* On import, Pillow's ``Image.MAX_IMAGE_PIXELS`` is raised to ``MAX_PIXELS``
  if it is lower, so images up to our own limit open without a warning;
  larger ones raise :class:`ImageReadError`.
"""

from __future__ import annotations

import io
import os
import stat
import struct
import tempfile
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import cv2
import numpy as np
from PIL import Image, TiffImagePlugin, TiffTags, UnidentifiedImageError

__all__ = [
    "ImageReadError",
    "ImageWriteError",
    "LoadedImage",
    "MAX_PIXELS",
    "SUPPORTED_SUFFIXES",
    "read_image",
    "write_image",
    "output_path_for",
    "list_images",
]

MAX_PIXELS = 400_000_000
SUPPORTED_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp")

if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < MAX_PIXELS:
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS

_SUFFIX_FORMATS = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".png": "PNG",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".webp": "WEBP",
    ".bmp": "BMP",
}
_FORMAT_ALIASES = {"JPG": "JPEG", "TIF": "TIFF"}
_FORMAT_DEPTHS = {
    "JPEG": (8,),
    "WEBP": (8,),
    "BMP": (8,),
    "PNG": (8, 16),
    "TIFF": (8, 16, 32),
}

_ORIENTATION = 0x0112
_EXIF_IFD = 0x8769
_GPS_IFD = 0x8825
_INTEROP_IFD = 0xA005
_ICC_TAG = 34675
# IFD0 tags that are EXIF metadata (not TIFF image structure). Used both to
# pick the EXIF out of a TIFF's tags and to put EXIF into a TIFF we write.
_EXIF_IFD0_TAGS = frozenset(
    {
        0x010D,  # DocumentName
        0x010E,  # ImageDescription
        0x010F,  # Make
        0x0110,  # Model
        0x0112,  # Orientation
        0x011A,  # XResolution
        0x011B,  # YResolution
        0x0128,  # ResolutionUnit
        0x0131,  # Software
        0x0132,  # DateTime
        0x013B,  # Artist
        0x013C,  # HostComputer
        0x8298,  # Copyright
        0xC4A5,  # PrintImageMatching
    }
)
_EXIF_PREFIX = b"Exif\x00\x00"


class ImageReadError(Exception):
    """An image file could not be read. The message names the file."""


class ImageWriteError(Exception):
    """An image file could not be written. The message names the file."""


@dataclass
class LoadedImage:
    """A decoded image plus what is needed to write it back faithfully.

    ``pixels`` is float32 HxWx3 (RGB) or HxWx1 (grayscale) in [0, 1] with the
    EXIF orientation already applied; ``alpha`` is float32 HxW or None.
    ``exif`` (if any) starts with ``b"Exif\\0\\0"`` and has Orientation = 1.
    ``mode`` is the source's mode as Pillow names it; 16-bit colour images
    read through OpenCV get a ``";16"`` suffix (e.g. ``"RGB;16"``) and float
    colour TIFFs ``";F32"``.
    """

    pixels: np.ndarray
    alpha: np.ndarray | None
    bit_depth: int
    format: str
    path: Path | None
    exif: bytes | None
    icc_profile: bytes | None
    mode: str

    @property
    def is_gray(self) -> bool:
        return self.pixels.ndim == 3 and self.pixels.shape[2] == 1

    @property
    def size(self) -> tuple[int, int]:
        return int(self.pixels.shape[1]), int(self.pixels.shape[0])


# --------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------


def _icc_colour_space(icc: bytes | None) -> bytes | None:
    if not icc or len(icc) < 20:
        return None
    return bytes(icc[16:20])


def _normalise_exif(exif: bytes | None) -> bytes | None:
    if not exif:
        return None
    exif = bytes(exif)
    if exif.startswith(_EXIF_PREFIX):
        return exif
    if exif[:4] in (b"II*\x00", b"MM\x00*"):
        return _EXIF_PREFIX + exif
    return exif


def _exif_orientation(exif: bytes | None) -> int:
    if not exif:
        return 1
    try:
        ex = Image.Exif()
        ex.load(exif)
        value = int(ex.get(_ORIENTATION, 1))
    except Exception:
        return 1
    return value if 1 <= value <= 8 else 1


def _exif_reset_orientation(exif: bytes) -> bytes:
    """Return ``exif`` with the IFD0 Orientation tag set to 1.

    Patches the value in place so every other byte (maker notes, thumbnail)
    stays as it was; falls back to re-serialising through Pillow.
    """
    b = bytearray(exif)
    base = len(_EXIF_PREFIX) if b.startswith(_EXIF_PREFIX) else 0
    try:
        order = bytes(b[base : base + 2])
        e = {b"II": "<", b"MM": ">"}[order]
        (ifd0,) = struct.unpack_from(e + "I", b, base + 4)
        (count,) = struct.unpack_from(e + "H", b, base + ifd0)
        for i in range(count):
            entry = base + ifd0 + 2 + 12 * i
            tag, typ, n = struct.unpack_from(e + "HHI", b, entry)
            if tag == _ORIENTATION:
                if typ == 3 and n == 1:  # SHORT, stored inline
                    struct.pack_into(e + "H", b, entry + 8, 1)
                    return bytes(b)
                break
        else:
            return bytes(b)  # no orientation tag at all
    except (KeyError, struct.error):
        pass
    ex = Image.Exif()
    ex.load(exif)
    ex[_ORIENTATION] = 1
    return ex.tobytes()


def _apply_orientation(a: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (same result as PIL.ImageOps.exif_transpose)."""
    if orientation == 2:
        a = a[:, ::-1]
    elif orientation == 3:
        a = a[::-1, ::-1]
    elif orientation == 4:
        a = a[::-1]
    elif orientation == 5:
        a = a.swapaxes(0, 1)
    elif orientation == 6:
        a = np.rot90(a, -1)
    elif orientation == 7:
        a = np.rot90(a, 2).swapaxes(0, 1)
    elif orientation == 8:
        a = np.rot90(a, 1)
    else:
        return a
    return np.ascontiguousarray(a)


def _to_unit_float(a: np.ndarray, maxval: float | None) -> np.ndarray:
    if maxval is None:  # float data
        out = np.nan_to_num(a.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
        return np.clip(out, 0.0, 1.0, out=out)
    out = a.astype(np.float32)
    out /= np.float32(maxval)  # exact k / maxval, same as np.float32(k / maxval)
    return out


def _depth_info(dtype: np.dtype) -> tuple[int, float | None]:
    if dtype == np.uint8:
        return 8, 255.0
    if dtype == np.uint16:
        return 16, 65535.0
    if dtype.kind == "f":
        return 32, None
    raise ValueError(f"unsupported sample type {dtype}")


# --------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------


def _name(path: Path) -> str:
    return f"'{path.name}'" if path.name else f"'{path}'"


def _read_bytes(path: Path) -> bytes:
    where = f"{_name(path)} (in {path.parent})"
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ImageReadError(f"Cannot open {where}: the file does not exist.") from None
    except PermissionError:
        raise ImageReadError(f"Cannot open {where}: permission denied.") from None
    except OSError as exc:
        raise ImageReadError(f"Cannot open {where}: {exc.strerror or exc}.") from None
    if stat.S_ISDIR(st.st_mode):
        raise ImageReadError(f"Cannot open {where}: it is a folder, not an image file.")
    if st.st_size == 0:
        raise ImageReadError(f"Cannot open {where}: the file is empty (0 bytes).")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except PermissionError:
        raise ImageReadError(f"Cannot open {where}: permission denied.") from None
    except MemoryError:
        raise ImageReadError(f"Cannot open {where}: not enough memory to read it.") from None
    except OSError as exc:
        raise ImageReadError(f"Cannot read {where}: {exc.strerror or exc}.") from None
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


def _png_metadata(data: bytes) -> tuple[bytes | None, bytes | None]:
    """Walk PNG chunks for (exif, icc) without decoding pixels."""
    exif = icc = None
    pos = 8
    try:
        while pos + 8 <= len(data):
            length, ctype = struct.unpack_from(">I4s", data, pos)
            body = data[pos + 8 : pos + 8 + length]
            if ctype == b"iCCP" and icc is None:
                sep = body.find(b"\x00")
                if sep >= 0:
                    icc = zlib.decompress(body[sep + 2 :])
            elif ctype == b"eXIf" and exif is None:
                exif = bytes(body)
            elif ctype == b"IEND":
                break
            pos += 12 + length
    except (struct.error, zlib.error):
        pass
    return _normalise_exif(exif), icc or None


def _tiff_exif(tags: Any, had_orientation: bool = False) -> bytes | None:
    """EXIF blob from a TIFF's own tag directory (EXIF-ish tags only).

    ``tags`` is a Pillow ``Image.Exif`` of a TIFF or a plain dict whose
    Exif/GPS entries are already dicts. The orientation is always written as
    1 (when the file had one), because the reader applies it.
    """
    try:
        ex = Image.Exif()
        for tag in _EXIF_IFD0_TAGS:
            if tag in tags:
                ex[tag] = tags[tag]
        if had_orientation or _ORIENTATION in ex:
            ex[_ORIENTATION] = 1
        for sub in (_EXIF_IFD, _GPS_IFD):
            if sub not in tags:
                continue
            value = tags[sub]
            if not isinstance(value, dict):
                value = tags.get_ifd(sub) if hasattr(tags, "get_ifd") else {}
            value = {k: v for k, v in value.items() if k != _INTEROP_IFD and not isinstance(v, dict)}
            if value:
                ex[sub] = value
        if len(ex) == 0:
            return None
        return _normalise_exif(ex.tobytes())
    except Exception:
        return None


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
    if arr is None or (hasattr(tags, "get") and not _cv2_tiff_ok(arr, tags)):
        raise ImageReadError(
            f"Cannot read {_name(path)}: it is a TIFF variant this program does not support "
            f"({_tiff_description(tags)}), or the file is damaged."
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
    orientation = _tiff_orientation(tags)
    if _cv2_applies_orientation("TIFF"):
        orientation = 1
    return _finish(path, px, alpha, maxval, depth, "TIFF", exif, icc, mode, orientation)


def _cv2_tiff_ok(arr: np.ndarray, tags: Any) -> bool:
    """OpenCV silently reduces some TIFFs (e.g. 16-bit gray + alpha) to 8-bit gray."""
    try:
        bits = tags.get(258, (8,))
        bits = bits if isinstance(bits, tuple) else (bits,)
        spp = int(tags.get(277, len(bits)))
    except (TypeError, ValueError):
        return True
    channels = 1 if arr.ndim == 2 else arr.shape[2]
    return arr.dtype.itemsize * 8 >= max(bits, default=8) and channels == spp


def _tiff_description(tags: Any) -> str:
    try:
        bits = tags.get(258, (8,))
        bits = bits if isinstance(bits, tuple) else (bits,)
        spp = int(tags.get(277, len(bits)))
        kind = {0: "grayscale", 1: "grayscale", 2: "RGB", 5: "CMYK"}.get(tags.get(262), "colour")
        extra = " with transparency" if tags.get(338) else ""
        return f"{max(bits)}-bit {kind}{extra}, {spp} channels"
    except Exception:
        return "unusual layout"


def _tiff_orientation(tags: Any) -> int:
    try:
        value = int(tags.get(_ORIENTATION, 1)) if hasattr(tags, "get") else 1
    except (TypeError, ValueError):
        return 1
    return value if 1 <= value <= 8 else 1


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
) -> LoadedImage:
    """Apply ``orientation`` (default: the one in ``exif``) and build the result."""
    exif = _normalise_exif(exif)
    if orientation is None:
        orientation = _exif_orientation(exif)
    if orientation != 1:
        px = _apply_orientation(px, orientation)
        if alpha is not None:
            alpha = _apply_orientation(alpha, orientation)
    if exif is not None:
        try:
            exif = _exif_reset_orientation(exif)
        except Exception:
            exif = None
    pixels = _to_unit_float(np.ascontiguousarray(px), maxval)
    alpha_f = None
    if alpha is not None:
        alpha_f = _to_unit_float(np.ascontiguousarray(alpha), maxval)
    return LoadedImage(
        pixels=pixels,
        alpha=alpha_f,
        bit_depth=depth,
        format=fmt,
        path=path,
        exif=exif,
        icc_profile=bytes(icc) if icc else None,
        mode=mode,
    )


_I16_MODES = ("I;16", "I;16L", "I;16B", "I;16N")


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
        a = np.asarray(im)
        return a.astype(np.uint16, copy=False)[:, :, None], None, 65535.0, 16, icc
    if mode == "I":
        a = np.clip(np.asarray(im), 0, 65535).astype(np.uint16)
        return a[:, :, None], None, 65535.0, 16, icc
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
    elif mode not in ("L", "LA", "RGB", "RGBA"):
        im = im.convert("RGBA" if "A" in mode else "RGB")
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

        if _needs_cv2(im):
            orientation = None
            if fmt == "PNG":
                exif, icc = _png_metadata(data)
                if _cv2_applies_orientation("PNG"):
                    orientation = 1
            else:
                orientation = _tiff_orientation(im.tag_v2)
                exif = _tiff_exif(im.getexif(), orientation != 1)
                icc = im.info.get("icc_profile")
                if _cv2_applies_orientation("TIFF"):
                    orientation = 1
            arr = _cv2_decode(data)
            # (OpenCV may already have rotated a TIFF, hence the sorted sizes)
            if arr is None or sorted(arr.shape[:2]) != sorted((im.height, im.width)):
                raise ImageReadError(damaged)
            if fmt == "TIFF" and not _cv2_tiff_ok(arr, im.tag_v2):
                raise ImageReadError(
                    f"Cannot read {name}: this kind of TIFF is not supported "
                    f"({_tiff_description(im.tag_v2)})."
                )
            if fmt == "PNG" and arr.dtype != np.uint16:
                raise ImageReadError(damaged)
            gray = im.mode in ("L", "LA", "I", "F") or im.mode in _I16_MODES
            px, alpha = _split_cv2(arr, gray)
            depth, maxval = _depth_info(arr.dtype)
            suffix = {16: ";16", 32: ";F32"}.get(depth, "")
            return _finish(
                path, px, alpha, maxval, depth, fmt, exif, icc, im.mode + suffix, orientation
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
        except Exception as exc:
            raise ImageReadError(
                f"Cannot read {name}: its colour mode ({mode}) is not supported ({exc})."
            ) from None
        if icc and _icc_colour_space(icc) == b"CMYK":
            icc = None
        return _finish(path, px, alpha, maxval, depth, fmt, exif, icc, mode, orientation)


# --------------------------------------------------------------------------
# encoding
# --------------------------------------------------------------------------


def _png_chunk(ctype: bytes, body: bytes) -> bytes:
    return (
        struct.pack(">I", len(body))
        + ctype
        + body
        + struct.pack(">I", zlib.crc32(ctype + body) & 0xFFFFFFFF)
    )


def _png_add_metadata(png: bytes, exif: bytes | None, icc: bytes | None) -> bytes:
    """Insert iCCP / eXIf chunks right after IHDR of an encoded PNG."""
    chunks = []
    if icc:
        chunks.append(_png_chunk(b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(icc)))
    if exif:
        raw = exif[len(_EXIF_PREFIX) :] if exif.startswith(_EXIF_PREFIX) else exif
        chunks.append(_png_chunk(b"eXIf", raw))
    if not chunks:
        return png
    (ihdr_len,) = struct.unpack_from(">I", png, 8)
    end = 8 + 12 + ihdr_len
    return png[:end] + b"".join(chunks) + png[end:]


def _encode_tiff(a: np.ndarray, gray: bool, has_alpha: bool, exif: bytes | None, icc: bytes | None) -> bytes:
    """Baseline little-endian TIFF, Deflate-compressed, chunky samples.

    ``a`` is HxWxC uint8 / uint16 / float32 (C = 1, 2, 3 or 4).
    """
    h, w, c = a.shape
    a = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<"))
    is_float = a.dtype.kind == "f"
    bits = a.dtype.itemsize * 8
    predictor = 1 if is_float else 2
    row_bytes = w * c * a.dtype.itemsize
    rows_per_strip = max(1, min(h, (256 * 1024) // max(1, row_bytes)))
    strips = []
    for y0 in range(0, h, rows_per_strip):
        block = a[y0 : y0 + rows_per_strip]
        if predictor == 2:
            diff = block.copy()
            diff[:, 1:] -= block[:, :-1]  # wraps modulo 2**bits, as TIFF expects
            block = diff
        strips.append(zlib.compress(block.tobytes(), 6))

    ifd = TiffImagePlugin.ImageFileDirectory_v2(prefix=b"II")
    if exif:
        ex = Image.Exif()
        ex.load(exif)
        for tag in list(ex.keys()):
            if tag in (_EXIF_IFD, _GPS_IFD):
                sub = {
                    k: v
                    for k, v in ex.get_ifd(tag).items()
                    if k != _INTEROP_IFD and not isinstance(v, dict)
                }
                if sub:
                    ifd[tag] = sub
            elif tag in _EXIF_IFD0_TAGS:
                ifd[tag] = ex[tag]
    ifd[256] = w
    ifd[257] = h
    ifd[258] = (bits,) * c
    ifd[259] = 8  # Adobe Deflate
    ifd[262] = 1 if gray else 2
    ifd[277] = c
    ifd[278] = rows_per_strip
    ifd[284] = 1
    if predictor == 2:
        ifd[317] = 2
    if has_alpha:
        ifd[338] = (2,)  # unassociated alpha
    if is_float:
        ifd[339] = (3,) * c
    if icc:
        ifd.tagtype[_ICC_TAG] = TiffTags.UNDEFINED
        ifd[_ICC_TAG] = bytes(icc)
    offsets, pos = [], 0
    for s in strips:
        offsets.append(pos)
        pos += len(s)
    ifd.tagtype[273] = TiffTags.LONG
    ifd.tagtype[279] = TiffTags.LONG
    ifd[273] = tuple(offsets)  # relative: the IFD writer adds its own end offset
    ifd[279] = tuple(len(s) for s in strips)
    header = b"II*\x00" + struct.pack("<I", 8)
    return header + ifd.tobytes(8) + b"".join(strips)


def _matching_icc(icc: bytes | None, gray: bool) -> bytes | None:
    """Drop a profile whose colour space does not fit the output pixels."""
    if icc and _icc_colour_space(icc) == (b"GRAY" if gray else b"RGB "):
        return icc
    return None


def _quantise(a: np.ndarray, depth: int) -> np.ndarray:
    """[0, 1] floats -> the file's samples: +inf -> 1, -inf and NaN -> 0, rounded to the nearest level.
    Integer depths are converted in blocks of rows, so no full-size float copy is made (a 50 MP photo:
    600 MB saved while it is written)."""
    if depth == 32:
        out = np.clip(a, 0.0, 1.0).astype(np.float32, copy=False)
        return np.nan_to_num(out, copy=False, nan=0.0)
    out = np.empty(a.shape, np.uint8 if depth == 8 else np.uint16)
    scale = 255.0 if depth == 8 else 65535.0
    rows = max(1, (1 << 22) // max(1, a[0].size))  # ~4 M samples per block
    for y in range(0, a.shape[0], rows):
        blk = np.clip(a[y:y + rows], 0.0, 1.0)
        np.nan_to_num(blk, copy=False, nan=0.0)
        blk *= scale
        out[y:y + rows] = np.rint(blk, out=blk)
    return out


def _encode(
    fmt: str,
    px: np.ndarray,
    alpha: np.ndarray | None,
    depth: int,
    quality: int,
    exif: bytes | None,
    icc: bytes | None,
) -> bytes:
    gray = px.shape[2] == 1
    q = _quantise(px, depth)
    qa = _quantise(alpha, depth)[:, :, None] if alpha is not None else None

    if fmt == "TIFF":
        if gray and qa is not None and depth > 8:
            q = np.repeat(q, 3, axis=2)  # 16/32-bit gray+alpha TIFF: few readers cope
            gray = False
        icc = _matching_icc(icc, gray)
        arr = q if qa is None else np.concatenate([q, qa], axis=2)
        return _encode_tiff(arr, gray, qa is not None, exif, icc)

    if fmt == "PNG" and depth == 16:
        if gray and qa is not None:
            q = np.repeat(q, 3, axis=2)  # OpenCV cannot write gray+alpha PNG
            gray = False
        icc = _matching_icc(icc, gray)
        if gray:
            bgr = q[:, :, 0]
        else:
            bgr = q[:, :, ::-1]
            if qa is not None:
                bgr = np.concatenate([bgr, qa], axis=2)
        ok, buf = cv2.imencode(".png", np.ascontiguousarray(bgr), [cv2.IMWRITE_PNG_COMPRESSION, 4])
        if not ok:
            raise ValueError("OpenCV could not encode the 16-bit PNG")
        return _png_add_metadata(buf.tobytes(), exif, icc)

    # 8-bit through Pillow
    if fmt in ("JPEG", "BMP"):
        qa = None  # JPEG has no alpha; Pillow's 32-bit BMP alpha is not read back
    if gray and (fmt == "WEBP" or (fmt == "BMP" and qa is not None)):
        q = np.repeat(q, 3, axis=2)
        gray = False
    if gray:
        arr = q[:, :, 0] if qa is None else np.concatenate([q, qa], axis=2)
    else:
        arr = q if qa is None else np.concatenate([q, qa], axis=2)
    im = Image.fromarray(np.ascontiguousarray(arr))
    icc = _matching_icc(icc, gray)
    kwargs: dict[str, Any] = {}
    if fmt in ("JPEG", "PNG", "WEBP"):
        if icc:
            kwargs["icc_profile"] = icc
        if exif:
            kwargs["exif"] = exif
    if fmt == "JPEG":
        kwargs.update(quality=int(quality), subsampling=0 if quality >= 90 else 2)
    elif fmt == "WEBP":
        # exact: keep the colour under fully transparent pixels (libwebp drops it)
        if quality >= 100:
            kwargs.update(lossless=True, quality=100, exact=True)
        else:
            kwargs.update(quality=int(quality), method=4, exact=True)
    elif fmt == "PNG":
        kwargs.update(compress_level=6)
    buf = io.BytesIO()
    try:
        im.save(buf, format=fmt, **kwargs)
    except ValueError as exc:
        if "exif" in kwargs and "EXIF" in str(exc).upper():
            # e.g. JPEG's 64 KB EXIF limit: keep the picture, drop the EXIF.
            warnings.warn(f"EXIF dropped: {exc}", RuntimeWarning, stacklevel=3)
            kwargs.pop("exif")
            buf = io.BytesIO()
            im.save(buf, format=fmt, **kwargs)
        else:
            raise
    return buf.getvalue()


# --------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------


def _same_file(a: Path, b: Path) -> bool:
    try:
        if os.path.normcase(str(a.resolve())) == os.path.normcase(str(Path(b).resolve())):
            return True
    except OSError:
        pass
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


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
    overwrite: bool = False,
    protect: Iterable[str | os.PathLike[str]] = (),
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
    * ``exif`` / ``icc_profile``: left out -> taken from ``like``; None -> not
      written. Kept for JPEG, PNG (8 and 16-bit), TIFF and WebP; BMP stores
      no metadata. A profile whose colour space does not match the output
      (e.g. an RGB profile on a grayscale JPEG) is dropped.
    * JPEG uses 4:4:4 chroma when ``jpeg_quality >= 90``; WebP uses
      ``jpeg_quality`` as its quality and is lossless at 100.

    The data goes to a hidden temporary file in the same folder that is then
    moved into place; on failure the temporary file is removed. Refuses to
    write onto ``like.path`` or any path in ``protect`` and onto an existing
    file unless ``overwrite=True``. Returns the path written.
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
    exif = _normalise_exif(exif)
    if fmt == "BMP":
        exif = icc_profile = None
    if icc_profile and _icc_colour_space(icc_profile) not in (b"RGB ", b"GRAY"):
        icc_profile = None

    # --- destination checks -------------------------------------------------
    folder = path.parent
    protected = [Path(p) for p in protect]
    if like is not None and like.path is not None:
        protected.append(Path(like.path))
    for p in protected:
        if _same_file(path, p):
            raise ImageWriteError(
                f"Refusing to write {name}: that is an input file and would be overwritten."
            )
    if not folder.exists():
        raise ImageWriteError(f"Cannot write {name}: the folder '{folder}' does not exist.")
    if not folder.is_dir():
        raise ImageWriteError(f"Cannot write {name}: '{folder}' is not a folder.")
    if path.is_dir():
        raise ImageWriteError(f"Cannot write {name}: a folder with that name already exists.")
    if path.exists() and not overwrite:
        raise ImageWriteError(f"Refusing to write {name}: the file already exists in '{folder}'.")
    if not os.access(folder, os.W_OK):
        raise ImageWriteError(
            f"Cannot write {name}: no permission to write into the folder '{folder}' "
            f"(it may be read-only)."
        )

    # --- encode ---------------------------------------------------------------
    try:
        data = _encode(fmt, px, alpha_arr, depth, jpeg_quality, exif, icc_profile)
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
                raise ImageWriteError(
                    f"Refusing to write {name}: the file already exists in '{folder}'."
                ) from None
            except OSError:
                # No hard links on this file system (e.g. FAT, some shares).
                if os.path.lexists(path):
                    raise ImageWriteError(
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
        raise ImageWriteError(f"Cannot write {name}: {exc.strerror or exc}.") from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
    return path


# --------------------------------------------------------------------------
# paths
# --------------------------------------------------------------------------


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


def _is_hidden(p: Path) -> bool:
    if p.name.startswith("."):
        return True
    attrs = getattr(os.stat(p, follow_symlinks=False), "st_file_attributes", 0)
    return bool(attrs & getattr(stat, "FILE_ATTRIBUTE_HIDDEN", 0))


def list_images(folder: str | os.PathLike[str], *, recursive: bool = False) -> list[Path]:
    """Image files in ``folder`` (sorted; hidden files and folders skipped)."""
    root = Path(folder)
    if not root.is_dir():
        raise ImageReadError(f"Cannot list images in '{root}': it is not an existing folder.")
    found: list[Path] = []
    if recursive:
        for dirpath, dirnames, filenames in os.walk(root):
            base = Path(dirpath)
            dirnames[:] = [d for d in dirnames if not _safe_hidden(base / d)]
            for fn in filenames:
                p = base / fn
                if p.suffix.lower() in SUPPORTED_SUFFIXES and not _safe_hidden(p) and p.is_file():
                    found.append(p)
    else:
        try:
            entries = list(root.iterdir())
        except OSError as exc:
            raise ImageReadError(f"Cannot list images in '{root}': {exc.strerror or exc}.") from None
        for p in entries:
            if p.suffix.lower() in SUPPORTED_SUFFIXES and not _safe_hidden(p) and p.is_file():
                found.append(p)
    return sorted(found)


def _safe_hidden(p: Path) -> bool:
    try:
        return _is_hidden(p)
    except OSError:
        return True
