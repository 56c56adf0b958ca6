"""Noise analysis of a photo: how much noise, and what kind (white, camera, hidden by JPEG, or none).

:func:`analyse_noise` measures the noise of *flat* image blocks directly: the per-pixel variance of
8x8 blocks (block mean removed), a low quantile over blocks (flat blocks only; texture only adds
variance), corrected for (a) the part of correlated noise that the block-mean removal takes away and
(b) the quantile of the block-variance distribution (a scaled chi-square whose degrees of freedom
follow from the measured spatial and channel correlation, Satterthwaite). The same flat blocks give
the lag-1 spatial correlation ``rho1`` of the noise: ~0 for white noise, 0.6-0.8 for camera JPEGs.
``correlated = rho1 > CORRELATION_THRESHOLD``, unless a per-block plane fit explains the flat blocks
(smooth gradients of a clean photo, see MIN_PLANE_RESIDUAL), they are not Gaussian (fine texture of a
clean photo, see MAX_TEXTURE_EXCESS and the table below), or white noise explains most of their level
(weak white noise over fine texture, see WHITE_MIN_SIGMA). Flat blocks taken for texture whose variance
follows the 2x2 colour-filter grid (noise of a raw converter's lossless export, or clean demosaiced
detail) are camera noise when they are strong and Gaussian once each grid phase is scaled to the same
variance (``mosaic_noise``, run at MOSAIC_AUTO_SIGMA_SCALE x the measured level); otherwise
(``mosaic_pattern``) they only make the app *suggest* the camera path, which then runs at
MOSAIC_SIGMA_SCALE x the measured level (``camera_sigma``). White noise hidden from the PCA estimator
by JPEG's 4:2:0 chroma subsampling is recognised from the flat blocks and the luminance plane
(``hidden_noise_*``, see HIDDEN_NOISE_RATIO). A noise level function (sigma per brightness bin) is
reported for information (a spatially varying sigma built on it measured worse than one global sigma).

What the analysis decides, :class:`NoiseAnalysis` says: ``correlated`` photos take the camera-noise
path (:mod:`.real_noise`), the others the white-noise path (:mod:`.denoise`) at ``white_sigma``;
``pipeline.jobs.Denoiser.plan`` makes the choice.

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

numpy only (no torch, no Qt)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import cv2
import numpy as np

from .metrics import LUMA_WEIGHTS, YCC_BT601
from .noise_estimation import chi2_ratio_quantile, estimate_sigma

__all__ = ["NoiseAnalysis", "analyse_noise", "luma_white_sigma", "mosaic_excess", "mosaic_ratio",
           "texture_excess", "white_over_texture"]

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
# JPEG's 4:2:2 subsampling (Canon's and some other cameras' JPEGs, PIL's subsampling=1) averages chroma over
# 2x1 pixels only, so the flat blocks keep more of white noise than under 4:2:0 and read nearer its sigma:
# the same 1.1x over-shoots. 24 CBSD432 training photos at q90 4:2:2, where the level is applied, at
# 0.85 / 0.95 / 1.0 / 1.1 x the flat level: sigma 8: 35.46 / 35.63 / 35.63 / 35.35 dB; 10: 34.19 / 34.25 /
# 34.08 / 33.59; 12: 32.83 / 32.89 / 32.64 / 32.04; 15: 31.92 / 32.07 / 31.78 / 31.10; 25: 28.97 / 29.40 /
# 29.05 / 28.36; 50: 23.77 / 24.89 / 24.86 / 24.38 (sigma known: 35.57 / 34.32 / 33.09 / 32.05 / 28.67 /
# 23.87). So a 4:2:2 photo's level is HIDDEN_NOISE_LEVEL_SCALE_422 x the flat level (q75 and q95 in
# benchmarks/RESULTS.md, JPEG 4:2:2 section: within 0.16 dB of the best multiple on all but two rows).
# Which subsampling a photo had is read from its pixels
# (chroma_subsampling): the chroma's high-pass residual is correlated between horizontal neighbours under
# 4:2:2 and 4:2:0 (lag-1 0.6-0.8 in both) and between vertical ones only under 4:2:0 (4:2:2: -0.2-0.47;
# 4:4:4: both about 0).
HIDDEN_NOISE_LEVEL_SCALE_422 = 0.95
SUBSAMPLED_MIN_RHO = 0.5  # chroma lag-1 correlation above this: subsampled in that direction
SUBSAMPLING_CROP = 1024  # pixels a side read by chroma_subsampling
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
# Grey grain: white noise that is the same in the three colour channels of a colour photo (a raw
# converter's or an editor's monochrome grain, colour noise reduction that left the luminance noise, a
# scan). The RGB white-noise (PCA) estimate does not see it at all (its flattest directions are the chroma
# ones, which hold no noise), the flat blocks' channels correlate at 0.95-1.0, above every limit above, so
# Auto returned such photos as they were: white noise of sigma 10 / 20 on colour photos came back at the
# noisy input's 28 / 22 dB where the level given gains +3 to +10 dB. It is told from clean grey texture
# (fur, rock, sand: channel correlation 0.95-0.98 too) by the luminance plane: grey noise of std s is s in
# Y, which luma_white_sigma reports as s / |LUMA_WEIGHTS| = 1.5 s in its per-channel units, so it reads
# 1.25-1.5x the flat-block level where noise fills the flat blocks, and it is spatially white (lag-1
# correlation 0.0-0.11 where sigma >= 10, bar one photo at 0.144) and Gaussian; clean texture with the
# signature mostly reads at most 1.14x and a lag-1 correlation of 0.25-0.3, but clean grass seen whole
# (CBSD432 28075 as JPEG q90 4:4:4) read 1.59x at 0.147, the one clean photo of 1,728 (432 as PNG, 4:2:0
# q75 / q90, 4:4:4 q90) to meet a bound of 0.15, hence GREY_GRAIN_MAX_RHO; weak grain over texture
# (sigma 5) looks like clean texture and is left to the hint. The
# level is the luminance plane's own estimate in Y units (1 x the grain), at most the flat-block level. 22
# dev photos with grey noise of sigma 5 / 10 / 15 / 25 as PNG: Auto 34.53 / 28.48 / 25.15 / 21.34 -> 36.06 /
# 32.05 / 29.77 / 28.44 dB (sigma known 37.29 / 33.43 / 31.40 / 29.06; benchmarks/grey_grain.py). None of
# 3,096 white-noise inputs of the dev photos (PNG, 4:2:0, 4:2:2, 4:4:4 JPEGs, sigma 2-50), PolyU or the
# held-out camera family meets the rule (benchmarks/RESULTS.md, "Grey grain on colour photos").
GREY_GRAIN_MIN_LUMA_RATIO = 1.25
_LUMA_NORM = float(np.linalg.norm(np.asarray(LUMA_WEIGHTS, dtype=np.float32)))  # |LUMA_WEIGHTS|: Y std / channel std
GREY_GRAIN_MAX_RHO = 0.12
# ... and from below: grain is neither anti-correlated between neighbours nor made of a few levels. A probe
# of content that is not noise found the rule smearing a photo sharpened with a 3x3 kernel (grass, gravel,
# rock: lag-1 -0.04 to -0.07; 14-15 dB against itself), Floyd-Steinberg dithers to 4-8 tones (lag-1 -0.05,
# texture excess -0.3 to -0.5) and two-ink FM halftones and random-dot stereograms (excess -1.6 to -1.7;
# 9-13 dB). Grey noise reads lag-1 -0.012 or more and an excess of -0.25 or more (clipped at a blown sky).
# Still taken for grain: a random dither (it is noise added before quantising) and texture sharpened by an
# unsharp mask of amount 3 (lag-1 0.05-0.08).
GREY_GRAIN_MIN_RHO = -0.03
GREY_GRAIN_MIN_TEXTURE = -0.25
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
# The rule above assumes the flat blocks' correlation comes from texture, and texture moves the colour
# channels together: on those 108 photos with white noise of sigma 2 / 5 / 8 / 10 the switched ones read a
# channel correlation of 0.26-0.77 (5th percentile 0.28-0.45). Camera noise that keeps its finest scales
# (no chroma noise reduction, sharpening) can pass the sigma test too, and a colour matrix with negative
# off-diagonals makes its channels uncorrelated or anti-correlated: on a camera family the networks never
# trained on (bench/camera.py: held_out_camera_pair; benchmarks/RESULTS.md, "A camera family the networks
# never saw") two such photos read -0.14 and 0.02 and lost 5.3 and 0.5 dB against the camera path. So a
# colour photo's flat blocks must correlate across channels at least WHITE_MIN_CHANNEL_CORR for the switch.
WHITE_MIN_CHANNEL_CORR = 0.15
# The white-noise (PCA) level cannot be much above the flat blocks' per-pixel level when the noise is
# white: at sigma 0-50, as PNG and as 4:4:4 JPEG q90 (43 CBSD68/McMaster photos each) it is at most 1.03x
# it. Above that it measures detail, or the finest scales of noise that sharpening lifted (an
# edge-preserving noise reduction, which leaves noise only beside edges, does the same), and the white path
# at it smears the photo: on the held-out camera family 3 of 68 noisy photos read 1.9-6.6x and lost 0.9 /
# 3.4 / 5.8 dB against their noisy input, and 21 of its 68 noise-free renderings (sharpened) read white
# levels of up to 20 at flat levels of 2-5. From WHITE_MAX_FLAT_RATIO x the flat level up the white path
# runs at the flat level instead (NoiseAnalysis.white_sigma): those three photos now gain +1.8 / +1.2 /
# +0.1 dB over their noisy input (the flat level beat 1.2x it by 0.01-0.95 dB and tied with 0.8x it), the
# noise-free renderings coming back at >= 45 dB went from 35 to 46 of 68, and on the synthetic raw path
# (bench/camera.py: raw_pipeline) noise-free lossless exports from 54.4 to 55.4 dB. No input of the AWGN,
# JPEG, grey, weak-noise, PolyU or simulated-camera benchmarks changes path or level (benchmarks/RESULTS.md).
WHITE_MAX_FLAT_RATIO = 1.2
# The flat blocks must be clear of black and white (clipping shrinks the noise), and below MIN_BLOCKS of them
# the analysis gave up and the white path ran at the white-noise (PCA) estimate. Strong noise in a dark or
# saturated photo clips in nearly every 8x8 block: as a 4:2:0 JPEG its PCA estimate collapses (2-6 for
# sigma 50) and the noise was left in place (5 of 86 dev photos at q75, 3 at q90). Clean photos of
# saturated colours (a deep blue sky whose red channel sits at 0) can read a PCA level far above their
# noise: two noise-free renderings of the held-out camera family (bench/camera.py) read 10 and 33 and
# came back at 33.6 and 19.9 dB against themselves. So below MIN_BLOCKS clear blocks, blocks with up to
# CLIPPED_BLOCK_MAX_SHARE of their values at a bound are measured too (+6 dB on those JPEGs; the two
# renderings 47 dB). Their level is a lower bound: white noise of sigma 15-50 clipped so reads 1.1-1.5x it
# in PCA, so the flat level replaces the PCA one only above CLIPPED_WHITE_MAX_FLAT_RATIO x it, not
# WHITE_MAX_FLAT_RATIO. No input of the other benchmarks changes path or level (benchmarks/RESULTS.md,
# "Strong noise where nearly every block touches black or white").
MIN_BLOCKS = 50
CLIPPED_BLOCK_MAX_SHARE = 0.25
CLIPPED_WHITE_MAX_FLAT_RATIO = 2.0



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
    # every pixel is black or white (a 1-bit image: line art, a scanned document, a dithered picture): its
    # dots are the picture, not noise, so nothing is measured (sigma 0) and a run leaves it as it is
    two_level: bool = False
    # JPEG chroma subsampling read from the pixels ("4:4:4", "4:2:2", "4:2:0"; see chroma_subsampling),
    # measured only where the hidden-noise signature is seen ("" elsewhere)
    subsampling: str = ""
    # fewer than MIN_BLOCKS blocks were clear of the range bounds, so blocks with a few clipped values were
    # measured too: their level is a lower bound (clipping shrinks noise; see CLIPPED_BLOCK_MAX_SHARE)
    clipped_blocks: bool = False

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
        HIDDEN_NOISE_LEVEL_SCALE x ``sigma`` (HIDDEN_NOISE_LEVEL_SCALE_422 x for a 4:2:2 JPEG, whose chroma
        kept more of the noise; meaningful only with :attr:`hidden_noise_signature`)."""
        scale = HIDDEN_NOISE_LEVEL_SCALE_422 if self.subsampling == "4:2:2" else HIDDEN_NOISE_LEVEL_SCALE
        return scale * self.sigma

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
    def grey_grain(self) -> bool:
        """The hidden-noise signature of white noise that is the same in the three channels of a colour
        photo (see GREY_GRAIN_MIN_LUMA_RATIO): channels correlated beyond the luma rule's limit, spatially
        white and Gaussian flat blocks, and a luminance plane that holds the whole flat-block level."""
        return (self.hidden_noise_signature and self.channel_corr > HIDDEN_NOISE_LUMA_MAX_CHANNEL_CORR
                and GREY_GRAIN_MIN_RHO <= self.rho1 <= GREY_GRAIN_MAX_RHO
                and GREY_GRAIN_MIN_TEXTURE <= self.texture_excess <= HIDDEN_NOISE_LUMA_MAX_TEXTURE
                and self.sigma_luma >= GREY_GRAIN_MIN_LUMA_RATIO * self.sigma)

    @property
    def grey_grain_level(self) -> float:
        """The level of :attr:`grey_grain`: the luminance plane's estimate in its own (Y) units, which is
        the grain's per-channel std, at most the flat blocks' level."""
        return min(self.sigma, self.sigma_luma * _LUMA_NORM)

    @property
    def hidden_noise_sigma(self) -> float | None:
        """The :attr:`hidden_noise_level` to *suggest* to the user where the signature is seen but no level
        is applied (it also occurs on some clean, finely textured photos), else None."""
        applied = self.hidden_noise_applied or self.grey_grain
        return self.hidden_noise_level if self.hidden_noise_signature and not applied else None

    @property
    def white_sigma(self) -> float:
        """The sigma of the white-noise path: ``sigma_white``, or :attr:`hidden_noise_level` where noise
        hidden by JPEG chroma subsampling is recognised (:attr:`hidden_noise_applied`), or
        :attr:`grey_grain_level` for :attr:`grey_grain`, or the flat blocks' ``sigma`` where ``sigma_white``
        is more than WHITE_MAX_FLAT_RATIO x it (sharpened noise, detail; CLIPPED_WHITE_MAX_FLAT_RATIO x where
        the flat level came from blocks with clipped values)."""
        if self.hidden_noise_applied:
            return self.hidden_noise_level
        if self.grey_grain:
            return self.grey_grain_level
        ratio = CLIPPED_WHITE_MAX_FLAT_RATIO if self.clipped_blocks else WHITE_MAX_FLAT_RATIO
        return self.sigma if self.sigma_white > ratio * self.sigma else self.sigma_white

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


