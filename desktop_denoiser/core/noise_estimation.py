"""Blind estimation of the level of additive white Gaussian noise in a photo.

Implements the PCA method of Chen, Zhu & Heng, *An Efficient Statistical Method for Image
Noise Level Estimation* (ICCV 2015): the eigenvalues of the covariance of (overlapping) image
patches split into a few large ones carrying image structure and a bulk of small ones that,
for i.i.d. Gaussian noise, are all close to sigma**2.  The bulk is the largest set of
smallest eigenvalues whose mean is not above their median (see ``_chen_sigma2``), and
``sigma = sqrt(mean)``.

Colour images are handled jointly: a patch vector stacks all channels
(``patch_size * patch_size * C`` values), which assumes the same i.i.d. noise in every channel.
Grey images use only their weak-texture patches (Liu, Tanaka & Okutomi 2013; ``_weak_texture``):
with a third of the dimensions, texture otherwise reads as noise.

Noise that was clipped at black / white (noisy uint8 photos) is partly hidden; when clipped
values are present the estimate is corrected with a clipped-Gaussian model (``_declip``).

numpy + OpenCV only (no torch, no Qt); a randomly sub-sampled set of patches keeps a
12-megapixel photo well under a second.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

try:  # OpenCV's own (non-BLAS) kernels; see _gram
    import cv2
except ImportError:  # pragma: no cover - cv2 is a dependency, numpy fallback just in case
    cv2 = None

__all__ = ["NoiseEstimationError", "chi2_ratio_quantile", "estimate_sigma", "same_channels"]


# Clipping compensation (see _declip): applied when at least _CLIP_FRACTION of the sampled
# values lie exactly on 0 or full white; it uses _CLIP_PATCHES patches and never multiplies
# sigma by more than 1 / sqrt(_CLIP_MIN_RATIO).
_CLIP_FRACTION = 1e-4
_CLIP_PATCHES = 4000
_CLIP_MIN_RATIO = 0.25
_CLIP_ITERATIONS = 20
_CLIP_BINS = 2048
# Colour patch vectors need enough samples for a well-conditioned covariance; below
# _MIN_SAMPLES_PER_DIM samples per dimension, channels are used as separate grey patches.
_MIN_SAMPLES_PER_DIM = 4
# Grey images: weak-texture patch selection (see _weak_texture).
_WEAK_TEXTURE_QUANTILE = 0.99
_WEAK_TEXTURE_ITERATIONS = 8
_WEAK_TEXTURE_MIN_SAMPLES_PER_DIM = 4


class NoiseEstimationError(ValueError):
    """The image cannot be used for noise estimation (too small, wrong shape, ...)."""


def _prepare(image: np.ndarray) -> tuple[np.ndarray, float]:
    """Return an HxWxC view of ``image`` (alpha dropped) and the value of full white."""
    arr = np.asarray(image)
    if arr.dtype == np.bool_ or not (
        np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    ):
        raise NoiseEstimationError(
            f"unsupported image dtype {arr.dtype}; use uint8, uint16 or float"
        )
    if arr.ndim == 2:
        arr = arr[:, :, None]
    elif arr.ndim != 3:
        raise NoiseEstimationError(f"expected an HxW or HxWxC image, got shape {arr.shape}")
    channels = arr.shape[2]
    if channels == 4:  # RGBA -> RGB
        arr = arr[:, :, :3]
    elif channels == 2:  # gray + alpha -> gray
        arr = arr[:, :, :1]
    elif channels == 0:
        raise NoiseEstimationError("image has no channels")
    if arr.shape[2] == 3 and same_channels(arr):
        # a black-and-white photo stored as RGB: its 147-dimensional patches span 49 dimensions only,
        # the other eigenvalues are exactly zero and the estimate would be 0 whatever the noise
        arr = arr[:, :, :1]

    if arr.dtype == np.uint8:
        full_scale = 255.0
    elif arr.dtype == np.uint16:
        full_scale = 65535.0
    elif np.issubdtype(arr.dtype, np.floating):
        full_scale = 1.0  # float images are in [0, 1]
    else:  # other integer types: infer 8- or 16-bit range from the values
        full_scale = 255.0 if arr.size == 0 or int(arr.max()) <= 255 else 65535.0
    return arr, full_scale


def same_channels(arr: np.ndarray) -> bool:
    """Whether the three channels of HxWx3 ``arr`` are identical (grey stored as RGB)."""
    return bool(np.array_equal(arr[:, :, 0], arr[:, :, 1]) and np.array_equal(arr[:, :, 1], arr[:, :, 2]))


# Linear algebra goes through OpenCV rather than numpy's multi-threaded OpenBLAS: on a busy
# machine (e.g. next to a training run) OpenBLAS threads oversubscribe the cores and a
# 60000x147 Gram matrix plus a 147x147 eigh took ~3 s instead of ~0.1 s.


def _gram(x: np.ndarray) -> np.ndarray:
    """``x.T @ x`` for an (N, d) float64 array."""
    if cv2 is not None:  # gemm(x, x, GEMM_1_T) is much faster than mulTransposed for small d
        return cv2.gemm(x, x, 1.0, None, 0.0, flags=cv2.GEMM_1_T)
    return x.T @ x


def _eigh(sym: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ascending eigenvalues and matching eigenvectors (columns) of a symmetric matrix."""
    if cv2 is not None:
        ok, values, vectors = cv2.eigen(sym)  # descending, eigenvectors as rows
        if ok:
            return values[::-1, 0].copy(), np.ascontiguousarray(vectors[::-1].T)
    return np.linalg.eigh(sym)


