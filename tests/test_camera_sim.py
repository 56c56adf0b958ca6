from dataclasses import replace

import cv2
import numpy as np
import pytest
import torch

from desktop_denoiser.core import camera_sim as cs
from desktop_denoiser.core.diffusion import Diffusion
from desktop_denoiser.core.observation import camera_observations
from desktop_denoiser.core.schedule import NoiseSchedule


def _clean(h=96, w=96, seed=0):
    from conftest import smooth_test_image

    return smooth_test_image(h, w, seed=seed).astype(np.float64) * 0.8 + 0.1


def _noise_stats(d):
    """Per-pixel std (8-bit), lag-1 horizontal correlation and mean inter-channel correlation of a residue."""
    d = d - d.mean(axis=(0, 1))
    var = d.var()
    lag1 = float((d[:, 1:] * d[:, :-1]).mean() / var)
    c = np.corrcoef(d.reshape(-1, 3).T)
    return float(d.std() * 255), lag1, float((c[0, 1] + c[0, 2] + c[1, 2]) / 3)


def test_unprocess_then_process_without_noise_keeps_the_photo():
    clean = _clean()
    cam = cs.Camera(red_gain=2.1, blue_gain=1.6, saturation=0.5, demosaic="bilinear")
    out = cs.process(cs.unprocess(clean, cam), cam)
    assert out.dtype == np.float32 and np.allclose(out * 255, np.round(out * 255), atol=1e-3)  # 8-bit values
    # only the demosaicing (errors at the test image's edges) and the 8-bit rounding separate the
    # rendering from the photo: white balance and colour matrix are undone exactly
    err = np.abs(out[4:-4, 4:-4] - clean[4:-4, 4:-4]) * 255
    assert err.mean() < 1.0 and np.percentile(err, 99) < 8
    identity = cs.Camera(red_gain=1.0, blue_gain=1.0, saturation=0.0)
    plain = np.abs(cs.process(cs.unprocess(clean, identity), identity)[4:-4, 4:-4] - clean[4:-4, 4:-4]) * 255
    assert err.mean() - plain.mean() < 0.15


def test_sensor_noise_grows_with_the_gain_and_is_correlated_after_demosaicing():
    clean, rng = _clean(128, 128), np.random.default_rng(0)
    levels = []
    for gain in (1e-4, 1e-3, 1e-2):
        ref, noisy = cs.camera_training_pair(clean, rng, cs.Camera(shot_gain=gain, read_std=gain))
        sd, lag1, _ = _noise_stats(noisy - ref)
        levels.append(sd)
        assert lag1 > 0.3  # demosaicing spreads each raw sample's noise to its neighbours
    assert levels[0] < 2.5 < levels[1] < levels[2] and levels[2] / levels[1] > 2.5


def test_chroma_noise_reduction_makes_the_noise_mostly_luminance():
    clean = _clean(128, 128)
    plain = cs.Camera(shot_gain=2e-3, read_std=2e-3)
    ref, noisy = cs.camera_training_pair(clean, np.random.default_rng(1), plain)
    _, _, cc_plain = _noise_stats(noisy - ref)
    ref, noisy = cs.camera_training_pair(clean, np.random.default_rng(1), cs.Camera(**{**plain.__dict__, "chroma_blur": 2.0}))
    _, _, cc_nr = _noise_stats(noisy - ref)
    # the colour matrix makes the channels' noise anti-correlated; with the chroma blurred, luminance
    # noise dominates (PolyU's Canon noise: 0.73-0.98)
    assert cc_plain < 0.1 and cc_nr > 0.5


def test_random_cameras_vary_and_are_seeded():
    a = [cs.random_camera(np.random.default_rng(s)) for s in range(40)]
    assert a[3] == cs.random_camera(np.random.default_rng(3))
    assert {c.demosaic for c in a} == set(cs.DEMOSAIC)
    assert any(c.jpeg_quality is None for c in a) and any(c.jpeg_quality for c in a)
    assert any(c.chroma_blur == 0 for c in a) and any(c.chroma_blur > 0 for c in a)
    gains = [c.shot_gain for c in a]
    assert min(gains) < 3e-4 and max(gains) > 3e-3