def is_two_level(x: np.ndarray) -> bool:
    """Whether every value of ``x`` (uint8, uint16 or float in [0, 1]) is black or white (0 or full scale),
    as in a 1-bit image. A sample of the pixels is checked first, so a photo costs almost nothing."""
    top = {np.dtype(np.uint8): 255, np.dtype(np.uint16): 65535}.get(x.dtype, 1.0)

    def bilevel(a: np.ndarray) -> bool:
        return bool(np.all((a == 0) | (a == top)))

    return bilevel(x[::7, ::5]) and bilevel(x)


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


def white_over_texture(sigma: float, sigma_white: float, channel_corr: float | None = None) -> bool:
    """Whether flat blocks that look correlated are white noise over fine texture rather than camera noise:
    a white-noise estimate of at least WHITE_MIN_SIGMA that explains a large share of the flat blocks'
    level (``sigma`` below WHITE_MAX_RATIO x ``sigma_white``) and is part of it (``sigma`` at least
    ``sigma_white``: white noise is in the flat blocks too; a white estimate above their level comes from
    detail elsewhere, e.g. the false colour of a demosaiced, noise-free export), in flat blocks whose colour
    channels move together as texture's do (``channel_corr`` at least WHITE_MIN_CHANNEL_CORR; None for a
    grey photo)."""
    if channel_corr is not None and channel_corr < WHITE_MIN_CHANNEL_CORR:
        return False
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
    if is_two_level(x):
        return NoiseAnalysis(0.0, False, 0.0, 0.0, 0.0, two_level=True)
    sigma_white = float(estimate_sigma(x))
    b = BLOCK
    H, W, C = x.shape
    if H < 2 * b or W < 2 * b:
        return NoiseAnalysis(sigma_white, False, sigma_white, 0.0, 0.0)
    B = _sample_blocks(x, b, MAX_BLOCKS, seed) * scale
    R = B - B.mean(axis=(1, 2), keepdims=True)
    v = (R * R).mean(axis=(1, 2, 3))
    # blocks touching the range bounds have clipped (shrunk) noise: left out, unless too few others remain
    # (saturated colours and crushed shadows everywhere; see CLIPPED_BLOCK_MAX_SHARE)
    at_bound = ((B <= 0.5) | (B >= 254.5)).mean(axis=(1, 2, 3))
    keep = (v > FLAT_VARIANCE) & (at_bound == 0)
    clipped_blocks = np.count_nonzero(keep) < MIN_BLOCKS
    if clipped_blocks:
        keep = (v > FLAT_VARIANCE) & (at_bound <= CLIPPED_BLOCK_MAX_SHARE)
    if np.count_nonzero(keep) < MIN_BLOCKS:
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
                        and not white_over_texture(sigma, sigma_white, channel_corr if C > 1 else None))
                   or mosaic_noise,
        sigma_white=sigma_white,
        rho1=rho1,
        channel_corr=channel_corr,
        nlf_levels=centres,
        nlf_sigma=tuple(nlf),
        blocks=int(v.size),
        texture_excess=excess,
        mosaic_ratio=ratio,
        mosaic_noise=mosaic_noise,
        clipped_blocks=bool(clipped_blocks),
    )
    if analysis.hidden_noise_signature and C == 3:
        analysis = replace(analysis, sigma_luma=luma_white_sigma(x), subsampling=chroma_subsampling(x))
    return analysis


