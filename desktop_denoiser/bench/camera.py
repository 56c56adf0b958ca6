"""A synthetic camera raw path, for checking the app on noise we have no real photos of.

:func:`raw_pipeline` takes a clean sRGB photo to linear light, samples it through an RGGB colour-filter
mosaic, adds Poisson-Gaussian sensor noise, demosaics it with OpenCV and returns 8-bit sRGB, as a raw
converter's lossless (PNG/TIFF) export would; :func:`jpeg` re-encodes it like a camera's JPEG.
Used by ``benchmarks/raw_pipeline.py`` and ``tests/test_real_noise.py`` (a known limit, README).
"""

from __future__ import annotations

import cv2
import numpy as np

DEMOSAIC = {"bilinear": cv2.COLOR_BayerBG2RGB, "edge-aware": cv2.COLOR_BayerBG2RGB_EA}


def raw_pipeline(clean: np.ndarray, gain: float, seed: int, demosaic: str = "bilinear",
                 noise: bool = True) -> np.ndarray:
    """``clean`` (float HxWx3 sRGB in [0, 1], even H and W) through the raw path: Poisson noise with
    ``gain`` (linear units per photon) plus read noise of std ``gain``; ``noise=False`` gives the same
    path without noise (the reference the denoised result is compared with). float32, 8-bit values."""
    lin = np.where(clean <= 0.04045, clean / 12.92, ((clean + 0.055) / 1.055) ** 2.4)
    mosaic = np.empty(clean.shape[:2])
    mosaic[0::2, 0::2], mosaic[0::2, 1::2] = lin[0::2, 0::2, 0], lin[0::2, 1::2, 1]
    mosaic[1::2, 0::2], mosaic[1::2, 1::2] = lin[1::2, 0::2, 1], lin[1::2, 1::2, 2]
    if noise:
        rng = np.random.default_rng(seed)
        mosaic = rng.poisson(np.maximum(mosaic, 0) / gain) * gain + rng.standard_normal(mosaic.shape) * gain
    rgb = cv2.cvtColor(np.clip(mosaic * 65535, 0, 65535).astype(np.uint16), DEMOSAIC[demosaic]) / 65535.0
    srgb = np.where(rgb <= 0.0031308, 12.92 * rgb, 1.055 * np.clip(rgb, 0, 1) ** (1 / 2.4) - 0.055)
    return (np.clip(np.round(srgb * 255), 0, 255) / 255).astype(np.float32)


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """``image`` (float RGB in [0, 1]) encoded as a JPEG of ``quality`` (OpenCV: 4:2:0) and decoded."""
    ok, enc = cv2.imencode(".jpg", np.round(image[..., ::-1] * 255).astype(np.uint8),
                           [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return (cv2.imdecode(enc, cv2.IMREAD_COLOR)[..., ::-1] / 255.0).astype(np.float32)
