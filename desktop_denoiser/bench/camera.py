"""A synthetic camera raw path, for checking the app on noise we have no real photos of.

:func:`raw_pipeline` takes a clean sRGB photo to linear light, samples it through an RGGB colour-filter
mosaic, adds Poisson-Gaussian sensor noise, demosaics it with OpenCV and returns 8-bit sRGB, as a raw
converter's lossless (PNG/TIFF) export would; :func:`jpeg` re-encodes it like a camera's JPEG.
Used by ``benchmarks/raw_pipeline.py`` and the tests (a known limit, README). The simulation itself is
:mod:`desktop_denoiser.core.camera_sim`, which also makes the camera-noise training samples.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from ..core import camera_sim
from ..core.camera_sim import DEMOSAIC, jpeg
from ..core.metrics import YCC_BT601

__all__ = ["DEMOSAIC", "jpeg", "pil_jpeg", "raw_pipeline", "held_out_camera_pair", "demosaic_mhc"]


def raw_pipeline(clean: np.ndarray, gain: float, seed: int, demosaic: str = "bilinear",
                 noise: bool = True) -> np.ndarray:
    """:func:`desktop_denoiser.core.camera_sim.raw_pipeline` (``demosaic``: a key of DEMOSAIC)."""
    return camera_sim.raw_pipeline(clean, gain, seed, demosaic, noise)


# A camera family the camera network never saw in training (core/camera_sim.py is its training family),
# for measuring how far the camera path carries to other cameras: Rec. 709's tone curve (not sRGB's) with an
# S-curve, a random (not symmetric) colour matrix, Malvar-He-Cutler demosaicing, row noise, median chroma
# noise reduction, a phone-like edge-preserving luminance noise reduction, stronger sharpening, and PIL
# JPEGs at 4:4:4, 4:2:2 or 4:2:0. Evaluation only: nothing in the package trains on it.
HELD_OUT_SHOT_GAIN = (1e-4, 6e-3)

# Malvar, He and Cutler 2004, "High-quality linear interpolation for demosaicing of Bayer-patterned
# color images": 5x5 kernels (/8) for green at red/blue sites, and for red/blue at the other sites.
_G_AT_RB = np.array([[0, 0, -1, 0, 0], [0, 0, 2, 0, 0], [-1, 2, 4, 2, -1], [0, 0, 2, 0, 0], [0, 0, -1, 0, 0]]) / 8
_RB_AT_G_ROW = np.array([[0, 0, .5, 0, 0], [0, -1, 0, -1, 0], [-1, 4, 5, 4, -1], [0, -1, 0, -1, 0], [0, 0, .5, 0, 0]]) / 8
_RB_AT_G_COL = _RB_AT_G_ROW.T
_RB_AT_BR = np.array([[0, 0, -1.5, 0, 0], [0, 2, 0, 2, 0], [-1.5, 0, 6, 0, -1.5], [0, 2, 0, 2, 0], [0, 0, -1.5, 0, 0]]) / 8


def demosaic_mhc(mosaic: np.ndarray) -> np.ndarray:
    """Malvar-He-Cutler demosaicing of an RGGB mosaic (HxW float, even H and W) -> HxWx3."""
    def conv(k):
        return cv2.filter2D(mosaic.astype(np.float64), -1, k, borderType=cv2.BORDER_REFLECT_101)

    g_rb, rb_row, rb_col, rb_br = conv(_G_AT_RB), conv(_RB_AT_G_ROW), conv(_RB_AT_G_COL), conv(_RB_AT_BR)
    h, w = mosaic.shape
    r_site = np.zeros((h, w), bool)
    b_site = np.zeros((h, w), bool)
    g_red_row = np.zeros((h, w), bool)  # green sites in red rows
    g_blue_row = np.zeros((h, w), bool)
    r_site[0::2, 0::2] = b_site[1::2, 1::2] = g_red_row[0::2, 1::2] = g_blue_row[1::2, 0::2] = True
    m = mosaic.astype(np.float64)
    red = np.where(r_site, m, np.where(b_site, rb_br, np.where(g_red_row, rb_row, rb_col)))
    blue = np.where(b_site, m, np.where(r_site, rb_br, np.where(g_blue_row, rb_row, rb_col)))
    green = np.where(r_site | b_site, g_rb, m)
    return np.stack([red, green, blue], axis=-1)


@dataclass(frozen=True)
class HeldOutCamera:
    """One camera of the held-out family (see HELD_OUT_SHOT_GAIN and the note above)."""

    colour_matrix: np.ndarray
    red_gain: float
    blue_gain: float
    shot_gain: float
    read_std: float
    row_std: float  # per-row offset (banding), linear units
    s_curve: float  # 0 = Rec. 709's curve alone
    chroma_median: int  # 0 = none, else the median kernel (3 or 5) on Cb/Cr
    luma_nr: float  # 0 = none, else the bilateral filter's range sigma in noise stds
    sharpen: float
    sharpen_radius: float
    jpeg_quality: int | None
    jpeg_subsampling: int  # PIL: 0 = 4:4:4, 1 = 4:2:2, 2 = 4:2:0


def random_held_out_camera(rng: np.random.Generator) -> HeldOutCamera:
    def log_uniform(lo, hi):
        return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))

    s = rng.uniform(0.2, 1.0)
    cm = (1 + s) * np.eye(3) - s / 3
    off = rng.uniform(-0.15, 0.15, (3, 3))
    cm = cm + off - off.mean(axis=1, keepdims=True)  # rows still sum to 1: white stays white
    shot = log_uniform(*HELD_OUT_SHOT_GAIN)
    read = shot * log_uniform(0.5, 2.5)
    return HeldOutCamera(
        colour_matrix=cm, red_gain=float(rng.uniform(1.5, 2.6)), blue_gain=float(rng.uniform(1.2, 2.3)),
        shot_gain=shot, read_std=read, row_std=read * float(rng.uniform(0.0, 0.5)),
        s_curve=float(rng.uniform(0.0, 0.6)),
        chroma_median=int(rng.choice([0, 3, 5], p=[0.3, 0.35, 0.35])),
        luma_nr=float(rng.uniform(1.0, 3.0)) if rng.random() < 0.4 else 0.0,
        sharpen=float(rng.uniform(0.3, 1.5)) if rng.random() < 0.7 else 0.0,
        sharpen_radius=float(rng.uniform(0.8, 2.0)),
        jpeg_quality=int(rng.integers(80, 97)) if rng.random() < 0.8 else None,
        jpeg_subsampling=int(rng.integers(0, 3)))


def _tone(lin: np.ndarray, s_curve: float) -> np.ndarray:
    lin = np.clip(lin, 0.0, 1.0)
    g = np.where(lin < 0.018, 4.5 * lin, 1.099 * np.maximum(lin, 0.018) ** 0.45 - 0.099)  # Rec. 709's curve
    return (1 - s_curve) * g + s_curve * g * g * (3 - 2 * g)  # blend with smoothstep: an S-curve


def _untone(srgb: np.ndarray, s_curve: float) -> np.ndarray:
    """Inverse of :func:`_tone` (monotonic; by a lookup table)."""
    grid = np.linspace(0.0, 1.0, 4097)
    return np.interp(srgb, _tone(grid, s_curve), grid)


def _held_out_process(mosaic: np.ndarray, cam: HeldOutCamera, noise_std: float) -> np.ndarray:
    rgb = np.clip(demosaic_mhc(np.clip(mosaic, 0.0, 1.0)), 0.0, None)
    rgb = np.clip(rgb * np.array([cam.red_gain, 1.0, cam.blue_gain]), 0.0, 1.0)
    srgb = _tone(rgb @ cam.colour_matrix.T, cam.s_curve)
    ycc = (srgb @ np.array(YCC_BT601).T).astype(np.float32)
    if cam.luma_nr > 0:
        ycc[..., 0] = cv2.bilateralFilter(ycc[..., 0], 5, cam.luma_nr * noise_std, 2.0)
    if cam.chroma_median:
        for c in (1, 2):
            ycc[..., c] = cv2.medianBlur(ycc[..., c] + 0.5, cam.chroma_median) - 0.5
    srgb = ycc.astype(np.float64) @ np.linalg.inv(np.array(YCC_BT601)).T
    if cam.sharpen > 0:
        blur = cv2.GaussianBlur(srgb, (0, 0), cam.sharpen_radius, borderType=cv2.BORDER_REFLECT)
        srgb = srgb + cam.sharpen * (srgb - blur)
    return camera_sim.to_8bit(srgb)


def pil_jpeg(image: np.ndarray, quality: int, subsampling: int) -> np.ndarray:
    """``image`` (float RGB in [0, 1]) saved as JPEG of ``quality`` by PIL with ``subsampling`` (0 = 4:4:4,
    1 = 4:2:2, 2 = 4:2:0) and decoded (float32). :func:`jpeg` is OpenCV's, always 4:2:0."""
    buf = io.BytesIO()
    Image.fromarray(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)).save(
        buf, "JPEG", quality=quality, subsampling=subsampling)
    return (np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB")) / 255.0).astype(np.float32)


def held_out_camera_pair(clean: np.ndarray, rng: np.random.Generator,
                         camera: HeldOutCamera | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(reference, noisy) for one clean sRGB photo (HxWx3 in [0, 1], even H and W) through a random camera
    of the held-out family: the camera's own noise-free rendering, and the noisy one (JPEG as it chose)."""
    cam = camera or random_held_out_camera(rng)
    lin = _untone(np.asarray(clean, np.float64), cam.s_curve)
    lin = np.clip(lin @ np.linalg.inv(cam.colour_matrix).T, 0.0, 1.0) / np.array([cam.red_gain, 1.0, cam.blue_gain])
    mosaic = camera_sim.mosaic_rggb(lin)
    noisy_mosaic = camera_sim.poisson_gaussian(mosaic, cam.shot_gain, cam.read_std, rng)
    noisy_mosaic = noisy_mosaic + rng.standard_normal((mosaic.shape[0], 1)) * cam.row_std
    # the luminance NR's range sigma follows the noise the camera expects at mid-grey (its own estimate)
    noise_std = float(np.sqrt(0.18 * cam.shot_gain + cam.read_std ** 2)) * 2.0
    reference = _held_out_process(mosaic, cam, noise_std)
    noisy = _held_out_process(noisy_mosaic, cam, noise_std)
    if cam.jpeg_quality is not None:
        noisy = pil_jpeg(noisy, cam.jpeg_quality, cam.jpeg_subsampling)
    return reference, noisy
