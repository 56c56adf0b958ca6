"""How users' noisy photos differ from the DDPM's x_t, for making training samples.

The forward process adds white Gaussian noise. Camera photos carry noise that is spatially
correlated (demosaicing, in-camera processing and JPEG: neighbouring pixels correlate at ~0.7) and
correlated between colour channels (~0.8); see :mod:`.noise_analysis`. :func:`camera_like_noise` turns
white noise into such noise with the same per-pixel variance, so ``q_sample(x0, t, noise)`` still has
std sqrt(1 - abar_t) per pixel and the epsilon-network learns to predict (and remove) it as well.
Clipping to the 8-bit range is :meth:`.diffusion.Diffusion.clipped_observation_noise`.

:func:`camera_observations` goes further: it renders each clean crop through a random simulated camera
(:mod:`.camera_sim`: raw mosaic, Poisson-Gaussian sensor noise, demosaicing, white balance, colour
matrix, tone curve, chroma noise reduction, sharpening, JPEG) with and without noise, and returns the
noise-free rendering as x0, the timestep matching the rendering's noise level, and the noise that makes
``q_sample(x0, t, noise)`` exactly ``sqrt(abar_t) * noisy``: what the app feeds the network for a photo.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .camera_sim import camera_training_pair
from .real_noise import pd_split
from .schedule import NoiseSchedule
from .transfer import to_device

# Gaussian blur widths (pixels) giving lag-1 correlations exp(-1 / (4 s^2)) of ~0.3 to ~0.86, the
# range measured on camera JPEGs (PolyU Canon 5D: 0.67-0.85); channel correlation up to 0.9.
BLUR_RANGE = (0.45, 1.3)
CHANNEL_CORR_RANGE = (0.0, 0.9)


def blur_kernels(widths: torch.Tensor, radius: int) -> torch.Tensor:
    """(B, 2 * radius + 1) 1-D Gaussian kernels, one per width, each cut at ceil(3 * width) (and at
    ``radius``) and scaled to unit energy (sum of squares 1): blurring white noise keeps its variance."""
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    w = widths.to(torch.float32)[:, None]
    k = torch.exp(-x * x / (2 * w * w)) * (x.abs() <= torch.ceil(3 * w).clamp(min=1))
    return k / k.norm(dim=1, keepdim=True)


def blur_kernel(width: float) -> torch.Tensor:
    """The kernel of :func:`blur_kernels` for one width, without zero padding."""
    r = max(1, math.ceil(3 * width))
    return blur_kernels(torch.tensor([width]), r)[0]


def camera_like_noise(shape, generator: torch.Generator, blur_range=BLUR_RANGE,
                      channel_corr_range=CHANNEL_CORR_RANGE,
                      noise_generator: torch.Generator | None = None) -> torch.Tensor:
    """(B, C, H, W) unit-variance noise, spatially and channel-correlated like a camera's, one random
    blur width and channel correlation per sample, drawn from ``generator`` (CPU). The noise itself is
    drawn from ``noise_generator`` and made on its device (default: ``generator``, i.e. the CPU).

    The whole batch is made at once (one grouped convolution per direction, the per-sample kernels
    zero-padded to the widest one, one queued copy of the parameters): a loop over samples, each with
    its own small host-to-device copy, made a GPU wait for the host ~40 times per training step."""
    B, C, H, W = shape
    noise_gen = generator if noise_generator is None else noise_generator
    dev = noise_gen.device
    if B == 0:
        return torch.empty(shape, device=dev)
    widths = blur_range[0] + (blur_range[1] - blur_range[0]) * torch.rand(B, generator=generator)
    rho = channel_corr_range[0] + (channel_corr_range[1] - channel_corr_range[0]) * torch.rand(B, generator=generator)
    r = max(1, math.ceil(3 * max(blur_range)))
    params = to_device(torch.cat([blur_kernels(widths, r), rho[:, None]], dim=1), dev)
    k, rho = params[:, :-1], params[:, -1].view(B, 1, 1, 1)
    white = torch.randn((B, C, H + 2 * r, W + 2 * r), generator=noise_gen, device=dev)
    shared = torch.randn((B, 1, H + 2 * r, W + 2 * r), generator=noise_gen, device=dev)
    n = rho.sqrt() * shared + (1 - rho).sqrt() * white  # unit variance, channel correlation rho
    kc = k.repeat_interleave(C, dim=0)  # (B * C, 2r + 1): each sample's kernel for each of its channels
    n = F.conv2d(n.reshape(1, B * C, H + 2 * r, W + 2 * r), kc.view(B * C, 1, 1, -1), groups=B * C)
    n = F.conv2d(n, kc.view(B * C, 1, -1, 1), groups=B * C)
    return n.view(B, C, H, W)


# The timestep of a camera sample is the one nearest its noise level times exp(N(0, SIGMA_JITTER)): the
# app's level comes from an estimate, so the network should not rely on an exact match.
SIGMA_JITTER = 0.15


def sub_image_tiles(image: np.ndarray) -> np.ndarray:
    """HxWxC (H, W even) as its four 2x2 pixel-shuffled sub-images ``image[i::2, j::2]`` side by side in a 2x2
    grid of the same size: what the camera-noise path's first pass feeds the network, one sub-image at a
    time (core/real_noise.py: pd_split)."""
    subs, _ = pd_split(image, 2)  # row-major: (0, 0), (0, 1), (1, 0), (1, 1)
    return np.concatenate([np.concatenate(subs[:2], axis=1), np.concatenate(subs[2:], axis=1)], axis=0)


def camera_observations(x0: torch.Tensor, schedule: NoiseSchedule, rng: np.random.Generator,
                        sub_image_prob: float = 0.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x0', t, noise) for clean crops ``x0`` ((B, 3, H, W) in [-1, 1], even H and W; any device):
    x0' the random camera's noise-free rendering, t (B,) long, and noise with ``q_sample(x0', t, noise)``
    equal to ``sqrt(abar_t) *`` its noisy 8-bit rendering, i.e. noise = (noisy - x0') / sigma_t (not exactly
    unit variance: camera noise is signal dependent and sigma_t the nearest level). A ``sub_image_prob``
    share of the samples are the rendering's pixel-shuffled sub-images (:func:`sub_image_tiles`, both
    x0' and the noisy one), as the app's camera-noise path denoises them. float32 on x0's device."""
    imgs = ((x0.detach().float().cpu().clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).numpy()
    refs, noises, ts = [], [], []
    for im in imgs:
        ref, noisy = camera_training_pair(im.astype(np.float64), rng)
        if sub_image_prob > 0 and rng.random() < sub_image_prob:
            ref, noisy = sub_image_tiles(ref), sub_image_tiles(noisy)
        residue = 2.0 * (noisy - ref)  # in [-1, 1] units
        level = float(np.std(residue)) * math.exp(SIGMA_JITTER * rng.standard_normal())
        t = max(0, schedule.sigma_to_timestep(level * 255.0 / 2.0))
        refs.append(ref * 2 - 1)
        noises.append(residue / schedule.sigmas[t])
        ts.append(t)

    def stack(arrays):
        return to_device(torch.from_numpy(np.stack(arrays).astype(np.float32)).permute(0, 3, 1, 2), x0.device)
    return stack(refs), to_device(torch.tensor(ts, dtype=torch.long), x0.device), stack(noises)
