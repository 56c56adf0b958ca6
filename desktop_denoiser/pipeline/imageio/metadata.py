"""EXIF, ICC, XMP and resolution: orientation (read, apply, reset to 1), EXIF from a TIFF's own tags, and
the PNG chunks (``iCCP``, ``eXIf``, ``iTXt`` XMP, ``pHYs``) that carry them in and out of PNG streams."""

from __future__ import annotations

import math
import re
import struct
import zlib
from typing import Any

import numpy as np
from PIL import Image

from .common import _EXIF_IFD, _EXIF_IFD0_TAGS, _EXIF_PREFIX, _GPS_IFD, _INTEROP_IFD, _ORIENTATION


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


def _exif_orientation(exif: bytes | None, default: int = 1) -> int:
    """The EXIF orientation (1-8), or ``default`` where ``exif`` states none (or a value out of range)."""
    if not exif:
        return default
    try:
        ex = Image.Exif()
        ex.load(exif)
        value = int(ex.get(_ORIENTATION, default))
    except Exception:
        return default
    return value if 1 <= value <= 8 else default


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


_XMP_KEYWORD = b"XML:com.adobe.xmp"  # the PNG iTXt keyword that holds an XMP packet
_METRES_PER_INCH = 0.0254
# where an XMP packet states the orientation: as an attribute or as an element
_XMP_ORIENTATION = (re.compile(rb'(tiff:Orientation\s*=\s*["\'])[0-9]+(["\'])'),
                    re.compile(rb"(<tiff:Orientation>\s*)[0-9]+(\s*</tiff:Orientation>)"))


def _xmp_bytes(xmp: Any) -> bytes | None:
    """An XMP packet as the readers find it (bytes, a str, a TIFF tag's 1-tuple of either) as bytes; None
    for anything else (a tag of numbers) or an empty one."""
    if isinstance(xmp, tuple) and len(xmp) == 1:
        xmp = xmp[0]
    if isinstance(xmp, str):
        xmp = xmp.encode("utf-8", "surrogateescape")
    return bytes(xmp) if isinstance(xmp, (bytes, bytearray)) and xmp else None


def _xmp_orientation(xmp: Any) -> int | None:
    """The ``tiff:Orientation`` an XMP packet states (1-8), or None."""
    xmp = _xmp_bytes(xmp)
    for pattern in _XMP_ORIENTATION if xmp else ():
        m = pattern.search(xmp)
        if m:
            value = int(re.sub(rb"\D", b"", m.group(0)))
            return value if 1 <= value <= 8 else None
    return None


# a main packet's pointer to an extended-XMP part (a JPEG's second APP1 segment), which is not carried
_XMP_EXTENDED = (re.compile(rb'\s*xmpNote:HasExtendedXMP\s*=\s*(["\'])[^"\']*\1'),
                 re.compile(rb"<xmpNote:HasExtendedXMP>[^<]*</xmpNote:HasExtendedXMP>"))


def _xmp_reset_orientation(xmp: Any) -> bytes | None:
    """``xmp`` as bytes with its ``tiff:Orientation`` (if any) set to 1, as the reader applies it (an editor
    that reads XMP rather than EXIF must not turn the already upright picture again), and without a pointer
    to an extended-XMP part, which is not carried (it would point at nothing)."""
    xmp = _xmp_bytes(xmp)
    for pattern in _XMP_ORIENTATION if xmp else ():
        xmp = pattern.sub(rb"\g<1>1\g<2>", xmp)
    for pattern in _XMP_EXTENDED if xmp else ():
        xmp = pattern.sub(b"", xmp)
    return xmp


def _exif_swap_resolution(exif: bytes) -> bytes:
    """``exif`` with its IFD0 XResolution and YResolution swapped (the picture was turned a quarter), by
    exchanging the two entries' value offsets in place; as it was where it lacks either."""
    b = bytearray(exif)
    base = len(_EXIF_PREFIX) if b.startswith(_EXIF_PREFIX) else 0
    try:
        e = {b"II": "<", b"MM": ">"}[bytes(b[base:base + 2])]
        (ifd0,) = struct.unpack_from(e + "I", b, base + 4)
        (count,) = struct.unpack_from(e + "H", b, base + ifd0)
        at = {}
        for i in range(count):
            entry = base + ifd0 + 2 + 12 * i
            tag, typ, n = struct.unpack_from(e + "HHI", b, entry)
            if tag in (0x011A, 0x011B) and typ == 5 and n == 1:  # one RATIONAL each, stored at an offset
                at[tag] = entry + 8
        if len(at) == 2:
            x, y = at[0x011A], at[0x011B]
            b[x:x + 4], b[y:y + 4] = b[y:y + 4], b[x:x + 4]
    except (KeyError, struct.error):
        pass
    return bytes(b)


