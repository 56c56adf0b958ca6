"""Denoising real camera photos (correlated, signal-dependent noise) with the DDPM's network.

Real photos are not "clean + white Gaussian noise": demosaicing, in-camera noise reduction and JPEG
make the noise spatially correlated (neighbouring pixels' noise correlates at ~0.7) and channel
correlated, and its level depends on brightness. The white-noise PCA estimator
(:func:`~desktop_denoiser.core.noise_estimation.estimate_sigma`) then sees only the small
high-frequency tail of the noise spectrum and reports a sigma ~10x too low, so the plain path barely
denoises such a photo.

The noise is measured by :func:`~desktop_denoiser.core.noise_analysis.analyse_noise` (:mod:`.noise_analysis`);
this module denoises what it takes for camera noise.

:func:`denoise_real` denoises with the pixel-shuffle down-sampling of Zhou et al. 2020 ("When
AWGN-based denoiser meets real noises"): the image is split into 2x2 = 4 sub-images (every other
pixel in each direction), in which spatially correlated noise is much closer to white, each
sub-image is denoised by the network at the per-pixel sigma, and they are re-interleaved; a
full-resolution pass then removes the residual noise and the 2-pixel pattern left by the independent
sub-image results, at 0.5 x sigma (REFINE_LEVEL = "measured", a level measured in their result, is
kept for comparison). For white noise (``correlated=False``) it is exactly the plain
fidelity path (white-noise sigma -> t*, one x0 prediction). Cost: 2 network evaluations of the
image's size (4 quarter-size sub-images + 1 full), i.e. ~2x the plain fidelity path.
``STRATEGY = "direct"`` (one full-resolution pass) is kept for comparison, and so is
``plan_real(..., sub_images=False)``: the camera network, trained on whole simulated-camera photos, run
on the whole photo before the same refinement. With the camera network's stage 2 that gains +0.65 dB on
its own simulated cameras but −0.09 dB on a camera family it never trained on, ties on PolyU and changes
more clean photos, so it is not the app's path (``benchmarks/camera_path.py``; benchmarks/RESULTS.md).

Measured on PolyU-Canon5D2 (29 real pairs; even-numbered pairs used to choose, odd ones to check):

| model | path | all 29 | even | odd |
|---|---|---:|---:|---:|
| 7,000 steps, white noise only | PD at the luminance-matched sigma (sigma*sqrt(1+2 rho_c)) | 36.86 | 37.11 | 36.58 |
| stage 2 at 10,000 steps (with clipped and camera-like noise) | same | 36.50 | 36.74 | 36.25 |
| stage 2 at 10,000 steps | PD at the per-pixel sigma (default) | 36.66 | 36.91 | 36.39 |
| stage 2 at 10,000 steps | direct, one pass at 1.3 x sigma | 36.58 | 36.82 | 36.32 |
| stage 2 at 26,000 steps | PD at the per-pixel sigma (default) | 36.65 | 36.90 | 36.39 |
| stage 3 (+14,339 GPU steps at 128²) | PD at the per-pixel sigma (default) | 36.75 | 37.00 | 36.48 |
| stage 4 (+ saturated colours) | PD at the per-pixel sigma (default) | 36.72 | 36.97 | 36.46 |
| stage 5 (+10,919 GPU steps) | PD at the per-pixel sigma (default) | 36.70 | 36.95 | 36.44 |
| stage 6 (+10,894 GPU steps) | PD at the per-pixel sigma (default) | 36.69 | 36.93 | 36.43 |
| stage 7 (+21,779 GPU steps) | PD at the per-pixel sigma (default) | 36.71 | 36.95 | 36.44 |
| stage 8 (grown to 48 base channels, +13,295 GPU steps; the standard network) | PD at the per-pixel sigma (default) | 36.70 | 36.94 | 36.43 |
| the camera network (stage 7 + 12,655 CPU steps on a simulated camera, core/camera_sim.py) | PD at the per-pixel sigma (default) | 37.19 | 37.52 | 36.84 |
| the camera network | direct, one pass at 1.5 x sigma | 37.16 | 37.48 | 36.82 |
| **camera network, stage 2** (+8,025 steps, sub-image samples; shipped) | PD (default) | **37.25** | **37.60** | **36.88** |

Also tried on the 10,000-step model, all 29 pairs vs the default 36.66: refinement at 0.3 x sigma
36.53; PD at 1.2 x / 0.85 x sigma 36.66 / 36.64; averaging the default with the direct pass 36.67; chroma
taken from a second, 1.5 x sigma PD pass 36.70; averaging PD stride 2 and 3 before refinement 36.69.
None is worth a second network pass of the photo, so the path stays as it is. With the stage-5 model,
a brightness-adaptive second pass (the noise level function per brightness bin, capped at C x sigma,
a pass at its maximum blended in by each pixel's smoothed brightness) gave 36.76 / 36.73 / 36.59 dB
for C = 1.5 / 2 / 3 against 36.70 (even pairs +0.09, odd +0.03 at C = 1.5): not worth 2x the time either.

How far could the choice of level go? ``benchmarks/real_sigma_sweep.py`` (stage-7 model) runs this path
on every pair at k x sigma (sub-images) and r x sigma (refinement) for k in 0.7..1.5, r in 0.35..0.7:
the best fixed setting (k 0.85, r 0.7) gives 36.77 against 36.71, and the per-photo best of all 16 runs
(an oracle with the reference in hand) 36.93 (stage 8, with 2.2x the network: 36.78 and 36.94). A one-step prediction at the fractional timestep of the
exact sigma (the schedule's lowest levels are 1.28, 1.89, 2.42 ...) gave +0.01 dB. What is left is the
network's, not the level's.

Where the network loses on PolyU (per pair, stage-5 and stage-6 models; measured, not acted on):

* ``toy_12`` (plush fleece): 33.9 dB, below the noisy input (35.5) and CBM3D (36.6). The fleece reads as
  noise (sigma 5.5, the largest of the set; the residual against the reference has std 4.2), and even
  at the best sigma of a sweep (2.5) the network gives 36.1: it smooths the fleece that CBM3D's block
  matching keeps. A model limit on fine repeated texture, not only an estimator one.
* ``fruit_14`` (an out-of-focus background): returned unchanged (40.6 dB, as CBM3D). JPEG flattened the
  noise inside each 8x8 block, so it lives in the blocks' mean levels; the flat blocks are explained by
  planes and the photo is taken for clean. Forced through this path at sigma 2 it would give 42.5 dB.
* Between each noisy photo and its reference the mean colour differs per channel (exposure, not
  noise): removing that offset from our outputs would lift the set from 36.70 to 37.36 dB (stage 5). No denoiser
  can remove it, so it weighs on every method alike.

What moved PolyU was the training data, not the path: every level and strategy above stayed within
~0.2 dB for one network, while rendering half the training samples through a simulated camera (raw
Poisson-Gaussian noise, demosaicing, colour processing, chroma noise reduction, sharpening, JPEG) lifted
the same network by +0.49 dB (models/README.md, "The camera network"). ``pipeline.devices.resolve_network``
runs that network on this path; the levels here suit it as they are (its sweep is in the model card).

The noisy inputs are at 35.52 dB. The network that has seen correlated noise removes it at its
per-pixel sigma, so the luminance matching the white-noise model needed over-smooths (the table).

Everything is built on :func:`~desktop_denoiser.core.denoise.denoise_image`; the passes' StepEvents
are renumbered 1..total across passes. No Qt imports.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Generator

import numpy as np
import torch

from .denoise import DenoisePlan, denoise_image, plan_denoise
from .noise_analysis import NoiseAnalysis, analyse_noise
from .sampler import StepEvent, to_preview
from .schedule import NoiseSchedule
from .tiling import TileCallback

__all__ = ["RealPlan", "denoise_real", "luma_sigma", "measured_refinement", "pd_merge", "pd_split",
           "plan_real"]

# -- denoising constants -----------------------------------------------------------------------------
STRATEGY = "pd"  # "pd": pixel-shuffle passes + refinement; "direct": one full-resolution pass
DIRECT_SIGMA_SCALE = 1.0  # "direct": sigma = DIRECT_SIGMA_SCALE * analysis.sigma (per-pixel std)
PD_STRIDE = 2  # pixel-shuffle factor
LUMA_MATCHED = False  # sub-image sigma = luma_sigma(analysis) if True, else the per-pixel analysis.sigma
PD_SIGMA_SCALE = 1.0  # extra factor on the sub-image sigma (kept at 1: no tuning to one camera)
REFINE_SIGMA_SCALE = 0.5  # refinement pass sigma = REFINE_SIGMA_SCALE * analysis.sigma (0 = no refinement)
# REFINE_LEVEL = "measured" (kept for comparison, like STRATEGY) sets the refinement level from the noise the
# sub-image pass left (analyse_noise of its output, per pixel) times REFINE_RESIDUAL_SCALE, at least the
# fixed level. That residue is still spatially correlated (rho1 0.55-0.8 on PolyU), which is why the
# network needs more than its per-pixel level to remove it. On the 28 PolyU pairs that take this path
# (stage-8 network; even / odd pairs): the fixed 0.5 x sigma 36.94 / 36.11 dB; 1.25 / 1.5 / 1.75 x the
# residue 37.09 / 36.22, 37.11 / 36.24, 37.13 / 36.24; fixed 0.9 / 1.0 / 1.2 x sigma 37.00 / 36.22, 36.97 /
# 36.20, 36.99 / 36.12. bench_real with "measured": PolyU 36.84 dB (+0.80 over CBM3D, +0.14 over "fixed"),
# but the clean photos taken for camera noise are smoothed more (>= 45 dB vs the input: PolyU references
# 24 / 29 instead of 28, CBSD68 46 / 68 instead of 52), and on the synthetic raw path choosing *Camera
# noise* loses 0.3-6.6 dB more (6.6 on noise-free exports; benchmarks/RESULTS.md). Their residue reads
# 0.7-0.9 x sigma (texture the sub-image pass keeps), the camera noise's 0.44-0.83: the two overlap, so the
# measurement cannot tell them apart. Not the default: the issue asks clean photos back unchanged.
REFINE_LEVEL = "fixed"
REFINE_RESIDUAL_SCALE = 1.5
RESIDUAL_FRACTION = 0.6  # residue / sigma, typical on PolyU: the level the plan predicts for a measured pass


# -- pixel-shuffle down-sampling ---------------------------------------------------------------------

def pd_split(image: np.ndarray, s: int = 2) -> tuple[list[np.ndarray], tuple[int, int]]:
    """Split HxWxC into s*s sub-images ``image[i::s, j::s]`` (edge-padded to a multiple of s)."""
    H, W = image.shape[:2]
    ph, pw = (-H) % s, (-W) % s
    if ph or pw:
        pad = ((0, ph), (0, pw)) + ((0, 0),) * (image.ndim - 2)
        image = np.pad(image, pad, mode="edge")
    subs = [np.ascontiguousarray(image[i::s, j::s]) for i in range(s) for j in range(s)]
    return subs, (H, W)


def pd_merge(subs: list[np.ndarray], size: tuple[int, int], s: int = 2) -> np.ndarray:
    h, w = subs[0].shape[:2]
    out = np.empty((h * s, w * s) + subs[0].shape[2:], dtype=subs[0].dtype)
    for k, sub in enumerate(subs):
        i, j = divmod(k, s)
        out[i::s, j::s] = sub
    return out[: size[0], : size[1]]


# -- the real-noise path -----------------------------------------------------------------------------

@dataclass(frozen=True)
class RealPass:
    kind: str  # "pd" (the PD_STRIDE**2 pixel-shuffled sub-images, one after the other) or "full"
    plan: DenoisePlan  # for a measured pass: the plan at the predicted level, replaced when it runs
    measured: bool = False  # level = REFINE_RESIDUAL_SCALE x the noise measured in the previous pass's output

    @property
    def steps(self) -> int:
        return self.plan.steps * (PD_STRIDE * PD_STRIDE if self.kind == "pd" else 1)


@dataclass(frozen=True)
class RealPlan:
    """The network passes :func:`denoise_real` runs (empty = nothing to remove: image returned as is)."""

    passes: tuple[RealPass, ...]
    sigma: float  # the noise level reported to the user (8-bit): NoiseAnalysis.denoise_sigma

    @property
    def total(self) -> int:
        """Number of StepEvents denoise_real yields (= network evaluations); with a measured pass, the
        number predicted (the events after the level is measured carry the exact total)."""
        return sum(p.steps for p in self.passes)

    @property
    def timestep(self) -> int:
        """t* of the main (first) pass; -1 when there is nothing to remove."""
        return self.passes[0].plan.timestep if self.passes else -1


def luma_sigma(analysis: NoiseAnalysis) -> float:
    """Noise std of the luminance direction (R+G+B)/sqrt(3), in the network's per-channel units.

    The network was trained with i.i.d. noise of std s in every channel, i.e. std s along every
    colour direction. Camera noise is strongly correlated between channels (rho_c ~0.8), so along
    the luminance axis its std is sigma*sqrt(1 + 2 rho_c) (and much smaller along the chroma axes).
    Matching the dominant (luminance) component is what removes the visible noise."""
    return analysis.sigma * math.sqrt(max(1.0 + 2.0 * analysis.channel_corr, 1.0))


def plan_real(schedule: NoiseSchedule, analysis: NoiseAnalysis, mode: str = "fidelity",
              steps: int | None = None, *, refine_scale: float | None = None, sub_images: bool = True) -> RealPlan:
    """Passes for ``analysis``: plain fidelity at its white_sigma if not correlated; else pixel-shuffled
    sub-images at PD_SIGMA_SCALE x the per-pixel sigma (``camera_sigma``; the luminance-matched one if
    LUMA_MATCHED) — with ``sub_images`` False (a network trained on camera noise, which needs no
    whitening: see the module's note) the whole photo at that level instead —, then a full-resolution
    refinement at ``refine_scale`` x sigma (default
    REFINE_SIGMA_SCALE; 0 = none), or with REFINE_LEVEL = "measured" and no ``refine_scale`` at the level
    measured in the sub-images' result (:func:`measured_refinement`). ``mode``/``steps`` apply to every
    pass (``detail``: each pass is the ancestral chain from its own t*, so the result keeps re-synthesised
    fine texture)."""
    if not analysis.correlated:
        plan = plan_denoise(schedule, analysis.white_sigma, mode, steps)
        return RealPlan((RealPass("full", plan),) if plan.timestep >= 0 else (), analysis.white_sigma)
    sigma = analysis.camera_sigma  # the measured level, or a fraction of it for demosaiced noise
    if STRATEGY == "direct":
        plan = plan_denoise(schedule, DIRECT_SIGMA_SCALE * sigma, mode, steps)
        return RealPlan((RealPass("full", plan),) if plan.timestep >= 0 else (), sigma)
    pd_sigma = PD_SIGMA_SCALE * (luma_sigma(analysis) if LUMA_MATCHED else sigma)
    passes = []
    pd_plan = plan_denoise(schedule, pd_sigma, mode, steps)
    if pd_plan.timestep >= 0:
        passes.append(RealPass("pd" if sub_images and PD_STRIDE > 1 else "full", pd_plan))
        if refine_scale is None and REFINE_LEVEL == "measured":
            # predicted level, at least the finest one: whether anything is left is known only when it runs
            level = max(_measured_level(RESIDUAL_FRACTION * sigma, sigma),
                        schedule.timestep_to_sigma(0))
            passes.append(RealPass("full", plan_denoise(schedule, level, mode, steps), measured=True))
        else:
            scale = REFINE_SIGMA_SCALE if refine_scale is None else refine_scale
            ref_plan = plan_denoise(schedule, scale * sigma, mode, steps) if scale > 0 else None
            if ref_plan is not None and ref_plan.timestep >= 0:
                passes.append(RealPass("full", ref_plan))
    return RealPlan(tuple(passes), sigma)


def _measured_level(residue: float, sigma: float) -> float:
    """A measured refinement's level for ``residue`` left by the sub-image pass at ``sigma`` (8-bit)."""
    return max(REFINE_RESIDUAL_SCALE * residue, REFINE_SIGMA_SCALE * sigma)


def measured_refinement(schedule: NoiseSchedule, image: np.ndarray, sigma: float, mode: str = "fidelity",
                        steps: int | None = None) -> RealPass | None:
    """The refinement pass for ``image`` (the output of the sub-image pass at ``sigma``, float in [0, 1]) at
    REFINE_RESIDUAL_SCALE x the noise measured in it, at least REFINE_SIGMA_SCALE x ``sigma``; None when
    that is below the finest level."""
    level = _measured_level(analyse_noise(image).sigma, sigma)
    plan = plan_denoise(schedule, level, mode, steps)
    return RealPass("full", plan, measured=True) if plan.timestep >= 0 else None


def _with_previews(ev: StepEvent, image: np.ndarray, max_size: int | None) -> StepEvent:
    x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None].mul(2).sub(1)
    if x.shape[1] == 1:
        x = x.expand(1, 3, *x.shape[2:])
    p = to_preview(x, max_size)
    return replace(ev, x_t=p, pred_x0=p.copy())


