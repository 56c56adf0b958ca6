"""Image quality metrics on float images in [0, 1] (HxW or HxWxC)."""

from __future__ import annotations

import cv2
import numpy as np

# ITU-R BT.601 luma (JPEG's Y): the grey training samples (core/training.py), the luminance-plane noise
# estimate (core/noise_analysis.py) and the benchmarks' grey photos (bench/common.py: grey_photo)
LUMA_WEIGHTS = (0.299, 0.587, 0.114)
# BT.601 RGB -> (Y, Cb, Cr), JPEG's: Y is LUMA_WEIGHTS; the camera simulations' chroma noise reduction
# (core/camera_sim.py, bench/camera.py) and the chroma-subsampling reading (core/noise_analysis.py)
YCC_BT601 = (LUMA_WEIGHTS, (-0.168736, -0.331264, 0.5), (0.5, -0.418688, -0.081312))


def psnr(a: np.ndarray, b: np.ndarray, data_range: float = 1.0) -> float:
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    if mse == 0:
        return float("inf")
    return 10.0 * np.log10(data_range**2 / mse)


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 1.0) -> float:
    """Mean SSIM (Wang et al. 2004, 11x11 Gaussian window, sigma 1.5), averaged over channels."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.ndim == 2:
        a, b = a[..., None], b[..., None]
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    vals = []
    for ch in range(a.shape[2]):
        x, y = a[..., ch], b[..., ch]
        blur = lambda z: cv2.GaussianBlur(z, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)
        mx, my = blur(x), blur(y)
        sxx, syy, sxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
        m = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
        vals.append(m[5:-5, 5:-5].mean() if min(x.shape) > 10 else m.mean())
    return float(np.mean(vals))


def add_gaussian_noise_8bit(clean: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    """What users really have: clean [0,1] image + N(0, sigma/255) noise, clipped and rounded to 8 bits."""
    rng = np.random.default_rng(seed)
    noisy = clean.astype(np.float64) * 255.0 + rng.normal(0.0, sigma, clean.shape)
    return (np.clip(np.round(noisy), 0, 255) / 255.0).astype(np.float32)
