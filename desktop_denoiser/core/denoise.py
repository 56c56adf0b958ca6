"""Image-level denoising with a trained DDPM: noise level -> t*, embed, reverse process, decode.

``denoise_image`` is a generator of :class:`~desktop_denoiser.core.sampler.StepEvent` that returns the
clean image (float32 HxWxC in [0, 1]). Two modes:

* ``fidelity`` (best PSNR): the network's predicted x0 at t* (one evaluation; 3 deterministic strided
  DDIM steps from t* at heavy noise, see :func:`default_fidelity_steps`; ``steps`` overrides). With
  ``ensemble`` it averages the prediction over flips (and transposes for 8, and offsets of the pixel
  grid for 16 and 32).
* ``detail``: the ancestral DDPM chain (Algorithm 2) over every timestep from t* to 0 (``steps`` < t*+1
  strides it, keeping eta=1), which re-synthesises fine texture at some PSNR cost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generator

import numpy as np
import torch

from .diffusion import Diffusion
from .noise_estimation import same_channels
from .precision import with_precision
from .sampler import StepEvent, ddpm_timesteps, reverse_process, strided_timesteps
from .schedule import NoiseSchedule
from .tiling import TileCallback, tiled_eps
from .unet import pad_to_multiple

MODES = ("fidelity", "detail")

# Fidelity mode's default number of deterministic steps. One x0 prediction is best up to moderate
# noise; at heavy noise (t* >= 80, sigma >~ 35) 3 strided DDIM steps measured +0.4 dB (sigma=50) on
# both CBSD432 training images and CBSD68, at 3x the time (models/README.md).
HEAVY_NOISE_TIMESTEP = 80
HEAVY_NOISE_STEPS = 3


def default_fidelity_steps(t_star: int) -> int:
    return HEAVY_NOISE_STEPS if t_star >= HEAVY_NOISE_TIMESTEP else 1


@dataclass(frozen=True)
class DenoisePlan:
    sigma: float  # 8-bit units
    timestep: int  # t*; -1 = nothing to remove
    timesteps: tuple[int, ...]
    eta: float

    @property
    def steps(self) -> int:
        return len(self.timesteps)


def plan_denoise(schedule: NoiseSchedule, sigma: float, mode: str = "fidelity", steps: int | None = None) -> DenoisePlan:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    t_star = schedule.sigma_to_timestep(sigma)
    if t_star < 0:
        return DenoisePlan(float(sigma), -1, (), 0.0)
    if mode == "fidelity":
        ts = strided_timesteps(t_star, steps or default_fidelity_steps(t_star))
        eta = 0.0
    else:
        ts = ddpm_timesteps(t_star) if not steps or steps >= t_star + 1 else strided_timesteps(t_star, steps)
        eta = 1.0
    return DenoisePlan(float(sigma), t_star, tuple(ts), eta)


# The eight symmetries of the square as (flip dims, transpose): the first four are the flips, the last
# four the same flips of the transposed image (i.e. the 90-degree rotations and the two diagonal mirrors).
_DIHEDRAL = [((), False), ((3,), False), ((2,), False), ((2, 3), False),
             ((), True), ((3,), True), ((2,), True), ((2, 3), True)]
# Offsets (dy, dx) of the pixel grid: the network's first layer pixel-unshuffles 2x2 cells (and its
# stride-2 down-sampling halves the grid again), so an image moved by one pixel is cut into other cells and
# gives another estimate. Flips and transposes of a padded image keep the cells, offsets do not: they are
# the ensemble's next axis (16 views = the 8 symmetries at offsets (0, 0) and (1, 1); 32 = all four).
_OFFSETS = [(0, 0), (1, 1), (0, 1), (1, 0)]
ENSEMBLE_SIZES = (1, 2, 4, 8, 16, 32)


def _offset_views(n: int) -> list[tuple[tuple[int, int], tuple[tuple[int, ...], bool]]]:
    """The (offset, symmetry) pairs of an n-view ensemble (see :data:`ENSEMBLE_SIZES`)."""
    if n not in ENSEMBLE_SIZES:
        raise ValueError(f"ensemble must be one of {ENSEMBLE_SIZES}, got {n}")
    symmetries = _DIHEDRAL[:min(n, len(_DIHEDRAL))]
    return [(o, s) for o in _OFFSETS[:max(1, n // len(_DIHEDRAL))] for s in symmetries]


def _shifted(x: torch.Tensor, dy: int, dx: int, multiple: int) -> torch.Tensor:
    """``x`` moved down/right by (dy, dx) pixels, reflect-padded so the size stays a multiple of ``multiple``
    (replicate-padded where the image is too small to reflect); ``x`` itself at offset (0, 0)."""
    if not (dy or dx):
        return x
    pad = (dx, (multiple - dx) if dx else 0, dy, (multiple - dy) if dy else 0)
    mode = "reflect" if max(pad) < min(x.shape[-2:]) else "replicate"
    return torch.nn.functional.pad(x, pad, mode=mode)


def ensemble_eps(model, n: int, multiple: int = 1):
    """Average eps over n views (:func:`_offset_views`): 2 = + h-flip, 4 = all flips, 8 = flips and
    transposes (the square's symmetries, :data:`_DIHEDRAL`), 16 and 32 = those 8 at 2 and 4 offsets of the
    pixel grid (:data:`_OFFSETS`). The network is translation-local and was trained on flipped and
    rotated crops, so each view is an equally good estimate whose errors partly cancel (measured in
    benchmarks/RESULTS.md). With n = 8 the result is exactly equivariant to flips and 90-degree rotations
    (for sizes that are multiples of ``multiple``; other sizes are padded at the bottom and right); a
    one-pixel offset is not a symmetry of the grid, so 16 and 32 views are equivariant only approximately.

    ``multiple`` is the network's down-sampling factor (``UNetConfig.size_multiple``): the input is padded
    to it first, so that every view puts the same pixels into the same pixel-unshuffle and stride-2 cells.
    Without that a flipped odd-sized tile would be cut into other cells than the whole image, and a tiled
    run would no longer match an untiled one."""
    views = _offset_views(n)

    def fn(x, t):
        H, W = x.shape[-2:]
        x = pad_to_multiple(x, multiple)
        Hp, Wp = x.shape[-2:]
        acc = None
        for (dy, dx), (dims, transpose) in views:
            v = _shifted(x, dy, dx, multiple)
            v = v.transpose(2, 3) if transpose else v
            e = model(v.flip(dims) if dims else v, t)
            e = e.flip(dims) if dims else e
            e = e.transpose(2, 3) if transpose else e
            e = e[..., dy:dy + Hp, dx:dx + Wp]  # moved back (a no-op view at offset (0, 0))
            acc = e if acc is None else acc.add_(e)
        return acc.div_(len(views))[..., :H, :W]

    return fn


def denoise_image(
    model: torch.nn.Module,
    schedule: NoiseSchedule,
    image: np.ndarray,
    plan: DenoisePlan,
    *,
    device: str | torch.device = "cpu",
    seed: int = 0,
    tile: int | None = 512,
    overlap: int = 32,
    ensemble: int = 1,
    preview: bool = False,
    preview_max_size: int | None = 256,
    diffusion: Diffusion | None = None,
    dtype: torch.dtype | None = None,
    on_tile: TileCallback | None = None,
) -> Generator[StepEvent, None, np.ndarray]:
    """Denoise ``image`` (HxW, HxWx1 or HxWx3 float in [0, 1]) following ``plan``.

    ``on_tile(done, total)`` is called after each tile of each step (:func:`~.tiling.tiled_eps`).

    ``dtype`` (bf16/fp16) runs the network under autocast (:mod:`.precision`); None = float32.

    The full image stays on the CPU when tiling on another device, so memory is bounded by the tile size."""
    img = np.asarray(image, dtype=np.float32)
    squeeze = img.ndim == 2
    if squeeze:
        img = img[..., None]
    channels = img.shape[2]
    if channels not in (1, 3):
        raise ValueError(f"expected 1 or 3 colour channels, got {channels}")
    grey_rgb = channels == 3 and same_channels(img)
    if grey_rgb:  # a black-and-white photo stored as RGB: denoised as grey, so it stays neutral grey
        img, channels = img[..., :1], 1
    if plan.timestep < 0 or not plan.timesteps:
        return image.astype(np.float32, copy=True)
    diffusion = diffusion or Diffusion(schedule)
    device = torch.device(device)
    H, W = img.shape[:2]
    storage = device if (tile is None or max(H, W) <= tile) else torch.device("cpu")
    x = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None].to(storage)
    if channels == 1:
        x = x.expand(1, 3, H, W)
    x = x.mul(2.0).sub_(1.0)  # [-1, 1]
    x.mul_(float(schedule.sqrt_alphas_cumprod[plan.timestep]))  # x_{t*} = sqrt(abar) * y
    net = with_precision(model, device, dtype)
    multiple = getattr(getattr(model, "config", None), "size_multiple", 1)
    net = ensemble_eps(net, ensemble, multiple) if ensemble > 1 else net
    eps_fn = tiled_eps(net, device, tile, overlap, on_tile=on_tile)
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    x0 = yield from reverse_process(eps_fn, diffusion, x, plan.timesteps, eta=plan.eta, generator=gen,
                                    preview=preview, preview_max_size=preview_max_size,
                                    overwrite_eps=True)  # tiled_eps returns a new tensor per call
    del x  # x_{t*}: no longer needed (big photos: 12 bytes a pixel)
    out = x0[0].add_(1.0).mul_(0.5).clamp_(0, 1)
    if channels == 1:
        out = out.mean(0, keepdim=True)
    result = out.permute(1, 2, 0).cpu().numpy().astype(np.float32, copy=True)
    if grey_rgb:
        result = np.repeat(result, 3, axis=2)
    return result[..., 0] if squeeze else result
