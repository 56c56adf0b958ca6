"""Strength and Colour noise: the noise a run removed, split into its grey (luma) and colour parts, each
kept at its own share (pipeline/strength.py). Pure numpy: no network."""

import numpy as np
import pytest

from desktop_denoiser.core.metrics import LUMA_WEIGHTS
from desktop_denoiser.pipeline import strength as strength_mod
from desktop_denoiser.pipeline.jobs import DenoiseOptions
from desktop_denoiser.pipeline.strength import apply_strength

W = np.asarray(LUMA_WEIGHTS, np.float32)


def pair(h=40, w=56, seed=0):
    rng = np.random.default_rng(seed)
    denoised = rng.uniform(0.2, 0.8, (h, w, 3)).astype(np.float32)
    original = np.clip(denoised + rng.normal(0, 0.1, (h, w, 3)), 0, 1).astype(np.float32)
    return original, denoised


def luma(x):
    return x @ W


def chroma(x):
    return x - luma(x)[..., None]


def test_equal_shares_are_the_plain_mix_with_the_original():
    original, denoised = pair()
    assert apply_strength(original, denoised, 1.0, 1.0) is denoised
    for s in (0.0, 0.3, 0.8):
        np.testing.assert_allclose(apply_strength(original, denoised, s, s), s * denoised + (1 - s) * original,
                                   atol=1e-6)
        np.testing.assert_allclose(apply_strength(original, denoised, s), s * denoised + (1 - s) * original,
                                   atol=1e-6)  # color_strength None follows strength
    np.testing.assert_array_equal(apply_strength(original, denoised, 0.0, 0.0), original)


def test_colour_noise_removed_grain_kept():
    """Strength 0 with all the colour noise removed: the brightness (luma) is the original's, the colour
    is the denoised photo's; the reverse with the shares swapped."""
    original, denoised = pair(seed=1)
    grain_only = apply_strength(original, denoised, 0.0, 1.0)
    np.testing.assert_allclose(luma(grain_only), luma(original), atol=1e-5)
    np.testing.assert_allclose(chroma(grain_only), chroma(denoised), atol=1e-5)
    diff = grain_only - denoised
    np.testing.assert_allclose(diff[..., 0], diff[..., 1], atol=1e-5)  # what is added back is grey
    assert np.abs(diff).mean() > 0.02
    colour_only = apply_strength(original, denoised, 1.0, 0.0)
    np.testing.assert_allclose(luma(colour_only), luma(denoised), atol=1e-5)
    np.testing.assert_allclose(chroma(colour_only), chroma(original), atol=1e-5)
    # in between: each part removed at its own share
    out = apply_strength(original, denoised, 0.6, 0.9)
    np.testing.assert_allclose(luma(original - out), 0.6 * luma(original - denoised), atol=1e-5)
    np.testing.assert_allclose(chroma(original - out), 0.9 * chroma(original - denoised), atol=1e-5)


def test_grey_photos_have_no_colour_noise():
    original, denoised = pair()
    g_orig, g_den = original[..., :1], denoised[..., :1]
    np.testing.assert_allclose(apply_strength(g_orig, g_den, 0.5, 1.0), 0.5 * g_orig + 0.5 * g_den, atol=1e-6)
    assert apply_strength(g_orig, g_den, 1.0, 0.0) is g_den


def test_mixed_in_bands_of_rows_like_at_once(monkeypatch):
    """A tall photo is mixed a band of rows at a time (memory): the same as all at once."""
    original, denoised = pair(h=37, w=9, seed=3)
    whole = apply_strength(original, denoised, 0.25, 0.75)
    monkeypatch.setattr(strength_mod, "_ROWS", 8)
    np.testing.assert_array_equal(apply_strength(original, denoised, 0.25, 0.75), whole)
    removed = original - denoised
    expected = denoised + 0.75 * luma(removed)[..., None] + 0.25 * chroma(removed)
    np.testing.assert_allclose(whole, expected, atol=1e-6)


def test_bad_shares_are_refused_by_name():
    original, denoised = pair()
    with pytest.raises(ValueError, match="color_strength must be between 0 and 1"):
        apply_strength(original, denoised, 1.0, 1.2)
    with pytest.raises(ValueError, match="color_strength must be between 0 and 1"):
        DenoiseOptions(color_strength=-0.1)
    opts = DenoiseOptions(strength=0.3, color_strength=0.5, sigma=10)
    assert opts.at_full_strength() == DenoiseOptions(sigma=10)
