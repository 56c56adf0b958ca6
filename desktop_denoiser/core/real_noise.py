"""Denoising real camera photos (correlated, signal-dependent noise) with the DDPM's network.

Real photos are not "clean + white Gaussian noise": demosaicing, in-camera noise reduction and JPEG
make the noise spatially correlated (neighbouring pixels' noise correlates at ~0.7) and channel
correlated, and its level depends on brightness. The white-noise PCA estimator
(:func:`~desktop_denoiser.core.noise_estimation.estimate_sigma`) then sees only the small
high-frequency tail of the noise spectrum and reports a sigma ~10x too low, so the plain path barely
denoises such a photo.

This module has two parts:

* :func:`analyse_noise` measures the noise of *flat* image blocks directly: the per-pixel variance of
  8x8 blocks (block mean removed), a low quantile over blocks (flat blocks only; texture only adds
  variance), corrected for (a) the part of correlated noise that the block-mean removal takes away
  and (b) the quantile of the block-variance distribution (a scaled chi-square whose degrees of
  freedom follow from the measured spatial and channel correlation, Satterthwaite). The same flat
  blocks give the lag-1 spatial correlation ``rho1`` of the noise: ~0 for white noise, 0.6-0.8 for
  camera JPEGs. ``correlated = rho1 > CORRELATION_THRESHOLD``, unless a per-block plane fit explains
  the flat blocks (smooth gradients of a clean photo, see MIN_PLANE_RESIDUAL), they are not
  Gaussian (fine texture of a clean photo, see MAX_TEXTURE_EXCESS and the table below), or white noise
  explains most of their level (weak white noise over fine texture, see WHITE_MIN_SIGMA). Flat blocks
  taken for texture whose variance follows the 2x2 colour-filter grid (noise of a raw converter's
  lossless export, or clean demosaiced detail) are camera noise when they are strong and Gaussian once
  each grid phase is scaled to the same variance (``mosaic_noise``, run at MOSAIC_AUTO_SIGMA_SCALE x the
  measured level); otherwise (``mosaic_pattern``) they only make the app *suggest* the camera path,
  which then runs at MOSAIC_SIGMA_SCALE x the measured level (``camera_sigma``). A noise level
  function (sigma per brightness bin) is reported for information (a spatially varying sigma built
  on it measured worse than one global sigma).

* :func:`denoise_real` denoises with the pixel-shuffle down-sampling of Zhou et al. 2020 ("When
  AWGN-based denoiser meets real noises"): the image is split into 2x2 = 4 sub-images (every other
  pixel in each direction), in which spatially correlated noise is much closer to white, each
  sub-image is denoised by the network at the per-pixel sigma, and they are re-interleaved; a
  full-resolution pass then removes the residual noise and the 2-pixel pattern left by the independent
  sub-image results, at 0.5 x sigma (REFINE_LEVEL = "measured", a level measured in their result, is
  kept for comparison). For white noise (``correlated=False``) it is exactly the plain
  fidelity path (white-noise sigma -> t*, one x0 prediction). Cost: 2 network evaluations of the
  image's size (4 quarter-size sub-images + 1 full), i.e. ~2x the plain fidelity path.
  ``STRATEGY = "direct"`` (one full-resolution pass) is kept for comparison.

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
| **the camera network** (stage 7 + 12,655 CPU steps on a simulated camera, core/camera_sim.py) | PD at the per-pixel sigma (default) | **37.19** | **37.52** | **36.84** |
| the camera network | direct, one pass at 1.5 x sigma | 37.16 | 37.48 | 36.82 |

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

Clean photos must come back unchanged, but fine texture (stone, grass, fur, film grain) in the
flattest blocks is as spatially correlated as camera noise, so rho1 alone took 46 of the 68 clean
CBSD68 images for noisy (sigma up to 20) and smeared them. The texture test (kurtosis of the flat
blocks against phase-randomised surrogates, :func:`texture_excess`) was measured on the PolyU noisy
photos (PSNR) and on clean photos (how many come back at >= 45 dB vs the input; stage-2 model at
10,000 steps, bf16):

| MAX_TEXTURE_EXCESS | PolyU noisy (dB) | PolyU *_mean | CBSD68 | McMaster | CBSD68 as JPEG q90 (every 2nd) |
|---|---:|---:|---:|---:|---:|
| none (rho1 only) | 36.66 | 28/29 | 22/68 | 5/18 | 14/34 |
| 0.4 | 36.66 | 28/29 | 48/68 | 14/18 | 23/34 |
| **0.3** (default) | 36.66 | 28/29 | 51/68 | 14/18 | 25/34 |
| 0.25 | 36.66 | 28/29 | 55/68 | 14/18 | 25/34 |
| 0.2 | 36.43 | 29/29 | 61/68 | 14/18 | 27/34 |

PolyU camera noise scores -0.23..+0.23, so 0.3 keeps a margin for other cameras. Still taken for noise:
clean photos with near-Gaussian fine texture or film grain (CBSD68 are film scans); 4 McMaster images
fail even on the white-noise path (its PCA estimate is 1-3 there). With the stage-3 model three
more McMaster photos (sigma estimate 1.7-2.0) came back at 44.6-44.9 dB (11/18); the shipped stage-4
model, trained with saturated colours too, passes 16/18 McMaster, 52/68 CBSD68 and 28/29 PolyU
references.

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
from .metrics import LUMA_WEIGHTS
from .noise_estimation import chi2_ratio_quantile, estimate_sigma
from .sampler import StepEvent, to_preview
from .schedule import NoiseSchedule
from .tiling import TileCallback

__all__ = ["NoiseAnalysis", "RealPlan", "analyse_noise", "denoise_real", "plan_real", "measured_refinement",
           "luma_sigma", "pd_split", "pd_merge", "mosaic_ratio",
           "white_over_texture", "luma_white_sigma"]

# -- analysis constants ------------------------------------------------------------------------------
BLOCK = 8  # block side (pixels)
QUANTILE = 0.1  # low quantile of the block variances that is taken as "flat" (noise-only)
MAX_LAG = 3  # spatial correlation measured for lags |dy|, |dx| <= MAX_LAG
MAX_BLOCKS = 30000  # random subset of blocks on large photos (deterministic seed)
FLAT_VARIANCE = 0.25  # 8-bit^2: blocks flatter than this (JPEG-quantised to a constant) carry no noise
CORRELATION_THRESHOLD = 0.3  # rho1 above this -> correlated (white: ~0.0-0.1, camera JPEG: 0.6-0.8)
NLF_EDGES = (0.0, 32.0, 64.0, 96.0, 128.0, 160.0, 192.0, 224.0, 256.0)
NLF_MIN_BLOCKS = 40
# Smooth gradients inside a block look like strongly correlated "noise" once only the block mean is
# removed. If a per-block plane fit explains most of the flat blocks' variance (median residual
# fraction below this), the variance is signal, not noise: a clean photo (measured: clean JPEG
# references 0.11-0.13, smooth synthetic images 0.03-0.09; real noisy camera JPEGs 0.34-0.96).
MIN_PLANE_RESIDUAL = 0.2
# Fine texture (stone, grass, fur, film grain) in the flattest blocks of a clean photo has the same
# second-order statistics as camera noise (rho1 ~0.7), but it is not Gaussian: edges and strands are
# phase-coherent, which raises the kurtosis of the block residuals above that of a Gaussian field with
# the very same spectrum. texture_excess = kurtosis(flat-block residuals) - kurtosis of the same blocks
# with randomised Fourier phases (a surrogate with identical power spectra and cross-channel spectra).
# Measured (see the module docstring): PolyU camera noise -0.23..+0.23; clean photos above 0.3 in
# 34/68 CBSD68 and 14/14 McMaster images. Above MAX_TEXTURE_EXCESS the image is not treated as noisy.
MAX_TEXTURE_EXCESS = 0.3
TEXTURE_SURROGATES = 4  # phase-randomised surrogates averaged (deterministic seed)
# Noise demosaiced from a colour-filter mosaic and saved without compression (PNG/TIFF straight from a raw
# converter) is not stationary: in each colour channel the pixels the sensor measured carry more noise
# than the interpolated ones, a pattern locked to the 2x2 filter grid, which the texture test reads as
# texture. mosaic_ratio measures it (variance of the flat blocks' residuals at each 2x2 phase, largest
# over smallest, per channel, averaged): synthetic raw exports (RGGB, bilinear or edge-aware demosaicing,
# 8-bit PNG) 1.8-4.6 with noise, but also 1.5-3.6 *without* noise (demosaicing smooths detail at the
# interpolated pixels as it smooths noise); the clean dev photos 1.01-1.14 and PolyU's JPEGs 1.00-1.12.
# So the pattern alone is not acted on (that smeared noise-free exports by up to 14 dB, see
# benchmarks/RESULTS.md); by itself it only makes the app suggest the camera-noise path
# (NoiseAnalysis.mosaic_pattern).
MIN_MOSAIC_RATIO = 1.5
# What tells strong demosaiced noise from demosaiced detail: scaled so that each 2x2 phase of each channel
# has the same variance (mosaic_excess), the flat blocks of a noisy export are Gaussian again (texture
# excess <= MAX_TEXTURE_EXCESS for 90-98 % of synthetic exports at noise std 9-17), detail is not. Noise-free
# exports of 302 photos (every 2nd CBSD432, all of CBSD68 and McMaster; bilinear and edge-aware
# demosaicing): 40 of 604 read a level >= 10, and none of them passes (mosaic excess 0.5-2.6 from 12 up);
# of 49 other photos one does (CBSD432 130034, all grass, level 14.5, excess 0.19: its false-colour
# speckle is smoothed, 27.7 dB against the export). From MOSAIC_AUTO_SIGMA up the camera path then runs
# by itself (NoiseAnalysis.mosaic_noise). Chosen on 24 CBSD432 training photos (both demosaicing
# methods), against Auto before (+0.3-0.5 dB over the noisy input): at noise std ~9 / ~12 / ~17 / ~28
# +1.2 / +3.8 / +4.4 / +2.8 dB on average (from 12: -0.1 / +2.0 / +4.4 / +2.8), at std ~7 -0.1. What it
# costs: all-texture scenes (grass, shrubs) read 15-19 at noise std 7-12 and lose up to 4.8 dB there; the
# scale (0.7 / 0.8 / 0.9 / 1.0 x the level) trades those against strong noise (+3.8 / +4.4 / +4.7 / +4.8
# at std ~17), and 0.8 is the middle.
MOSAIC_AUTO_SIGMA = 10.0
MOSAIC_AUTO_SIGMA_SCALE = 0.8
# When the user then chooses the camera-noise path, it runs at this fraction of the measured level: the
# detail left in the flat blocks inflates the measurement and the interpolated pixels carry less noise
# than the average. Chosen on synthetic raw exports of 12 CBSD432 training photos (mean gain over the
# noisy input for 0.5 / 0.6 / 0.7 / 0.8 / 1.0 x the level at two noise levels and both demosaicing methods:
# +2.01 / +2.32 / +2.29 / +1.97 / +0.86 dB); at 1.0 x, noise of std ~5 came out 0.3-0.6 dB *below* the
# noisy input (benchmarks/raw_pipeline.py has the dev-photo check).
MOSAIC_SIGMA_SCALE = 0.6
# JPEG with 4:2:0 chroma subsampling (the default of cameras, phones and most software) leaves the chroma
# planes smooth at the pixel scale, so most directions of the PCA estimator's 7x7x3 patches carry no
# noise and its estimate collapses: white noise of sigma 25 is read as 1-2 and the photo is left as is.
# The flat blocks still measure the noise: flat-block sigma / PCA sigma was 1.0-1.3 for white noise in
# PNG and 4:4:4 JPEG (1.8 on a textured photo) and 8-20 after 4:2:0 JPEG. Using the flat-block sigma
# automatically gained +3 to +4 dB at sigma 25-50, but a clean rock-and-fur photo (CBSD432 326038, 4:2:0
# q90) shows the same signature at 16.6, so the signature alone is not enough (the channel test below).
# Also measured: the grey (weak-texture) estimate on the luma channel, which 4:2:0 keeps at full
# resolution, tracks the noise before compression (26.8 / 47.8 at sigma 25 / 50, q90), but reads 16-26 on
# 4 of the 432 clean CBSD432 photos saved as 4:2:0 q90 (fur, rock), so it would smear them: not adopted.
HIDDEN_NOISE_RATIO = 3.0
HIDDEN_NOISE_MIN_SIGMA = 5.0  # below this a wrong guess costs little and a hint would be noise itself
# Applying the flat-block level automatically is worth +2.7 / +4.4 / +5.9 dB at sigma 15 / 25 / 50 (12
# CBSD432 photos, q90 4:2:0; Auto gained +0.0 before). What tells such noise from the clean photos with
# the same signature is the correlation of the flat blocks' residuals between colour channels: white
# noise is independent per channel before the JPEG and stays partly so, 0.75-0.86 at sigma 25-50 and
# 0.83-0.93 at 15 (65 photos each), while the 9 of 518 clean CBSD432/CBSD68/McMaster photos saved as q90
# 4:2:0 that show the signature (fine fur, rock and sand in near-grey scenes) read 0.88-0.98 (none at
# q75, 2 at q95: 0.95, 0.98). At or below HIDDEN_NOISE_MAX_CHANNEL_CORR and from HIDDEN_NOISE_AUTO_SIGMA
# up, the level is applied (NoiseAnalysis.hidden_noise_applied): 0 of the 518 clean photos at q75, q90 and
# q95; 6 / 55 / 64 / 64 of 65 noisy ones at sigma 10 / 15 / 25 / 50 (q90). Otherwise it is only suggested.
HIDDEN_NOISE_MAX_CHANNEL_CORR = 0.90
HIDDEN_NOISE_AUTO_SIGMA = 8.0
# The flat blocks measure the noise *left* per pixel: 4:2:0 averages each chroma sample over 2x2 pixels,
# which removes much of white noise's chroma part, so they read ~0.75 of the white-noise sigma (the
# luminance-only PCA estimate / 0.668, which chroma subsampling leaves alone, is 1.15-1.45x the flat level
# on 130 noisy CBSD432/CBSD68/McMaster photos at sigma 10 and 15, median 1.3). The network removes such
# noise best at ~1.1-1.2x the flat level, more at heavier noise (JPEG removes a larger share of weak
# noise). 24 CBSD432 photos at q90 4:2:0 where the level is applied, 1.0 / 1.1 / 1.15 / 1.2 / 1.3 x:
# sigma 15: 29.91 / 29.93 / 29.85 / 29.73 / 29.41 dB; 25: 27.56 / 27.87 / 27.88 / 27.80 / 27.46; 50: 23.61 /
# 24.83 / 25.06 / 25.11 / 24.93 (sigma known: 29.91 / 27.67 / 24.63). 1.1 loses nowhere against 1.0.
# Applied and suggested levels both use it.
HIDDEN_NOISE_LEVEL_SCALE = 1.1
# Weaker hidden noise (sigma ~8-12 at q90) mostly reads a flat-block level below HIDDEN_NOISE_AUTO_SIGMA or a
# channel correlation of 0.90-0.95 (the luma part of the noise weighs more after 4:2:0), so it was only
# suggested: at sigma 8 / 10 / 12 (q90 4:2:0, 108 CBSD432 training photos each) the signature showed on 66 /
# 90 / 98 of them and the level was applied on 0 / 13 / 54. The luminance plane, which 4:2:0 keeps at full
# resolution, confirms it: its white-noise (PCA) estimate (``sigma_luma``, per-channel units) reads
# 1.1-1.6x the flat-block level where white noise fills the flat blocks (~1.15x the noise before
# compression; chroma subsampling removed part of it from the flat blocks), and less where texture inflates
# the flat blocks (the level is then too high: below 1.1x on the photos that lost with it). Of the 11 clean
# photos with the signature (518 photos at q75 / q90 / q95), 10 read a channel correlation of 0.95-0.98 or
# a luma estimate of 0.1-0.96x their level, and 170054 (cc 0.92, 0.96x) a texture excess of 0.2. So the
# level is also applied at a channel correlation up to HIDDEN_NOISE_LUMA_MAX_CHANNEL_CORR, with flat
# blocks as Gaussian as noise (texture excess up to HIDDEN_NOISE_LUMA_MAX_TEXTURE) and a luma estimate of at
# least HIDDEN_NOISE_LUMA_MIN_RATIO x the level (NoiseAnalysis.hidden_noise_luma_confirmed): 134 of the 187
# training photos that had only the suggestion, +3.4 dB on average over them, the least +0.8 (the luma
# estimate itself as the level: +2.4, worst -1.1). Auto over all 108 at sigma 8 / 10 / 12: 32.14 / 30.79 /
# 31.14 -> 33.75 / 32.77 / 31.88 dB (sigma known 34.34 / 33.13 / 32.07). No clean photo of the 518 at q75,
# q90 or q95 passes, and no camera photo (PolyU, the synthetic raw path, simulated cameras) shows the
# signature; the textured photos that lost 2-8 dB at their level (all-grass, fur, rock) read 0.95-0.98
# (benchmarks/RESULTS.md, JPEG 4:2:0 section, has the dev-photo check).
HIDDEN_NOISE_LUMA_MAX_CHANNEL_CORR = 0.93
HIDDEN_NOISE_LUMA_MAX_TEXTURE = 0.15
HIDDEN_NOISE_LUMA_MIN_RATIO = 1.1
# Heavier JPEG compression (q75, PIL's default) quantises the chroma more coarsely, which raises the flat
# blocks' channel correlation: white noise of sigma 20-25 read up to 0.945 there, and photos that showed the
# signature above 0.93 were left as they were. From a flat-block level of HIDDEN_NOISE_LUMA_STRONG_SIGMA up
# the channel correlation may reach HIDDEN_NOISE_LUMA_STRONG_MAX_CHANNEL_CORR: 54 CBSD432 training photos at
# q75, sigma 20 / 25: applied on 31 -> 41 / 39 -> 51 of them, Auto 28.75 / 28.10 -> 29.67 / 29.01 dB (sigma
# known 29.52 / 28.54), each of the 22 switched photos +1.8 dB or more (+4.5 on average). The clean photos
# with the signature and such a level read 0.98; noisy textured photos at a level of 12-13.5 (q90, sigma
# 10-12; 28075 is all fine grey texture) read 0.93-0.944 and would lose up to 1.6 dB, hence the level bound.
HIDDEN_NOISE_LUMA_STRONG_SIGMA = 14.0
HIDDEN_NOISE_LUMA_STRONG_MAX_CHANNEL_CORR = 0.945
# White noise over fine texture: where white noise is weak, the flattest blocks of a textured photo still
# hold texture (std 5-17 in 8-bit units), which is spatially correlated, so white noise of sigma 2-10 over
# it read as camera noise (rho1 0.3-0.5; 47 / 23 / 11 / 5 of 108 CBSD432 training photos at sigma 2 / 5 /
# 8 / 10) and the camera path ran at the flat blocks' level, 1.2-5x the true sigma: -2.4 to -17.6 dB on
# each such photo, 95 of 140 below the noisy input. Camera noise hardly reaches the white-noise (PCA) estimate,
# because demosaicing, noise reduction and JPEG remove its finest scales: PolyU reads sigma_white 0.1-0.4
# at a flat-block level 4.7-17x larger, simulated camera JPEGs (core/camera_sim.py) mostly below 2. So
# where sigma_white is at least WHITE_MIN_SIGMA and the flat-block level between it and WHITE_MAX_RATIO x
# it, the rho1 test is overruled and the photo takes the white path at sigma_white (white_over_texture;
# the switched photos' ratio was 1.2-5.3; a noise-free demosaiced export whose white estimate read 4.7 at a
# flat level of 1.2 stays where it was, 55 dB against its input instead of 41). Measured
# on those 108 photos, switching gained +7.5 / +6.8 / +6.3 / +7.0 dB on the switched ones (never less than
# +2.4); 2 of 216 simulated camera photos switch (weak noise, -0.04 and -0.23 dB), 5 of 108 photos with
# sigma 5 saved as JPEG q90 4:4:4 (-0.21 dB on average); no clean dev photo (colour or grey) and no PolyU
# photo switches. Strong noise demosaiced into a lossless export (mosaic_noise: sigma_white 3-6 at 4-5x)
# has its own test and is not affected.
WHITE_MIN_SIGMA = 2.0
WHITE_MAX_RATIO = 6.0

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


@dataclass(frozen=True)
class NoiseAnalysis:
    """What :func:`analyse_noise` measured (all sigmas in 8-bit units, per RGB channel)."""

    sigma: float  # per-pixel noise std-dev measured in flat blocks (right for correlated noise)
    correlated: bool  # spatially correlated (real camera) noise -> use the real path
    sigma_white: float  # white-noise PCA estimate (noise_estimation.estimate_sigma): the plain path's sigma
    rho1: float  # lag-1 spatial correlation of the noise (mean of horizontal and vertical)
    channel_corr: float  # mean correlation of the noise between colour channels (0 for gray)
    nlf_levels: tuple[float, ...] = ()  # brightness bin centres (8-bit)
    nlf_sigma: tuple[float, ...] = ()  # sigma per bin (nan where too few flat blocks)
    blocks: int = 0  # blocks used
    texture_excess: float = 0.0  # non-Gaussianity of the flat blocks (texture, not noise, if > MAX_TEXTURE_EXCESS)
    mosaic_ratio: float = 1.0  # 2x2-phase variance pattern of the flat blocks (demosaicing; see MIN_MOSAIC_RATIO)
    # strong noise demosaiced from a raw mosaic (see MOSAIC_AUTO_SIGMA): correlated although texture_excess
    # is high, because that excess comes from the 2x2 grid's variance pattern (mosaic_excess is low)
    mosaic_noise: bool = False
    # white-noise (PCA) estimate of the luminance plane (JPEG's Y), in per-channel RGB units; measured only
    # where the hidden-noise signature is seen (nan elsewhere; see HIDDEN_NOISE_LUMA_MIN_RATIO)
    sigma_luma: float = float("nan")

    @property
    def mosaic_pattern(self) -> bool:
        """Correlated flat-block variance that the texture test took for texture but that follows the 2x2
        colour-filter grid: noise demosaiced from a raw file and saved losslessly, or clean demosaiced
        detail; the two cannot be told apart, so the camera-noise path is only *suggested*."""
        return not self.correlated and _grid_signature(self.rho1, self.texture_excess, self.mosaic_ratio)

    @property
    def camera_sigma(self) -> float:
        """The per-pixel level the camera-noise path runs at when it is chosen without a sigma:
        ``sigma``, MOSAIC_AUTO_SIGMA_SCALE x ``sigma`` for :attr:`mosaic_noise`, or MOSAIC_SIGMA_SCALE x
        ``sigma`` for a :attr:`mosaic_pattern`."""
        if self.mosaic_noise:
            return self.sigma * MOSAIC_AUTO_SIGMA_SCALE
        return self.sigma * MOSAIC_SIGMA_SCALE if self.mosaic_pattern else self.sigma

    @property
    def hidden_noise_signature(self) -> bool:
        """The white-noise estimate may have been fooled by JPEG chroma subsampling: the flat blocks
        measure far more noise than the PCA estimate (see :data:`HIDDEN_NOISE_RATIO`)."""
        white = not self.correlated and self.rho1 <= CORRELATION_THRESHOLD and self.texture_excess <= MAX_TEXTURE_EXCESS
        return white and self.sigma >= HIDDEN_NOISE_MIN_SIGMA and self.sigma > HIDDEN_NOISE_RATIO * self.sigma_white

    @property
    def hidden_noise_level(self) -> float:
        """The white-noise level the flat blocks imply where chroma subsampling hid the noise:
        HIDDEN_NOISE_LEVEL_SCALE x ``sigma`` (meaningful only with :attr:`hidden_noise_signature`)."""
        return HIDDEN_NOISE_LEVEL_SCALE * self.sigma

    @property
    def hidden_noise_applied(self) -> bool:
        """Whether the white path runs at the flat-block level instead of ``sigma_white``: the
        hidden-noise signature, with flat-block residuals that are not as correlated between channels
        as those of clean fine texture (see HIDDEN_NOISE_MAX_CHANNEL_CORR), or confirmed by the
        luminance plane (:attr:`hidden_noise_luma_confirmed`)."""
        if not self.hidden_noise_signature:
            return False
        return ((self.sigma >= HIDDEN_NOISE_AUTO_SIGMA and self.channel_corr <= HIDDEN_NOISE_MAX_CHANNEL_CORR)
                or self.hidden_noise_luma_confirmed)

    @property
    def hidden_noise_luma_confirmed(self) -> bool:
        """The hidden-noise signature with Gaussian flat blocks, a channel correlation below that of clean
        near-grey texture (higher allowed from HIDDEN_NOISE_LUMA_STRONG_SIGMA up), and a luminance-plane
        estimate that sees at least as much white noise as the flat blocks (HIDDEN_NOISE_LUMA_MIN_RATIO):
        weaker noise hidden by chroma subsampling, or stronger noise under heavier compression."""
        strong = self.sigma >= HIDDEN_NOISE_LUMA_STRONG_SIGMA
        max_corr = HIDDEN_NOISE_LUMA_STRONG_MAX_CHANNEL_CORR if strong else HIDDEN_NOISE_LUMA_MAX_CHANNEL_CORR
        return (self.hidden_noise_signature and self.channel_corr <= max_corr
                and self.texture_excess <= HIDDEN_NOISE_LUMA_MAX_TEXTURE
                and self.sigma_luma >= HIDDEN_NOISE_LUMA_MIN_RATIO * self.sigma)

    @property
    def hidden_noise_sigma(self) -> float | None:
        """The :attr:`hidden_noise_level` to *suggest* to the user where the signature is seen but the
        level is not applied (it also occurs on some clean, finely textured photos), else None."""
        return self.hidden_noise_level if self.hidden_noise_signature and not self.hidden_noise_applied else None

    @property
    def white_sigma(self) -> float:
        """The sigma of the white-noise path: ``sigma_white``, or :attr:`hidden_noise_level` where noise
        hidden by JPEG chroma subsampling is recognised (:attr:`hidden_noise_applied`)."""
        return self.hidden_noise_level if self.hidden_noise_applied else self.sigma_white

    @property
    def denoise_sigma(self) -> float:
        """The sigma the image will be denoised with (``sigma`` when correlated, else :attr:`white_sigma`)."""
        return self.sigma if self.correlated else self.white_sigma


def _as_float_image(image: np.ndarray) -> np.ndarray:
    x = np.asarray(image)
    if x.ndim == 2:
        x = x[..., None]
    if x.ndim != 3 or x.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected an HxW, HxWx1, HxWx3 or HxWx4 image, got shape {x.shape}")
    return x[..., :3] if x.shape[2] == 4 else x


def _sample_blocks(x: np.ndarray, b: int, max_blocks: int, seed: int = 0) -> np.ndarray:
    """(N, b, b, C) float64 copies of non-overlapping b x b blocks (a random subset on big images)."""
    H, W, C = x.shape
    h, w = H // b, W // b
    idx = np.arange(h * w)
    if idx.size > max_blocks:
        idx = np.sort(np.random.default_rng(seed).choice(idx.size, max_blocks, replace=False))
    r, c = np.divmod(idx, w)
    d = np.arange(b)
    rows = (r * b)[:, None, None] + d[None, :, None]
    cols = (c * b)[:, None, None] + d[None, None, :]
    return x[rows, cols].astype(np.float64)  # (N, b, b, C): copies only the sampled blocks


def _autocorrelation(R: np.ndarray, L: int) -> np.ndarray:
    """Normalised autocorrelation r[dy+L, dx+L] of the residual blocks R (N, b, b, C), channels pooled."""
    b = R.shape[1]
    den = float((R * R).mean())
    r = np.zeros((2 * L + 1, 2 * L + 1))
    if den <= 0:
        r[L, L] = 1.0
        return r
    for dy in range(L + 1):
        for dx in range(-L, L + 1):
            a = R[:, dy:, max(dx, 0): b + min(dx, 0)]
            c = R[:, : b - dy, max(-dx, 0): b - max(dx, 0)]
            r[L + dy, L + dx] = r[L - dy, L - dx] = float((a * c).mean()) / den
    return r


def _correlation_model(r: np.ndarray, b: int) -> tuple[np.ndarray, float, float]:
    """Undo the block-mean removal on the measured autocorrelation and return (rho, mean_factor, dof_b).

    With the block mean removed, E[residual autocovariance] ~= c(d) - S sigma^2 / n with
    S = sum_d (1-|dy|/b)(1-|dx|/b) rho(d) and n = b*b, so rho = r (1 - S/n) + S/n (fixed point).
    mean_factor = E[block variance] / sigma^2 = tr(P R P)/n and dof_b = tr(P R P)^2 / tr((P R P)^2)
    (Satterthwaite degrees of freedom of one channel's block variance)."""
    L = (r.shape[0] - 1) // 2
    n = b * b
    dy, dx = np.mgrid[-L: L + 1, -L: L + 1]
    w = (1 - np.abs(dy) / b) * (1 - np.abs(dx) / b)
    rho = r.copy()
    for _ in range(100):
        S = float((w * rho).sum())
        S = min(S, 0.9 * n)
        new = r * (1 - S / n) + S / n
        if np.max(np.abs(new - rho)) < 1e-7:
            rho = new
            break
        rho = new
    rho = np.clip(rho, -1.0, 1.0)
    rho[L, L] = 1.0
    yy, xx = np.divmod(np.arange(n), b)
    dY, dX = yy[:, None] - yy[None, :], xx[:, None] - xx[None, :]
    inside = (np.abs(dY) <= L) & (np.abs(dX) <= L)
    Rm = np.where(inside, rho[np.clip(dY + L, 0, 2 * L), np.clip(dX + L, 0, 2 * L)], 0.0)
    Rm = Rm - Rm.mean(axis=0, keepdims=True)
    Rm = Rm - Rm.mean(axis=1, keepdims=True)  # P R P with P = I - 11'/n
    tr1 = float(np.trace(Rm))
    tr2 = float((Rm * Rm).sum())
    mean_factor = max(tr1 / n, 0.05)
    dof = tr1 * tr1 / tr2 if tr2 > 0 else float(n - 1)
    return rho, mean_factor, max(dof, 1.0)


def _block_kurtosis(R: np.ndarray) -> float:
    """Mean fourth moment of the residuals, each block normalised by its own variance (3 for a large
    white Gaussian block; lower for few effective degrees of freedom)."""
    v = (R * R).mean(axis=(1, 2, 3), keepdims=True)
    return float(((R * R / np.maximum(v, 1e-12)) ** 2).mean())


def texture_excess(R: np.ndarray, *, surrogates: int = TEXTURE_SURROGATES, seed: int = 0) -> float:
    """Kurtosis of the mean-removed blocks ``R`` (N, b, b, C) minus that of phase-randomised surrogates.

    Each surrogate multiplies every block's 2-D spectrum (all channels alike) by a random Hermitian
    phase field, which keeps each block's power spectrum and its cross-channel spectra (hence its
    correlation structure) but makes it Gaussian-like. Noise: ~0; texture: > 0."""
    if R.shape[0] == 0:
        return 0.0
    X = np.fft.fft2(R, axes=(1, 2))
    rng = np.random.default_rng(seed)
    k = []
    for _ in range(surrogates):
        phase = np.angle(np.fft.fft2(rng.standard_normal(R.shape[:3]), axes=(1, 2)))[..., None]
        k.append(_block_kurtosis(np.real(np.fft.ifft2(X * np.exp(1j * phase), axes=(1, 2)))))
    return _block_kurtosis(R) - float(np.mean(k))


def white_over_texture(sigma: float, sigma_white: float) -> bool:
    """Whether flat blocks that look correlated are white noise over fine texture rather than camera noise:
    a white-noise estimate of at least WHITE_MIN_SIGMA that explains a large share of the flat blocks'
    level (``sigma`` below WHITE_MAX_RATIO x ``sigma_white``) and is part of it (``sigma`` at least
    ``sigma_white``: white noise is in the flat blocks too; a white estimate above their level comes from
    detail elsewhere, e.g. the false colour of a demosaiced, noise-free export)."""
    return sigma_white >= WHITE_MIN_SIGMA and sigma_white <= sigma < WHITE_MAX_RATIO * sigma_white


def _grid_signature(rho1: float, excess: float, ratio: float) -> bool:
    """Correlated flat-block variance that the texture test takes for texture and that follows the 2x2
    colour-filter grid (demosaiced noise or detail)."""
    return rho1 > CORRELATION_THRESHOLD and excess > MAX_TEXTURE_EXCESS and ratio >= MIN_MOSAIC_RATIO


def _phase_variances(R: np.ndarray) -> np.ndarray:
    """(2, 2, C) mean square of the residuals ``R`` (N, b, b, C; blocks at even image coordinates) at each
    2x2 pixel phase, per channel."""
    return np.array([[(R[:, i::2, j::2, :] ** 2).mean(axis=(0, 1, 2)) for j in range(2)] for i in range(2)])


def mosaic_ratio(R: np.ndarray) -> float:
    """Largest over smallest variance of the residuals ``R`` (N, b, b, C; blocks at even image
    coordinates) at the four 2x2 pixel phases, per channel, averaged over channels: ~1 for stationary
    noise or texture, 1.5-4.6 after demosaicing (see MIN_MOSAIC_RATIO)."""
    if R.shape[0] == 0 or R.shape[1] < 2:
        return 1.0
    v = _phase_variances(R).reshape(4, -1)
    return float(np.mean(v.max(axis=0) / np.maximum(v.min(axis=0), 1e-12)))


def mosaic_excess(R: np.ndarray, *, seed: int = 0) -> float:
    """:func:`texture_excess` of the residuals ``R`` (blocks at even image coordinates) with each 2x2 phase of
    each channel scaled to unit variance: demosaiced noise is Gaussian again (~0), detail is not."""
    if R.shape[0] == 0 or R.shape[1] < 2:
        return 0.0
    std = np.sqrt(np.maximum(_phase_variances(R), 1e-12))
    S = R.copy()
    for i in range(2):
        for j in range(2):
            S[:, i::2, j::2, :] /= std[i, j]
    return texture_excess(S, seed=seed)


def _plane_residual_fraction(R: np.ndarray) -> float:
    """Median over blocks of the share of the (mean-removed) block variance that a plane fit leaves."""
    b = R.shape[1]
    c = np.arange(b) - (b - 1) / 2
    gy = np.repeat(c[:, None], b, axis=1)[None, :, :, None]
    gx = np.repeat(c[None, :], b, axis=0)[None, :, :, None]
    norm = float((c * c).sum() * b)
    ay = (R * gy).sum(axis=(1, 2), keepdims=True) / norm
    ax = (R * gx).sum(axis=(1, 2), keepdims=True) / norm
    res = R - ay * gy - ax * gx
    ratio = (res * res).mean(axis=(1, 2, 3)) / np.maximum((R * R).mean(axis=(1, 2, 3)), 1e-12)
    return float(np.median(ratio))


def analyse_noise(image: np.ndarray, *, seed: int = 0) -> NoiseAnalysis:
    """Measure the noise of ``image`` (float HxW[xC] in [0, 1]; uint8/uint16 accepted too).

    Deterministic (``seed`` picks the block subset on large photos); ~0.1 s for 512x512, bounded on
    large photos by ``MAX_BLOCKS``."""
    x = _as_float_image(image)
    if x.dtype == np.uint8:
        scale = 1.0
    elif x.dtype == np.uint16:
        scale = 255.0 / 65535.0
    else:
        scale = 255.0
    sigma_white = float(estimate_sigma(x))
    b = BLOCK
    H, W, C = x.shape
    if H < 2 * b or W < 2 * b:
        return NoiseAnalysis(sigma_white, False, sigma_white, 0.0, 0.0)
    B = _sample_blocks(x, b, MAX_BLOCKS, seed) * scale
    # blocks touching the range bounds have clipped (shrunk) noise
    lo, hi = B.min(axis=(1, 2, 3)), B.max(axis=(1, 2, 3))
    B = B[(lo > 0.5) & (hi < 254.5)]
    R = B - B.mean(axis=(1, 2), keepdims=True)
    v = (R * R).mean(axis=(1, 2, 3))
    keep = v > FLAT_VARIANCE
    if np.count_nonzero(keep) < 50:
        # too small, or (almost) no block has any variance (a clean or synthetic image): plain path
        return NoiseAnalysis(sigma_white, False, sigma_white, 0.0, 0.0, blocks=int(np.count_nonzero(keep)))
    B, R, v = B[keep], R[keep], v[keep]
    q = float(np.quantile(v, QUANTILE))
    flat = v <= np.quantile(v, min(2 * QUANTILE, 1.0))
    Rf = R[flat]
    if _plane_residual_fraction(Rf) < MIN_PLANE_RESIDUAL:
        return NoiseAnalysis(sigma_white, False, sigma_white, 0.0, 0.0, blocks=int(Rf.shape[0]))
    r = _autocorrelation(Rf, MAX_LAG)
    rho, mean_factor, dof_b = _correlation_model(r, b)
    if C > 1:
        cov = np.einsum("nijc,nijd->cd", Rf, Rf)
        d = np.sqrt(np.maximum(np.diag(cov), 1e-12))
        cc = cov / d[:, None] / d[None, :]
        channel_corr = float((cc.sum() - C) / (C * C - C))
        dof = dof_b * C * C / float((cc * cc).sum())
    else:
        channel_corr = 0.0
        dof = dof_b
    conv = chi2_ratio_quantile(QUANTILE, dof) * mean_factor  # quantile q = sigma^2 * conv
    sigma = math.sqrt(q / conv)
    rho1 = 0.5 * float(rho[MAX_LAG, MAX_LAG + 1] + rho[MAX_LAG + 1, MAX_LAG])
    excess = texture_excess(Rf, seed=seed)
    ratio = mosaic_ratio(Rf)
    mosaic_noise = bool(_grid_signature(rho1, excess, ratio) and sigma >= MOSAIC_AUTO_SIGMA
                        and mosaic_excess(Rf, seed=seed) <= MAX_TEXTURE_EXCESS)
    # noise level function: the same estimate per brightness bin
    m = B.mean(axis=(1, 2, 3))
    edges = np.asarray(NLF_EDGES)
    k = np.clip(np.digitize(m, edges) - 1, 0, len(edges) - 2)
    nlf = []
    for j in range(len(edges) - 1):
        vj = v[k == j]
        nlf.append(math.sqrt(float(np.quantile(vj, QUANTILE)) / conv) if vj.size >= NLF_MIN_BLOCKS else float("nan"))
    centres = tuple(float(0.5 * (a + c)) for a, c in zip(edges[:-1], edges[1:]))
    analysis = NoiseAnalysis(
        sigma=float(sigma),
        correlated=bool(rho1 > CORRELATION_THRESHOLD and excess <= MAX_TEXTURE_EXCESS
                        and not white_over_texture(sigma, sigma_white)) or mosaic_noise,
        sigma_white=sigma_white,
        rho1=rho1,
        channel_corr=channel_corr,
        nlf_levels=centres,
        nlf_sigma=tuple(nlf),
        blocks=int(v.size),
        texture_excess=excess,
        mosaic_ratio=ratio,
        mosaic_noise=mosaic_noise,
    )
    if analysis.hidden_noise_signature and C == 3:
        analysis = replace(analysis, sigma_luma=luma_white_sigma(x))
    return analysis


def luma_white_sigma(image: np.ndarray) -> float:
    """White-noise (PCA) estimate of the luminance plane (BT.601 Y, as JPEG's) of an RGB ``image``, in
    per-channel units: i.i.d. noise of std s per channel has std s * |LUMA_WEIGHTS| in Y."""
    w = np.asarray(LUMA_WEIGHTS, dtype=np.float32)
    full = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(np.dtype(image.dtype), 1.0)
    y = image[..., :3].astype(np.float32) @ (w / full)
    return float(estimate_sigma(y)) / float(np.linalg.norm(w))


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
              steps: int | None = None, *, refine_scale: float | None = None) -> RealPlan:
    """Passes for ``analysis``: plain fidelity at its white_sigma if not correlated; else pixel-shuffled
    sub-images at PD_SIGMA_SCALE x the per-pixel sigma (``camera_sigma``; the luminance-matched one if
    LUMA_MATCHED), then a full-resolution refinement at ``refine_scale`` x sigma (default
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
        passes.append(RealPass("pd" if PD_STRIDE > 1 else "full", pd_plan))
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
            # hold each event back by one so the last one can carry a preview of the finished sub-image
            last = None
            while True:
                try:
                    ev = next(gen)
                except StopIteration as stop:
                    subs[k] = stop.value
                    break
                if last is not None:
                    yield last
                last = replace(ev, index=done + ev.index, total=total)
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