def denoise_real(
    model: torch.nn.Module,
    schedule: NoiseSchedule,
    image: np.ndarray,
    analysis: NoiseAnalysis | None = None,
    *,
    device: str | torch.device = "cpu",
    tile: int | None = 512,
    seed: int = 0,
    preview: bool = False,
    preview_max_size: int | None = 256,
    ensemble: int = 1,
    dtype: torch.dtype | None = None,
    mode: str = "fidelity",
    steps: int | None = None,
    on_tile: TileCallback | None = None,
    plan: RealPlan | None = None,
) -> Generator[StepEvent, None, np.ndarray]:
    """Denoise a real photo (float HxW[xC] in [0, 1]); yields StepEvents numbered 1..total over all
    passes and returns the clean float32 image (same shape as ``image``). ``total`` starts as the plan's
    (``plan_real(schedule, analysis, mode, steps).total``); a measured refinement pass sets it to the
    exact count before the pass ahead of it reports its last step, so the last event has index == total.

    ``analysis`` defaults to :func:`analyse_noise` (image). With ``correlated=False`` this is exactly
    the plain fidelity path at ``analysis.sigma_white``. Previews during the sub-image passes show
    the full image with the sub-images denoised so far. ``plan`` (from :func:`plan_real`) replaces the
    default plan for ``analysis``/``mode``/``steps``."""
    img = np.asarray(image, dtype=np.float32)
    if plan is None:
        if analysis is None:
            analysis = analyse_noise(img)
        plan = plan_real(schedule, analysis, mode, steps)
    if not plan.passes:
        return img.copy()
    squeeze = img.ndim == 2
    cur = img[..., None] if squeeze else img
    total, done = plan.total, 0
    common = dict(device=device, tile=tile, ensemble=ensemble, dtype=dtype, on_tile=on_tile)
    held = None  # the previous pass's last event: yielded once a measured pass has fixed the total
    for planned in plan.passes:
        p = planned
        if planned.measured:
            p = measured_refinement(schedule, cur, plan.sigma, mode, steps)
            total += (p.steps if p else 0) - planned.steps
        if held is not None:
            yield replace(held, total=total)
            held = None
        if p is None:
            continue
        if p.kind == "full":
            gen = denoise_image(model, schedule, cur, p.plan, seed=seed, preview=preview,
                                preview_max_size=preview_max_size, **common)
            cur = yield from _renumbered(gen, done, total)
            done += p.steps
            continue
        s = PD_STRIDE
        subs, size = pd_split(cur, s)
        canvas = cur.copy() if preview else None
        for k, sub in enumerate(subs):
            gen = denoise_image(model, schedule, sub, p.plan, seed=seed + k, **common)
            # each step is reported as it ends, but the sub-image's last one only once the sub-image is
            # finished, to carry its preview (no tile is reported in between: holding back every step by one
            # put the tiles of each step under the step before, and the progress bars went backwards)
            last = None
            while True:
                try:
                    ev = next(gen)
                except StopIteration as stop:
                    subs[k] = stop.value
                    break
                ev = replace(ev, index=done + ev.index, total=total)
                if ev.index < done + p.plan.steps:
                    yield ev
                else:
                    last = ev
            done += p.plan.steps
            if preview:
                i, j = divmod(k, s)
                rows, cols = len(range(i, size[0], s)), len(range(j, size[1], s))
                canvas[i::s, j::s] = subs[k][:rows, :cols]
                last = _with_previews(last, canvas, preview_max_size)
            if k < len(subs) - 1:
                yield last
            else:
                held = last
        cur = pd_merge(subs, size, s)
    if held is not None:
        yield held
    out = np.ascontiguousarray(cur, dtype=np.float32)
    return out[..., 0] if squeeze else out


def _renumbered(gen: Generator[StepEvent, None, np.ndarray], offset: int, total: int):
    while True:
        try:
            ev = next(gen)
        except StopIteration as stop:
            return stop.value
        yield replace(ev, index=offset + ev.index, total=total)
