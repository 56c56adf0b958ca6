"""A simulated camera: clean sRGB photo -> raw mosaic with sensor noise -> demosaiced, processed 8-bit sRGB.

Real camera noise is Poisson-Gaussian in the raw mosaic; white balance, demosaicing, the colour matrix,
the tone curve and JPEG then make it signal-dependent and correlated in space and between channels.
This module "unprocesses" a clean photo (Brooks et al. 2019, "Unprocessing images for learned raw
denoising") and runs it forward again, with or without noise:

* :func:`raw_pipeline`: the fixed path of ``benchmarks/raw_pipeline.py`` (no colour matrix, unit white
  balance), a known limit of the app (README).
* :func:`random_camera` and :func:`process`: a random camera (white-balance gains, colour matrix,
  demosaicing method, noise gain, read noise, JPEG quality) for training samples
  (:func:`camera_training_pair`).

numpy and OpenCV only, on float HxWx3 images in [0, 1]. No torch, no Qt.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .metrics import YCC_BT601

DEMOSAIC = {"bilinear": cv2.COLOR_BayerBG2RGB, "edge-aware": cv2.COLOR_BayerBG2RGB_EA}

# Random cameras for training: ranges after Brooks et al. 2019 (white balance, read noise) and the
# PolyU Canon 5D noise levels (1.3-5.5 8-bit; up to ~25 for a high-ISO phone).
RED_GAIN = (1.4, 2.5)
BLUE_GAIN = (1.3, 2.2)
SATURATION = (0.0, 0.8)  # colour matrix I + s (I - 1/3): rows sum to 1 (white stays white), amplifies chroma noise
SHOT_GAIN = (4e-5, 2e-2)  # linear units per photon, log-uniform
READ_RATIO = (0.3, 3.0)  # read-noise std / shot gain, log-uniform
JPEG_PROB = 0.75
JPEG_QUALITY = (75, 98)
# In-camera processing after the tone curve (linear, so the noise-free rendering gets it too): chroma
# noise reduction (a Gaussian blur of the chroma; PolyU's Canon noise is 0.8-0.98 channel correlated,
# i.e. mostly luminance) and unsharp-mask sharpening (which lifts the noise at periods of 2-8 pixels).
CHROMA_NR_PROB, CHROMA_BLUR = 0.75, (0.5, 2.5)
SHARPEN_PROB, SHARPEN_AMOUNT, SHARPEN_RADIUS = 0.6, (0.2, 1.0), (0.7, 1.5)
_YCC = np.array(YCC_BT601)


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.04045, x / 12.92, ((np.maximum(x, 0.04045) + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.maximum(x, 0.0031308) ** (1 / 2.4) - 0.055)


def mosaic_rggb(rgb: np.ndarray) -> np.ndarray:
    """HxW RGGB colour-filter samples of an HxWx3 image (even H and W)."""
    m = np.empty(rgb.shape[:2], dtype=rgb.dtype)
    m[0::2, 0::2], m[0::2, 1::2] = rgb[0::2, 0::2, 0], rgb[0::2, 1::2, 1]
    m[1::2, 0::2], m[1::2, 1::2] = rgb[1::2, 0::2, 1], rgb[1::2, 1::2, 2]
    return m


def demosaic(mosaic: np.ndarray, method: str = "bilinear") -> np.ndarray:
    """OpenCV demosaicing of an RGGB mosaic in [0, 1] (16-bit inside, truncated), HxWx3 float64."""
    m16 = np.clip(mosaic * 65535, 0, 65535).astype(np.uint16)
    return cv2.cvtColor(m16, DEMOSAIC[method]) / 65535.0


def poisson_gaussian(mosaic: np.ndarray, shot_gain: float, read_std: float, rng: np.random.Generator) -> np.ndarray:
    """Sensor noise: photon counts ~ Poisson(signal / shot_gain) times the gain, plus Gaussian read noise."""
    return rng.poisson(np.maximum(mosaic, 0) / shot_gain) * shot_gain + rng.standard_normal(mosaic.shape) * read_std


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """``image`` (float RGB in [0, 1]) encoded as a JPEG of ``quality`` (OpenCV: 4:2:0) and decoded."""
    ok, enc = cv2.imencode(".jpg", np.round(np.clip(image, 0, 1)[..., ::-1] * 255).astype(np.uint8),
                           [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return (cv2.imdecode(enc, cv2.IMREAD_COLOR)[..., ::-1] / 255.0).astype(np.float32)


def to_8bit(srgb: np.ndarray) -> np.ndarray:
    return (np.clip(np.round(srgb * 255), 0, 255) / 255).astype(np.float32)


@dataclass(frozen=True)
class Camera:
    """One simulated camera and exposure."""

    red_gain: float = 2.0
    blue_gain: float = 1.7
    saturation: float = 0.4
    shot_gain: float = 1e-3
    read_std: float = 1e-3
    demosaic: str = "bilinear"
    chroma_blur: float = 0.0  # Gaussian sigma (pixels) of the chroma noise reduction; 0 = none
    sharpen: float = 0.0  # unsharp-mask amount; 0 = none
    sharpen_radius: float = 1.0
    jpeg_quality: int | None = None

    def colour_matrix(self) -> np.ndarray:
        return (1 + self.saturation) * np.eye(3) - self.saturation / 3.0


def random_camera(rng: np.random.Generator) -> Camera:
    def log_uniform(lo, hi):
        return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))

    shot = log_uniform(*SHOT_GAIN)
    return Camera(red_gain=float(rng.uniform(*RED_GAIN)), blue_gain=float(rng.uniform(*BLUE_GAIN)),
                  saturation=float(rng.uniform(*SATURATION)), shot_gain=shot,
                  read_std=shot * log_uniform(*READ_RATIO),
                  demosaic=str(rng.choice(list(DEMOSAIC))),
                  chroma_blur=float(rng.uniform(*CHROMA_BLUR)) if rng.random() < CHROMA_NR_PROB else 0.0,
                  sharpen=float(rng.uniform(*SHARPEN_AMOUNT)) if rng.random() < SHARPEN_PROB else 0.0,
                  sharpen_radius=float(rng.uniform(*SHARPEN_RADIUS)),
                  jpeg_quality=int(rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1)) if rng.random() < JPEG_PROB else None)


def unprocess(clean: np.ndarray, camera: Camera) -> np.ndarray:
    """Clean sRGB (HxWx3, [0, 1]) -> the camera's raw RGGB mosaic in [0, 1] (before noise)."""
    lin = srgb_to_linear(clean).astype(np.float64)  # the curve in the photo's own precision
    cam = np.clip(lin @ np.linalg.inv(camera.colour_matrix()).T, 0.0, 1.0)
    cam = cam / np.array([camera.red_gain, 1.0, camera.blue_gain])
    return mosaic_rggb(cam)


