"""How users' noisy photos differ from the DDPM's x_t, for making training samples.

The forward process adds white Gaussian noise. Camera photos carry noise that is spatially
correlated (demosaicing, in-camera processing and JPEG: neighbouring pixels correlate at ~0.7) and
correlated between colour channels (~0.8); see :mod:`.real_noise`. :func:`camera_like_noise` turns
white noise into such noise with the same per-pixel variance, so ``q_sample(x0, t, noise)`` still has
std sqrt(1 - abar_t) per pixel and the epsilon-network learns to predict (and remove) it as well.
Clipping to the 8-bit range is :meth:`.diffusion.Diffusion.clipped_observation_noise`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# Gaussian blur widths (pixels) giving lag-1 correlations exp(-1 / (4 s^2)) of ~0.3 to ~0.86, the
# range measured on camera JPEGs (PolyU Canon 5D: 0.67-0.85); channel correlation up to 0.9.
BLUR_RANGE = (0.45, 1.3)
CHANNEL_CORR_RANGE = (0.0, 0.9)


def _uniform(lo: float, hi: float, generator: torch.Generator) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=generator))


def blur_kernel(width: float) -> torch.Tensor:
    """1-D Gaussian kernel with unit energy (sum of squares 1): blurring white noise keeps its variance."""
    r = max(1, math.ceil(3 * width))
    x = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-x * x / (2 * width * width))
    return k / k.norm()


def camera_like_noise(shape, generator: torch.Generator, blur_range=BLUR_RANGE,
                      channel_corr_range=CHANNEL_CORR_RANGE,
                      noise_generator: torch.Generator | None = None) -> torch.Tensor:
    """(B, C, H, W) unit-variance noise, spatially and channel-correlated like a camera's, one random
    blur width and channel correlation per sample, drawn from ``generator`` (CPU). The noise itself is
    drawn from ``noise_generator`` and made on its device (default: ``generator``, i.e. the CPU)."""
    B, C, H, W = shape
    noise_gen = generator if noise_generator is None else noise_generator
    dev = noise_gen.device
    out = torch.empty(shape, device=dev)
    for i in range(B):
        width = _uniform(*blur_range, generator)
        rho = _uniform(*channel_corr_range, generator)
        k = blur_kernel(width).to(dev)
        r = (k.numel() - 1) // 2
        white = torch.randn((1, C, H + 2 * r, W + 2 * r), generator=noise_gen, device=dev)
        shared = torch.randn((1, 1, H + 2 * r, W + 2 * r), generator=noise_gen, device=dev)
        n = math.sqrt(rho) * shared + math.sqrt(1 - rho) * white  # unit variance, channel correlation rho
        n = F.conv2d(n, k.view(1, 1, 1, -1).expand(C, 1, 1, -1).contiguous(), groups=C)
        n = F.conv2d(n, k.view(1, 1, -1, 1).expand(C, 1, -1, 1).contiguous(), groups=C)
        out[i] = n[0]
    return out
