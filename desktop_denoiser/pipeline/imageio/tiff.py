"""TIFF specifics: the built-in baseline TIFF writer (Deflate, predictor, ICC and EXIF tags) and the
readers' checks of a TIFF's tag directory (orientation, layouts OpenCV decodes wrongly)."""

from __future__ import annotations

import struct
import zlib
from typing import Any

import numpy as np
from PIL import Image, TiffImagePlugin, TiffTags

from .common import _EXIF_IFD, _EXIF_IFD0_TAGS, _GPS_IFD, _ICC_TAG, _INTEROP_IFD, _ORIENTATION


_XMP_TAG = 700
_PLANAR = 284  # PlanarConfiguration: 1 = the channels of a pixel together, 2 = each channel its own plane


def _is_planar(tags: Any) -> bool:
    try:
        return int(tags.get(_PLANAR, 1)) == 2 and int(tags.get(277, 1)) > 1
    except (TypeError, ValueError):
        return False


def _cv2_tiff_ok(arr: np.ndarray, tags: Any) -> bool:
    """OpenCV silently reduces some TIFFs (e.g. 16-bit gray + alpha) to 8-bit gray, and decodes 16-bit and
    float colour stored as separate planes as if the channels were interleaved (a scrambled picture)."""
    if _is_planar(tags):
        return False
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
        planes = " stored as separate planes" if _is_planar(tags) else ""
        return f"{max(bits)}-bit {kind}{extra}, {spp} channels{planes}"
    except Exception:
        return "unusual layout"


def _tiff_hint(tags: Any) -> str:
    """How to save a TIFF the readers refuse so that it opens ("" where there is nothing to say)."""
    if _is_planar(tags):
        return (" Save it again with interleaved channels (in Photoshop: Pixel Order Interleaved) and it will "
                "open.")
    return ""


def _tiff_orientation(tags: Any) -> int:
    try:
        value = int(tags.get(_ORIENTATION, 1)) if hasattr(tags, "get") else 1
    except (TypeError, ValueError):
        return 1
    return value if 1 <= value <= 8 else 1


def _encode_tiff(a: np.ndarray, gray: bool, has_alpha: bool, exif: bytes | None, icc: bytes | None,
                 xmp: bytes | None = None, dpi: tuple[float, float] | None = None) -> bytes:
    """Baseline little-endian TIFF, Deflate-compressed, chunky samples.

    ``a`` is HxWxC uint8 / uint16 / float32 (C = 1, 2, 3 or 4). ``dpi`` replaces a resolution in ``exif``.
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
    if xmp:
        ifd.tagtype[_XMP_TAG] = TiffTags.BYTE
        ifd[_XMP_TAG] = bytes(xmp)
    if dpi:  # (over the EXIF's own: the reader turned it with the picture)
        ifd[282], ifd[283], ifd[296] = float(dpi[0]), float(dpi[1]), 2  # pixels per inch
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