def process(mosaic: np.ndarray, camera: Camera) -> np.ndarray:
    """The camera's raw mosaic -> 8-bit sRGB (demosaic, white balance, colour matrix, tone curve, chroma
    noise reduction, sharpening); no JPEG."""
    rgb = demosaic(np.clip(mosaic, 0.0, 1.0), camera.demosaic)
    rgb = np.clip(rgb * np.array([camera.red_gain, 1.0, camera.blue_gain]), 0.0, 1.0)
    srgb = linear_to_srgb(rgb @ camera.colour_matrix().T)
    if camera.chroma_blur > 0:
        ycc = srgb @ _YCC.T
        for c in (1, 2):
            ycc[..., c] = cv2.GaussianBlur(ycc[..., c], (0, 0), camera.chroma_blur, borderType=cv2.BORDER_REFLECT)
        srgb = ycc @ np.linalg.inv(_YCC).T
    if camera.sharpen > 0:
        blur = cv2.GaussianBlur(srgb, (0, 0), camera.sharpen_radius, borderType=cv2.BORDER_REFLECT)
        srgb = srgb + camera.sharpen * (srgb - blur)
    return to_8bit(srgb)


def camera_training_pair(clean: np.ndarray, rng: np.random.Generator,
                         camera: Camera | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(reference, noisy) for one clean sRGB crop (HxWx3 in [0, 1], even H and W): the same random camera
    with and without sensor noise; the noisy one JPEG-compressed as the camera chose. The reference is
    the camera's own noise-free rendering (its demosaicing included), as PolyU's mean images are."""
    camera = camera or random_camera(rng)
    mosaic = unprocess(clean, camera)
    reference = process(mosaic, camera)
    noisy = process(poisson_gaussian(mosaic, camera.shot_gain, camera.read_std, rng), camera)
    if camera.jpeg_quality is not None:
        noisy = jpeg(noisy, camera.jpeg_quality)
    return reference, noisy


def raw_pipeline(clean: np.ndarray, gain: float, seed: int, demosaic_method: str = "bilinear",
                 noise: bool = True) -> np.ndarray:
    """``clean`` (float HxWx3 sRGB in [0, 1], even H and W) through the raw path of a camera without colour
    processing (unit white balance, identity colour matrix): Poisson noise with ``gain`` (linear units per
    photon) plus read noise of std ``gain``; ``noise=False`` gives the same path without noise (the
    reference the denoised result is compared with). float32, 8-bit values."""
    camera = Camera(red_gain=1.0, blue_gain=1.0, saturation=0.0, shot_gain=gain, read_std=gain,
                    demosaic=demosaic_method)
    mosaic = unprocess(clean, camera)
    if noise:
        mosaic = poisson_gaussian(mosaic, gain, gain, np.random.default_rng(seed))
    return process(mosaic, camera)
