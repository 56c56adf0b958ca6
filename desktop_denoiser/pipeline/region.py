"""Denoising part of a photo: the area in view, as a quick check of the settings before the whole photo.

A 24 MP photo takes most of a minute on a laptop CPU; the part shown at 100 % in a window is about a
megapixel and takes a second or two. The part is cut out with context around it (the network sees the
photo beyond the part's border, as in a whole-photo run), on a grid that keeps the network's
down-sampling cells and the camera-noise path's pixel-shuffle sub-images where the whole-photo run has
them, so the part comes out as it will in the whole photo (tested). Only its noise level and path come
from the whole photo: the run is planned from the whole photo's analysis (``Denoiser.plan``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.real_noise import PD_STRIDE
from ..core.tiling import ALIGN

# the crop's corner lies on this grid: the U-Net's cells (tiling.ALIGN) in the pixel-shuffled sub-images
GRID = ALIGN * PD_STRIDE
# pixels of photo kept around the part on each side (the tiler's 48-pixel margin, in sub-image pixels)
CONTEXT = 48 * PD_STRIDE
MIN_SIZE = 16  # a smaller part (in either direction) is grown to this around its centre


@dataclass(frozen=True)
class Region:
    """The part to denoise, ``box`` = (x0, y0, x1, y1) in image pixels (end exclusive), and the larger
    ``crop`` that is run, the part plus context, cut on the GRID."""

    box: tuple[int, int, int, int]
    crop: tuple[int, int, int, int]

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the part."""
        x0, y0, x1, y1 = self.box
        return x1 - x0, y1 - y0

    def cut(self, pixels: np.ndarray) -> np.ndarray:
        """The crop of ``pixels`` (HxW[xC]) to run: a view, not a copy."""
        x0, y0, x1, y1 = self.crop
        return pixels[y0:y1, x0:x1]

    def paste(self, original: np.ndarray, denoised_crop: np.ndarray) -> np.ndarray:
        """A copy of ``original`` with the part taken from ``denoised_crop`` (the run's output for
        :meth:`cut`); the rest of the photo is the original."""
        if denoised_crop.shape[:2] != (self.crop[3] - self.crop[1], self.crop[2] - self.crop[0]):
            raise ValueError(f"the denoised crop is {denoised_crop.shape[1]}x{denoised_crop.shape[0]}, "
                             f"not the region's crop")
        x0, y0, x1, y1 = self.box
        cx, cy = self.crop[:2]
        out = np.array(original, dtype=np.result_type(original, denoised_crop), copy=True)
        out[y0:y1, x0:x1] = denoised_crop[y0 - cy:y1 - cy, x0 - cx:x1 - cx]
        return out


def plan_region(image_size: tuple[int, int], box: tuple[float, float, float, float]) -> Region | None:
    """The :class:`Region` for ``box`` = (x0, y0, x1, y1) in image pixels of a photo of ``image_size`` =
    (width, height), clipped to the photo; None when it covers the whole photo (then the whole photo is
    what to run) or lies outside it."""
    w, h = image_size
    x0, y0, x1, y1 = (int(np.floor(box[0])), int(np.floor(box[1])), int(np.ceil(box[2])), int(np.ceil(box[3])))
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if x1 <= x0 or y1 <= y0:
        return None
    x0, x1 = _at_least(x0, x1, w)
    y0, y1 = _at_least(y0, y1, h)
    if (x0, y0, x1, y1) == (0, 0, w, h):
        return None
    cx0 = max(0, x0 - CONTEXT) // GRID * GRID
    cy0 = max(0, y0 - CONTEXT) // GRID * GRID
    crop = (cx0, cy0, min(w, x1 + CONTEXT), min(h, y1 + CONTEXT))
    return Region((x0, y0, x1, y1), crop)


def _at_least(a: int, b: int, length: int) -> tuple[int, int]:
    """[a, b) grown around its centre to MIN_SIZE (or the whole length), inside [0, length)."""
    need = min(MIN_SIZE, length)
    if b - a >= need:
        return a, b
    a = max(0, min((a + b - need) // 2, length - need))
    return a, a + need
