"""numpy <-> QImage. Every QImage returned here owns its pixels (safe to keep and to pass between threads)."""

from __future__ import annotations

import cv2
import numpy as np
from PySide6.QtGui import QImage


def to_uint8(pixels: np.ndarray) -> np.ndarray:
    """float [0, 1] (or uint8/uint16) HxW / HxWx1 / HxWx3 / HxWx4 -> contiguous uint8 HxWxC (C = 1, 3 or 4)."""
    a = np.asarray(pixels)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected an HxW, HxWx1, HxWx3 or HxWx4 image, got shape {a.shape}")
    if a.dtype == np.uint8:
        out = a
    elif a.dtype == np.uint16:
        out = (a.astype(np.uint32) * 255 + 32767) // 65535
    else:  # OpenCV scales and rounds ~5x faster than numpy (24 MP: 0.08 s vs 0.44 s)
        f = np.clip(a.astype(np.float32, copy=False), 0.0, 1.0)  # a copy; NaN stays NaN ...
        np.nan_to_num(f, copy=False)  # ... and becomes 0 here
        out = cv2.convertScaleAbs(f.reshape(f.shape[0], -1), alpha=255.0).reshape(f.shape)
    return np.ascontiguousarray(out, dtype=np.uint8)


_FORMATS = {1: QImage.Format.Format_Grayscale8, 3: QImage.Format.Format_RGB888, 4: QImage.Format.Format_RGBA8888}


def _qimage_layout(pixels: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """The uint8 HxWxC array behind array_to_qimage (C = 1 grey, 3 RGB, 4 RGBA with ``alpha``)."""
    a = to_uint8(pixels)
    if alpha is not None and a.shape[2] in (1, 3):
        rgb = np.repeat(a, 3, axis=2) if a.shape[2] == 1 else a
        a = np.ascontiguousarray(np.concatenate([rgb, to_uint8(alpha)[:, :, :1]], axis=2))
    return a


def array_to_qimage(pixels: np.ndarray, alpha: np.ndarray | None = None) -> QImage:
    """An image array -> an owned QImage (Grayscale8, RGB888 or RGBA8888)."""
    a = _qimage_layout(pixels, alpha)
    h, w, c = a.shape
    img = QImage(a.data, w, h, int(a.strides[0]), _FORMATS[c])
    return img.copy()  # detach from the numpy buffer


def with_region(image: QImage, pixels: np.ndarray, x0: int, y0: int, alpha: np.ndarray | None = None) -> QImage:
    """An owned copy of ``image`` (from array_to_qimage, with or without ``alpha`` as it was made) with the
    part at (x0, y0) replaced by ``pixels`` (and ``alpha``, that part's alpha): what array_to_qimage of the
    whole would give, at the cost of the part (a preview's result on a 24 MP photo: 0.3 s less)."""
    part = _qimage_layout(pixels, alpha)
    h, w, c = part.shape
    if _FORMATS[c] != image.format():
        raise ValueError(f"a {c}-channel part does not fit a {image.format()} image")
    if x0 < 0 or y0 < 0 or x0 + w > image.width() or y0 + h > image.height():
        raise ValueError("the part lies outside the image")
    out = image.copy()
    bpl = out.bytesPerLine()
    buf = np.frombuffer(out.bits(), dtype=np.uint8, count=bpl * out.height()).reshape(out.height(), bpl)
    buf[y0:y0 + h, x0 * c:(x0 + w) * c] = part.reshape(h, w * c)
    return out


def qimage_to_array(image: QImage) -> np.ndarray:
    """A QImage -> an owned uint8 HxWx3 RGB array."""
    img = image.convertToFormat(QImage.Format.Format_RGB888)
    w, h, bpl = img.width(), img.height(), img.bytesPerLine()
    buf = np.frombuffer(img.constBits(), dtype=np.uint8, count=bpl * h).reshape(h, bpl)
    return buf[:, : w * 3].reshape(h, w, 3).copy()
