"""A synthetic camera raw path, for checking the app on noise we have no real photos of.

:func:`raw_pipeline` takes a clean sRGB photo to linear light, samples it through an RGGB colour-filter
mosaic, adds Poisson-Gaussian sensor noise, demosaics it with OpenCV and returns 8-bit sRGB, as a raw
converter's lossless (PNG/TIFF) export would; :func:`jpeg` re-encodes it like a camera's JPEG.
Used by ``benchmarks/raw_pipeline.py`` and the tests (a known limit, README). The simulation itself is
:mod:`desktop_denoiser.core.camera_sim`, which also makes the camera-noise training samples.
"""

from __future__ import annotations

import numpy as np

from ..core import camera_sim
from ..core.camera_sim import DEMOSAIC, jpeg

__all__ = ["DEMOSAIC", "jpeg", "raw_pipeline"]


def raw_pipeline(clean: np.ndarray, gain: float, seed: int, demosaic: str = "bilinear",
                 noise: bool = True) -> np.ndarray:
    """:func:`desktop_denoiser.core.camera_sim.raw_pipeline` (``demosaic``: a key of DEMOSAIC)."""
    return camera_sim.raw_pipeline(clean, gain, seed, demosaic, noise)
