"""Encoding pixels into a format's bytes at a bit depth (quantisation, alpha, metadata per format)."""

from __future__ import annotations

import io
import warnings
from typing import Any

import cv2
import numpy as np
from PIL import Image

from .metadata import _matching_icc, _png_add_metadata
from .tiff import _encode_tiff


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
    xmp: bytes | None = None,
    dpi: tuple[float, float] | None = None,
    notes: list[str] | None = None,
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
        return _encode_tiff(arr, gray, qa is not None, exif, icc, xmp, dpi)

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
        return _png_add_metadata(buf.tobytes(), exif, icc, xmp, dpi)

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
    if fmt in ("JPEG", "WEBP"):  # (an 8-bit PNG gets its metadata as a 16-bit one does, below)
        if icc:
            kwargs["icc_profile"] = icc
        if exif:
            kwargs["exif"] = exif
        if xmp:
            kwargs["xmp"] = xmp  # (JPEG: Pillow >= 11 writes it, older versions leave it out)
    if dpi and fmt in ("JPEG", "BMP"):
        kwargs["dpi"] = dpi
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
    while True:
        buf = io.BytesIO()
        try:
            im.save(buf, format=fmt, **kwargs)
            break
        except ValueError as exc:
            # e.g. JPEG's 64 KB limit on EXIF and on XMP: keep the picture, drop what does not fit
            too_big = [key for key in ("exif", "xmp") if key in kwargs and key.upper() in str(exc).upper()]
            if not too_big:
                raise
            warnings.warn(f"{too_big[0].upper()} dropped: {exc}", RuntimeWarning, stacklevel=3)
            if notes is not None:  # where the user reads what happened to the photo
                notes.append(f"its {too_big[0].upper()} was too big for a {fmt} file and was left out ({exc})")
            kwargs.pop(too_big[0])
    data = buf.getvalue()
    if fmt == "PNG":
        data = _png_add_metadata(data, exif, icc, xmp, dpi)
    return data