def chroma_subsampling(image: np.ndarray) -> str:
    """The JPEG chroma subsampling an RGB ``image`` (HxWx3) went through, read from its pixels: "4:2:0"
    (chroma averaged over 2x2 pixels), "4:2:2" (over 2x1) or "4:4:4" (none). The BT.601 chroma planes'
    high-pass residual (the plane minus a Gaussian blur of it) is correlated between neighbours along
    each subsampled direction (lag-1 above SUBSAMPLED_MIN_RHO; about 0 otherwise). Subsampling is the same
    all over a JPEG, so a large photo is read in a central crop of SUBSAMPLING_CROP pixels a side."""
    h0, w0 = (max(0, (n - SUBSAMPLING_CROP) // 4 * 2) for n in image.shape[:2])  # even: the JPEG's 2-pixel grid
    image = image[h0: h0 + SUBSAMPLING_CROP, w0: w0 + SUBSAMPLING_CROP]
    # Cb and Cr in the image's own units (correlations do not depend on the scale)
    ycc = image[..., :3].astype(np.float32) @ np.asarray(YCC_BT601[1:], dtype=np.float32).T
    r = ycc - cv2.GaussianBlur(ycc, (0, 0), 2.0)
    power = float((r * r).mean()) or 1.0
    h = float((r[:, 1:] * r[:, :-1]).mean()) / power
    v = float((r[1:] * r[:-1]).mean()) / power
    if h > SUBSAMPLED_MIN_RHO:
        return "4:2:0" if v > SUBSAMPLED_MIN_RHO else "4:2:2"
    return "4:4:4"


def luma_white_sigma(image: np.ndarray) -> float:
    """White-noise (PCA) estimate of the luminance plane (BT.601 Y, as JPEG's) of an RGB ``image``, in
    per-channel units: i.i.d. noise of std s per channel has std s * |LUMA_WEIGHTS| in Y."""
    w = np.asarray(LUMA_WEIGHTS, dtype=np.float32)
    full = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(np.dtype(image.dtype), 1.0)
    y = image[..., :3].astype(np.float32) @ (w / full)
    return float(estimate_sigma(y)) / _LUMA_NORM