def test_camera_observations_embed_exactly_the_noisy_rendering():
    schedule = NoiseSchedule()
    x0 = torch.from_numpy(np.stack([_clean(64, 64, s) for s in range(6)])).permute(0, 3, 1, 2).float() * 2 - 1
    ref, t, noise = camera_observations(x0, schedule, np.random.default_rng(2))
    assert ref.shape == x0.shape == noise.shape and t.dtype == torch.long and t.shape == (6,)
    x_t = Diffusion(schedule).q_sample(ref, t, noise)
    abar = torch.tensor(schedule.alphas_cumprod, dtype=torch.float32)[t].view(-1, 1, 1, 1)
    noisy8 = ((x_t / abar.sqrt()) + 1) / 2 * 255
    assert float((noisy8 - noisy8.round()).abs().max()) < 1e-2  # sqrt(abar) times an 8-bit image
    assert float(noisy8.min()) > -0.01 and float(noisy8.max()) < 255.01
    # each sample's timestep matches its noise level (within the jitter, exp(+-3 x 0.15))
    level = ((noisy8 / 255 * 2 - 1) - ref).flatten(1).std(1).numpy()
    ratio = level / schedule.sigmas[t.numpy()]
    assert np.all((ratio > 0.6) & (ratio < 1.6))
    # the same seed gives the same samples
    ref2, t2, noise2 = camera_observations(x0, schedule, np.random.default_rng(2))
    assert torch.equal(t, t2) and torch.equal(noise, noise2)


def test_raw_pipeline_is_the_plain_camera_without_processing():
    clean = _clean(64, 64)
    ref = cs.raw_pipeline(clean, 0.006, 3, noise=False)
    cam = cs.Camera(red_gain=1.0, blue_gain=1.0, saturation=0.0)
    assert np.array_equal(ref, cs.process(cs.unprocess(clean, cam), cam))
    noisy = cs.raw_pipeline(clean, 0.006, 3)
    assert _noise_stats(noisy - ref)[0] == pytest.approx(_noise_stats(cs.raw_pipeline(clean, 0.006, 4) - ref)[0], rel=0.15)


# --- the held-out camera family (desktop_denoiser/bench/camera.py): evaluation only ---------------------

def test_malvar_he_cutler_demosaicing_keeps_the_samples_and_beats_bilinear():
    from desktop_denoiser.bench.camera import demosaic_mhc

    # fine grey-ish detail (channels that move together, as in photos), where MHC's gradient correction pays
    rng = np.random.default_rng(3)
    texture = cv2.GaussianBlur(rng.random((64, 64)), (0, 0), 1.2)
    texture = (texture - texture.min()) / np.ptp(texture)
    clean = np.clip(0.2 + 0.6 * texture[..., None] * np.array([1.0, 0.9, 0.8]), 0, 1)
    mosaic = cs.mosaic_rggb(clean)
    out = demosaic_mhc(mosaic)
    assert np.array_equal(cs.mosaic_rggb(out), mosaic)  # each site keeps its own colour sample
    inner = (slice(4, -4), slice(4, -4))
    err_mhc = np.abs(out - clean)[inner].mean()
    err_bilinear = np.abs(cs.demosaic(mosaic) - clean)[inner].mean()
    assert err_mhc < 0.7 * err_bilinear
    flat = demosaic_mhc(cs.mosaic_rggb(np.full((16, 16, 3), 0.4)))
    assert np.allclose(flat, 0.4)  # the kernels sum to one


def test_held_out_cameras_are_seeded_and_their_noise_is_real_camera_like():
    from desktop_denoiser.bench.camera import held_out_camera_pair, random_held_out_camera

    clean = _clean(96, 96, seed=1)
    a = held_out_camera_pair(clean, np.random.default_rng(5))
    b = held_out_camera_pair(clean, np.random.default_rng(5))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    cams = [random_held_out_camera(np.random.default_rng(s)) for s in range(40)]
    assert len({c.jpeg_subsampling for c in cams if c.jpeg_quality}) == 3  # 4:4:4, 4:2:2 and 4:2:0
    assert any(c.luma_nr > 0 for c in cams) and any(c.luma_nr == 0 for c in cams)
    for c in cams:  # white stays white: each colour matrix's rows sum to one
        assert np.allclose(c.colour_matrix.sum(axis=1), 1.0)
    reference, noisy = held_out_camera_pair(clean, np.random.default_rng(0), camera=replace(
        cams[0], shot_gain=4e-3, read_std=4e-3, row_std=0.0, luma_nr=0.0, chroma_median=0, sharpen=0.0,
        jpeg_quality=None))
    # the noise-free rendering is the photo up to demosaicing at its edges (tone curve and colour undone)
    assert np.abs(reference - clean)[4:-4, 4:-4].mean() * 255 < 1.5
    std, lag1, _ = _noise_stats((noisy - reference)[4:-4, 4:-4])
    assert 3 < std < 40 and lag1 > 0.2  # demosaiced: correlated in space
