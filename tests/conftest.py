import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pytest
import torch

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))


def smooth_test_image(h: int = 96, w: int = 96, seed: int = 0) -> np.ndarray:
    """A clean, photo-like float32 HxWx3 image in [0,1]: smooth gradients, soft blobs and a few edges."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.zeros((h, w, 3), np.float32)
    for c in range(3):
        img[..., c] = 0.3 + 0.4 * (xx / w) * (0.5 + 0.5 * c / 2) + 0.2 * (yy / h)
    for _ in range(4):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(h / 8, h / 3)
        col = rng.uniform(-0.25, 0.25, 3).astype(np.float32)
        img += col * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))[..., None]
    img[h // 3: h // 2, w // 4: w // 2] += 0.15
    return np.clip(img, 0.05, 0.95).astype(np.float32)


def blurred_noise(shape, std: float, blur: float = 1.0, seed: int = 0) -> np.ndarray:
    """Camera-like spatially correlated noise: white noise blurred by a Gaussian of ``blur`` pixels,
    rescaled to per-pixel std ``std`` (8-bit units)."""
    import cv2

    w = np.random.default_rng(seed).standard_normal(shape)
    n = np.stack([cv2.GaussianBlur(w[..., c], (0, 0), blur) for c in range(shape[2])], -1)
    return n / n.std() * std


def soft_texture(shape, amp, seed):
    """Clean fine texture with Gaussian statistics (foliage, gravel at a distance), the same in every
    channel: spatially correlated like camera noise and as Gaussian, so the texture test passes it."""
    t = blurred_noise(shape[:2] + (1,), amp, 1.0, seed)
    return t * np.array([1.0, 0.9, 0.8])


def textured_photo() -> np.ndarray:
    """An 8-bit, 128x128 clean photo with soft texture of std 10 (8-bit units) over smooth_test_image: what
    weak white noise over fine texture is tested on (tests/test_real_noise.py, the weak-noise benchmark)."""
    img = smooth_test_image(128, 128, seed=3) + soft_texture((128, 128, 3), 10.0, 5) / 255
    return (np.clip(np.round(img * 255.0), 0, 255) / 255.0).astype(np.float32)


@pytest.fixture
def clean_image():
    return smooth_test_image()