def _matmul(a: np.ndarray, b: np.ndarray, *, transpose_b: bool = False) -> np.ndarray:
    """``a @ b`` (or ``a @ b.T``) for float64 matrices."""
    if cv2 is not None:
        flags = cv2.GEMM_2_T if transpose_b else 0
        a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
        return cv2.gemm(a, b, 1.0, None, 0.0, flags=flags)
    return a @ (b.T if transpose_b else b)


def _chen_sigma2(eigenvalues: np.ndarray) -> float:
    """Noise variance from ascending covariance eigenvalues (Chen et al. 2015, Alg. 1).

    Scanning from the full set downwards, the first (i.e. largest) prefix ``lam[:i]`` whose
    mean ``tau`` is no longer above its median is taken as the noise bulk, and its mean is
    the variance.  The median test is done by counting, as in the authors' code: at least as
    many eigenvalues above ``tau`` as below it.  (The paper's exact ``above == below`` can
    only hold for even ``i`` or ties, and on heteroscedastic, e.g. clipped, noise it sometimes
    skips the whole bulk and falls back to a tiny ``i``; ``>=`` agrees with it when the
    bulk is symmetric and is stable otherwise.)  ``i == 1`` always passes.
    """
    lam = np.clip(np.sort(eigenvalues), 0.0, None)
    d = lam.size
    counts = np.arange(1, d + 1)
    tau = np.cumsum(lam) / counts  # tau[i-1] = mean(lam[:i])
    below = np.minimum(np.searchsorted(lam, tau, side="left"), counts)
    above = counts - np.minimum(np.searchsorted(lam, tau, side="right"), counts)
    ok = np.flatnonzero(above >= below)
    return float(tau[ok[-1]])  # ok always contains index 0 (i == 1)


