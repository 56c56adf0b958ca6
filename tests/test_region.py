"""Denoising part of a photo (pipeline/region.py): where the crop lies, what is pasted back, and that the
part comes out as in the whole-photo run (the GUI's Preview area)."""

import numpy as np
import pytest

from conftest import blurred_noise, smooth_test_image
from desktop_denoiser.core.metrics import add_gaussian_noise_8bit, psnr
from desktop_denoiser.core.sampler import run_to_end
from desktop_denoiser.paths import default_model_path
from desktop_denoiser.pipeline.jobs import DenoiseOptions, Denoiser
from desktop_denoiser.pipeline.region import CONTEXT, GRID, MIN_SIZE, plan_region


@pytest.fixture(scope="module")
def denoiser():
    return Denoiser(default_model_path())


def test_region_keeps_context_on_the_grid_and_is_clipped_to_the_photo():
    r = plan_region((1000, 600), (300.4, 200.6, 500.2, 350))
    assert r.box == (300, 200, 501, 350) and r.size == (201, 150)
    cx0, cy0, cx1, cy1 = r.crop
    assert cx0 % GRID == 0 and cy0 % GRID == 0  # the network's cells and sub-images as in the whole photo
    assert 300 - cx0 >= CONTEXT and 200 - cy0 >= CONTEXT and cx1 == 501 + CONTEXT and cy1 == 350 + CONTEXT
    assert 300 - cx0 < CONTEXT + GRID and 200 - cy0 < CONTEXT + GRID
    # at the photo's edges the context stops there; a view larger than the photo is clipped to it
    edge = plan_region((1000, 600), (-50, 500, 120, 700))
    assert edge.box == (0, 500, 120, 600) and edge.crop == (0, (500 - CONTEXT) // GRID * GRID, 120 + CONTEXT, 600)
    # the whole photo in view (or more): nothing to cut out; nothing of the photo in view: nothing either
    assert plan_region((1000, 600), (-10, -10, 1200, 700)) is None
    assert plan_region((1000, 600), (0, 0, 1000, 600)) is None
    assert plan_region((1000, 600), (1100, 0, 1300, 600)) is None
    # a sliver is grown to MIN_SIZE around its centre, inside the photo
    thin = plan_region((1000, 600), (995.5, 100, 996, 400))
    assert thin.size == (MIN_SIZE, 300) and thin.box[2] == 1000


def test_paste_changes_only_the_part_and_leaves_the_original_alone():
    r = plan_region((64, 48), (20, 10, 40, 30))
    original = np.random.default_rng(0).random((48, 64, 3)).astype(np.float32)
    keep = original.copy()
    crop = r.cut(original)
    assert np.shares_memory(crop, original)  # a view: nothing copied for the run
    out = r.paste(original, np.zeros_like(crop))
    assert np.array_equal(original, keep)  # a copy was changed, not the original
    inside = np.zeros((48, 64), bool)
    inside[10:30, 20:40] = True
    assert np.all(out[inside] == 0) and np.array_equal(out[~inside], original[~inside])
    with pytest.raises(ValueError, match="crop"):
        r.paste(original, np.zeros((5, 5, 3), np.float32))


def _part_of_run(denoiser, pixels, box, opts):
    """(the part of the whole-photo run, the part from its own region run), both planned from the whole
    photo's analysis as the GUI does."""
    est = denoiser.estimate(pixels)
    whole = run_to_end(denoiser.run(pixels, opts, denoiser.plan(pixels, opts, analysis=est.analysis))).pixels
    h, w = pixels.shape[:2]
    region = plan_region((w, h), box)
    crop = region.cut(pixels)
    part = run_to_end(denoiser.run(crop, opts, denoiser.plan(crop, opts, analysis=est.analysis))).pixels
    pasted = region.paste(pixels, part)
    x0, y0, x1, y1 = region.box
    assert np.array_equal(np.delete(pasted, np.s_[y0:y1], 0), np.delete(pixels, np.s_[y0:y1], 0))
    return whole[y0:y1, x0:x1], pasted[y0:y1, x0:x1], est


@pytest.mark.parametrize("kind", ["white", "camera"])
def test_the_part_comes_out_as_in_the_whole_photo(denoiser, kind):
    """White noise (the Gaussian path) and camera noise (the pixel-shuffled camera path with its measured
    refinement pass): the part denoised alone matches the same part of the whole-photo run to a level or
    two at most, ~58 dB, though the whole photo ran in other tiles (a crop off the grid, or without the
    context, gave 44-52 dB and up to 4-10 levels)."""
    clean = smooth_test_image(320, 384, seed=3)
    if kind == "white":
        noisy = add_gaussian_noise_8bit(clean, 25, seed=4)
    else:
        noisy = np.clip(np.round((clean + blurred_noise(clean.shape, 8.0, seed=5) / 255) * 255), 0, 255) / 255
    noisy = noisy.astype(np.float32)
    box = (150, 131, 251, 199)  # the crop is well inside the photo
    whole, part, est = _part_of_run(denoiser, noisy, box, DenoiseOptions(device="cpu", tile=128))
    assert est.correlated == (kind == "camera")
    x0, y0, x1, y1 = box
    assert psnr(part, whole) > 55.0 and np.abs(part - whole).max() < 2.5 / 255
    assert psnr(part, clean[y0:y1, x0:x1]) > psnr(noisy[y0:y1, x0:x1], clean[y0:y1, x0:x1]) + 3.0