# resolutions outside this range (dots per inch) are nonsense, and do not fit some formats' fields (JFIF's
# 16 bits, PNG's 32-bit pixels per metre)
DPI_RANGE = (1.0, 65535.0)


def _clean_dpi(dpi: Any) -> tuple[float, float] | None:
    """A file's stated resolution as two numbers in DPI_RANGE, or None (absent, zero, nonsense)."""
    try:
        x, y = (round(float(v), 4) for v in dpi)
    except (TypeError, ValueError):
        return None
    lo, hi = DPI_RANGE
    if not (math.isfinite(x) and math.isfinite(y) and lo <= x <= hi and lo <= y <= hi):
        return None
    return x, y


def _exif_dpi(exif: bytes | None) -> tuple[float, float] | None:
    """The resolution an EXIF block states (IFD0 XResolution / YResolution in ResolutionUnit), or None."""
    if not exif:
        return None
    try:
        ex = Image.Exif()
        ex.load(exif)
        x, y, unit = ex.get(0x011A), ex.get(0x011B), int(ex.get(0x0128, 2))
        if x is None or y is None or unit not in (2, 3):
            return None
        per_inch = 2.54 if unit == 3 else 1.0
        return _clean_dpi((float(x) * per_inch, float(y) * per_inch))
    except Exception:
        return None


def _png_metadata(data: bytes) -> tuple[bytes | None, bytes | None, bytes | None, tuple[float, float] | None]:
    """Walk PNG chunks for (exif, icc, xmp, dpi) without decoding pixels."""
    exif = icc = xmp = dpi = None
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
            elif ctype == b"iTXt" and xmp is None and body.startswith(_XMP_KEYWORD + b"\x00"):
                compressed = body[len(_XMP_KEYWORD) + 1] == 1
                rest = body[len(_XMP_KEYWORD) + 3:]
                rest = rest[rest.index(b"\x00") + 1:]  # language tag
                text = rest[rest.index(b"\x00") + 1:]  # translated keyword
                xmp = zlib.decompress(text) if compressed else bytes(text)
            elif ctype in (b"tEXt", b"zTXt") and xmp is None and body.startswith(_XMP_KEYWORD + b"\x00"):
                text = body[len(_XMP_KEYWORD) + 1:]  # (other programs' way: Latin-1 text, zTXt compressed)
                xmp = zlib.decompress(text[1:]) if ctype == b"zTXt" else bytes(text)
            elif ctype == b"pHYs" and length == 9 and dpi is None:
                x, y, unit = struct.unpack(">IIB", body)
                if unit == 1:
                    dpi = _clean_dpi((x * _METRES_PER_INCH, y * _METRES_PER_INCH))
            elif ctype == b"IEND":
                break
            pos += 12 + length
    except (struct.error, zlib.error, ValueError, IndexError):
        pass
    return _normalise_exif(exif), icc or None, xmp or None, dpi


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


def _png_chunk(ctype: bytes, body: bytes) -> bytes:
    return (
        struct.pack(">I", len(body))
        + ctype
        + body
        + struct.pack(">I", zlib.crc32(ctype + body) & 0xFFFFFFFF)
    )


def _png_add_metadata(png: bytes, exif: bytes | None, icc: bytes | None, xmp: bytes | None = None,
                      dpi: tuple[float, float] | None = None) -> bytes:
    """Insert iCCP / pHYs / eXIf / iTXt (XMP) chunks right after IHDR of an encoded PNG (which has none)."""
    chunks = []
    if icc:
        chunks.append(_png_chunk(b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(icc)))
    if dpi:
        per_metre = [int(round(v / _METRES_PER_INCH)) for v in dpi]
        chunks.append(_png_chunk(b"pHYs", struct.pack(">IIB", *per_metre, 1)))
    if exif:
        raw = exif[len(_EXIF_PREFIX) :] if exif.startswith(_EXIF_PREFIX) else exif
        chunks.append(_png_chunk(b"eXIf", raw))
    if xmp:  # uncompressed, no language: how Adobe's tools write it
        chunks.append(_png_chunk(b"iTXt", _XMP_KEYWORD + b"\x00\x00\x00\x00\x00" + bytes(xmp)))
    if not chunks:
        return png
    (ihdr_len,) = struct.unpack_from(">I", png, 8)
    end = 8 + 12 + ihdr_len
    return png[:end] + b"".join(chunks) + png[end:]


def _matching_icc(icc: bytes | None, gray: bool) -> bytes | None:
    """Drop a profile whose colour space does not fit the output pixels."""
    if icc and _icc_colour_space(icc) == (b"GRAY" if gray else b"RGB "):
        return icc
    return None