def estimate_sigma(
    image: np.ndarray, *, patch_size: int = 7, max_patches: int = 60000, seed: int = 0
) -> float:
    """Estimate the std-dev of additive white Gaussian noise, in 8-bit units (0..255 scale).

    Parameters
    ----------
    image:
        HxW or HxWxC array: uint8 (0..255), uint16 (0..65535, rescaled to 8-bit units) or
        float in [0, 1].  RGBA drops alpha (and gray+alpha drops alpha).  Colour noise is
        assumed i.i.d. per channel with one common sigma; channels are estimated jointly.
    patch_size:
        Side of the square patches (7 by default).
    max_patches:
        At most this many patch positions are used; larger images are randomly sub-sampled
        (deterministically, from ``seed``).
    seed:
        Seed of the patch sub-sampling.

    Notes
    -----
    Non-finite pixels are skipped (patches containing them are dropped).  Colour images with
    fewer than ``4 * patch_size**2 * C`` patch positions use the channels as separate grey
    patches.  If values sit exactly on 0 / full white (clipped noise, e.g. noisy uint8
    photos), the under-estimate caused by clipping is compensated.

    Raises
    ------
    NoiseEstimationError
        If the image is smaller than ``2 * patch_size`` in height or width, has an unusable
        shape/dtype, or has too few finite patches.
    """
    p = int(patch_size)
    if p < 2:
        raise NoiseEstimationError(f"patch_size must be >= 2, got {patch_size}")
    if int(max_patches) < 1:
        raise NoiseEstimationError(f"max_patches must be >= 1, got {max_patches}")
    arr, full_scale = _prepare(image)
    h, w, c = arr.shape
    if h < 2 * p or w < 2 * p:
        raise NoiseEstimationError(
            f"the image ({w}×{h} pixels) is too small to measure its noise level (with {p}×{p} patches, at "
            f"least {2 * p}×{2 * p} pixels are needed)"
        )

    nh, nw = h - p + 1, w - p + 1
    n_pos = nh * nw
    if n_pos <= max_patches:
        rows, cols = np.divmod(np.arange(n_pos), nw)
    else:
        rng = np.random.default_rng(seed)
        picked = np.sort(rng.choice(n_pos, size=int(max_patches), replace=False))  # sorted: cache
        rows, cols = np.divmod(picked, nw)

    # (nh, nw, C, p, p) view; fancy indexing copies only the sampled patches, still in the
    # original dtype, so a 12 MP image is never converted to float as a whole.
    windows = sliding_window_view(arr, (p, p), axis=(0, 1))
    raw = windows[rows, cols].reshape(rows.size, c * p * p)
    if np.issubdtype(raw.dtype, np.floating):
        finite = np.isfinite(raw).all(axis=1)
        if not finite.all():
            raw = raw[finite]
    # Noisy images stored in a bounded format (uint8, clipped floats) lose part of the noise
    # where the clean signal is near black / white: count values sitting exactly on a bound.
    n_clipped = np.count_nonzero(raw == 0) + np.count_nonzero(raw == full_scale)
    if c > 1 and raw.shape[0] < _MIN_SAMPLES_PER_DIM * raw.shape[1]:
        # Small colour image: channels as separate (same-sigma) grey patches.
        raw = raw.reshape(raw.shape[0] * c, p * p)
    patches = raw.astype(np.float64)
    del raw
    if patches.shape[0] <= patches.shape[1]:
        raise NoiseEstimationError(
            f"only {patches.shape[0]} usable (finite) {p}x{p} patches; image too small or "
            "mostly not finite"
        )
    patches *= 255.0 / full_scale  # 8-bit units

    clipped = n_clipped >= _CLIP_FRACTION * patches.size
    if c == 1:
        # grey: texture fills the small eigenvalues too; estimate from weak-texture patches
        mean, cov, sigma, keep = _weak_texture(patches, p)
        patches = patches[keep]  # the clipping correction must see the patches the estimate came from
        patches -= mean
        if clipped:
            eigenvalues, eigenvectors = _eigh(cov)
    else:
        mean = patches.mean(axis=0)
        patches -= mean
        cov = _gram(patches)
        cov /= patches.shape[0] - 1
        if clipped:
            eigenvalues, eigenvectors = _eigh(cov)
        else:  # eigenvalues only: cheap even when BLAS threads compete for the cores
            eigenvalues = np.linalg.eigvalsh(cov)
        sigma = float(np.sqrt(max(_chen_sigma2(eigenvalues), 0.0)))
    if clipped and sigma > 0.0:
        rng = np.random.default_rng(seed + 1)
        n_rows = min(patches.shape[0], _CLIP_PATCHES)
        rows = rng.choice(patches.shape[0], size=n_rows, replace=False)
        # PCA Wiener filter: shrink each principal component by (lambda - sigma^2) / lambda,
        # which keeps image structure and (almost) removes the noise.
        gain = np.clip(eigenvalues - sigma * sigma, 0.0, None) / np.maximum(eigenvalues, 1e-12)
        wiener = _matmul(eigenvectors * gain, eigenvectors, transpose_b=True)
        smooth = mean + _matmul(patches[rows], wiener)
        sigma = _declip(sigma, smooth.ravel())
    return sigma


def _mean_cov(patches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean vector and covariance matrix of the rows of ``patches`` (N, d)."""
    mean = patches.mean(axis=0)
    centred = patches - mean
    cov = _gram(centred)
    cov /= max(patches.shape[0] - 1, 1)
    return mean, cov


def _gradient_operator(p: int) -> np.ndarray:
    """(2 p (p-1), p*p) matrix of the horizontal and vertical neighbour differences inside a p x p patch."""
    idx = np.arange(p * p).reshape(p, p)
    pairs = [(a, b) for a, b in zip(idx[:, 1:].ravel(), idx[:, :-1].ravel())]
    pairs += [(a, b) for a, b in zip(idx[1:, :].ravel(), idx[:-1, :].ravel())]
    d = np.zeros((len(pairs), p * p))
    for k, (a, b) in enumerate(pairs):
        d[k, a], d[k, b] = 1.0, -1.0
    return d


def chi2_ratio_quantile(p: float, nu: float) -> float:
    """Quantile p of chi2(nu)/nu (Wilson-Hilferty; accurate to ~1% for nu >= 3)."""
    nu = max(float(nu), 1.0)
    z = NormalDist().inv_cdf(p)
    return max(1.0 - 2.0 / (9.0 * nu) + z * math.sqrt(2.0 / (9.0 * nu)), 0.05) ** 3


def _weak_texture(patches: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    """(mean, covariance, sigma) of the weak-texture patches of a grey image (Liu, Tanaka & Okutomi,
    *Single-image noise level estimation for blind denoising*, IEEE TIP 2013).

    A grey patch has p*p dimensions only (a colour one 3 p*p, with texture shared by the channels), so
    texture fills the smallest eigenvalues too and the PCA estimate over all patches of a clean grey
    photo was 4-21 (CBSD68 in grey, 8-bit). Patches whose gradient energy ||D x||^2 is above what noise
    of level sigma alone gives (its 99 % quantile, a chi-square matched in mean and variance) are texture
    and are dropped, and so are patches within sigma of black or white (flat because their noise is
    clipped away); sigma is estimated again from the rest until it settles. Measured on CBSD68 in grey:
    clean 0.51 on average (max 5.6; was ~7.9), sigma 5 / 15 / 25 / 50 read as 5.3 / 15.5 / 25.5 / 50.2
    (MAE 0.35-0.56; was 9.9 / 17.6 / 26.8 / 50.6)."""
    d = _gradient_operator(p)
    grad = _matmul(patches, d, transpose_b=True)
    energy = np.einsum("nk,nk->n", grad, grad)  # ||D x||^2 per patch
    del grad
    dtd = d.T @ d
    k = 2.0 * np.trace(dtd) ** 2 / (2.0 * float((dtd * dtd).sum()))  # chi-square matched in mean and variance
    scale = np.trace(dtd) / k  # noise energy / sigma^2 ~ scale * chi2(k)
    mean, cov = _mean_cov(patches)
    sigma = float(np.sqrt(max(_chen_sigma2(np.linalg.eigvalsh(cov)), 0.0)))
    kept = np.ones(patches.shape[0], dtype=bool)
    level = patches.mean(axis=1)
    for _ in range(_WEAK_TEXTURE_ITERATIONS):
        keep = energy < sigma * sigma * scale * k * chi2_ratio_quantile(_WEAK_TEXTURE_QUANTILE, k)
        # patches within ~sigma of black or white are flat because their noise is clipped away
        keep &= (level > sigma) & (level < 255.0 - sigma)
        if np.count_nonzero(keep) < _WEAK_TEXTURE_MIN_SAMPLES_PER_DIM * patches.shape[1]:
            break  # (almost) nothing is flat at this level: keep the last estimate
        mean, cov = _mean_cov(patches[keep])
        new = float(np.sqrt(max(_chen_sigma2(np.linalg.eigvalsh(cov)), 0.0)))
        kept = keep
        done = abs(new - sigma) <= 1e-3 * max(sigma, 1e-6)
        sigma = new
        if done:
            break
    return mean, cov, sigma, kept


def _norm_cdf(x: np.ndarray) -> np.ndarray:
    """Standard normal CDF (Abramowitz & Stegun 7.1.26 erf, |error| < 1.5e-7)."""
    z = np.abs(x) / np.sqrt(2.0)
    t = 1.0 / (1.0 + 0.3275911 * z)
    poly = t * (
        0.254829592
        + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    erf = 1.0 - poly * np.exp(-z * z)
    return 0.5 * (1.0 + np.sign(x) * erf)


def _clipped_moments(mu: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance ratio of ``clip(mu + sigma * N(0, 1), 0, 255)``.

    Returns ``(mean, var / sigma**2)`` for each clean value ``mu`` (8-bit units).
    """
    a = -mu / sigma
    b = (255.0 - mu) / sigma
    cdf_a, cdf_b = _norm_cdf(a), _norm_cdf(b)
    pdf_a = np.exp(-0.5 * a * a) / np.sqrt(2.0 * np.pi)
    pdf_b = np.exp(-0.5 * b * b) / np.sqrt(2.0 * np.pi)
    m1 = a * cdf_a + (pdf_a - pdf_b) + b * (1.0 - cdf_b)
    m2 = a * a * cdf_a + (cdf_b - cdf_a + a * pdf_a - b * pdf_b) + b * b * (1.0 - cdf_b)
    return mu + sigma * m1, np.maximum(m2 - m1 * m1, 0.0)


def _declip(sigma_obs: float, smooth: np.ndarray) -> float:
    """Undo the noise shrinkage of clipping to [0, 255].

    Clipping ``mu + n`` to the range scales the local noise variance by ``r(mu, sigma) <= 1``;
    the PCA estimate then measures about ``sigma**2 * mean(r)``.  ``smooth`` holds denoised
    (but clipped-mean) pixel values; they are mapped back to clean values ``mu`` by inverting
    the clipped mean, and ``sigma = sigma_obs / sqrt(mean r(mu, sigma))`` is iterated to a
    fixed point.
    """
    # The mean of r over the pixels only needs their histogram (bins of < 0.25 8-bit units).
    counts, edges = np.histogram(smooth, bins=_CLIP_BINS)
    centers = 0.5 * (edges[:-1] + edges[1:])
    weights = counts / max(int(counts.sum()), 1)
    sigma = sigma_obs
    for _ in range(_CLIP_ITERATIONS):
        grid = np.linspace(-5.0 * sigma, 255.0 + 5.0 * sigma, 1024)
        clipped_mean, ratio = _clipped_moments(grid, sigma)
        # clipped_mean is increasing in mu: interpolate r directly as a function of it.
        r = float(np.dot(weights, np.interp(centers, clipped_mean, ratio)))
        new_sigma = sigma_obs / np.sqrt(max(r, _CLIP_MIN_RATIO))
        if abs(new_sigma - sigma) <= 1e-4 * sigma:
            return float(new_sigma)
        sigma = float(new_sigma)
    return sigma
