from dataclasses import replace

import numpy as np
import pytest
import torch

from conftest import blurred_noise, smooth_test_image
from desktop_denoiser.core.metrics import LUMA_WEIGHTS, add_gaussian_noise_8bit, psnr
from desktop_denoiser.core.sampler import StepEvent, run_to_end
from desktop_denoiser.pipeline.devices import DeviceError, available_devices, resolve_device
from desktop_denoiser.pipeline.jobs import DenoiseOptions, Denoiser
from desktop_denoiser.paths import CAMERA_MODEL_NAME, FAST_MODEL_NAME, default_model_path


@pytest.fixture(scope="module")
def denoiser():
    # one named file: the tests below must not depend on which network this CPU would pick
    return Denoiser(default_model_path())


def test_devices():
    assert available_devices()[0].name == "cpu"
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="no CUDA"):
            resolve_device("cuda")
    with pytest.raises(DeviceError, match="unknown device"):
        resolve_device("tpu")


def test_cpu_tile_size_is_capped_where_the_cpu_runs_fastest(monkeypatch):
    """The CPU tile follows free memory but stays within [256, 1024] px (bigger tiles measured slower)."""
    from desktop_denoiser.pipeline import devices

    cpu = torch.device("cpu")
    monkeypatch.setattr(devices, "_cpu_available_bytes", lambda: 64 << 30)  # plenty of RAM
    assert devices.default_tile_size(cpu) == 1024
    monkeypatch.setattr(devices, "_cpu_available_bytes", lambda: 400 << 20)  # little RAM: smaller tiles
    assert devices.default_tile_size(cpu) == 704
    monkeypatch.setattr(devices, "_cpu_available_bytes", lambda: 1 << 20)
    assert devices.default_tile_size(cpu) == 256


def test_strength_mixes_the_original_back_in(denoiser):
    """strength and color_strength 1 = the denoised photo, both 0 = the input unchanged, in between a mix
    of the two (more grain kept, PSNR between the noisy and the fully denoised photo); strength alone keeps
    grain but no colour noise; outside [0, 1] is refused."""
    clean = smooth_test_image(64, 80, seed=6)
    noisy = add_gaussian_noise_8bit(clean, 25, seed=2)

    def run(**kw):
        return run_to_end(denoiser.run(noisy, DenoiseOptions(sigma=25, device="cpu", **kw))).pixels

    full = run()
    none = run(strength=0.0, color_strength=0.0)
    half = run(strength=0.5, color_strength=0.5)
    assert np.array_equal(none, noisy.astype(np.float32))
    np.testing.assert_allclose(half, 0.5 * (full + noisy), atol=1e-6)
    assert psnr(noisy, clean) + 2 < psnr(half, clean) < psnr(full, clean) - 1
    grain = run(strength=0.5)  # the colour noise removed whole (the default), half of the grain kept
    weights = np.asarray(LUMA_WEIGHTS, np.float32)

    def colour_noise(x):  # std of the colour part of what differs from the clean photo
        d = x - clean
        return float((d - (d @ weights)[..., None]).std())

    def grey_noise(x):
        return float(((x - clean) @ weights).std())

    assert colour_noise(grain) == pytest.approx(colour_noise(full), rel=0.02)
    assert colour_noise(half) > 2 * colour_noise(grain)
    assert grey_noise(grain) == pytest.approx(grey_noise(half), rel=0.02)
    assert psnr(half, clean) + 1 < psnr(grain, clean) < psnr(full, clean)
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="strength"):
            DenoiseOptions(strength=bad)


def test_fidelity_improves_psnr_and_is_reproducible(denoiser):
    clean = smooth_test_image(64, 80, seed=5)
    noisy = add_gaussian_noise_8bit(clean, 15, seed=1)
    opts = DenoiseOptions(sigma=15, device="cpu")
    res = run_to_end(denoiser.run(noisy, opts))
    assert res.steps == 1 and res.timestep == 32 and res.device == "cpu"
    assert psnr(res.pixels, clean) > psnr(noisy, clean) + 3
    res2 = run_to_end(denoiser.run(noisy, opts))
    np.testing.assert_array_equal(res.pixels, res2.pixels)


def test_clean_photo_is_left_almost_unchanged(denoiser):
    clean = (np.round(smooth_test_image(64, 64, seed=2) * 255) / 255).astype(np.float32)
    res = run_to_end(denoiser.run(clean, DenoiseOptions(device="cpu")))
    assert res.sigma < 2.0
    assert psnr(res.pixels, clean) >= 45.0


def test_cuda_oom_halves_tiles_then_succeeds(denoiser, monkeypatch):
    """An out-of-memory error for big tiles makes the run restart with smaller tiles (exception type, not text)."""
    lm = denoiser.model("cpu")
    real_forward = lm.model.forward
    seen = []

    def forward(x, t):
        seen.append(x.shape[-1])
        if x.shape[-1] > 350:
            raise torch.cuda.OutOfMemoryError("simulated")
        return real_forward(x, t)

    monkeypatch.setattr(lm.model, "forward", forward)
    noisy = add_gaussian_noise_8bit(smooth_test_image(100, 600, seed=4), 25, seed=0)
    events = []
    gen = denoiser.run(noisy, DenoiseOptions(sigma=25, device="cpu", tile=512))
    res = run_to_end(gen, events.append)
    assert any("256px tiles" in w for w in res.warnings)
    assert max(seen) > 350 and res.pixels.shape == noisy.shape
    assert all(isinstance(e, StepEvent) for e in events)


def test_oom_on_cpu_with_smallest_tile_is_a_clear_error(denoiser, monkeypatch):
    lm = denoiser.model("cpu")

    def forward(x, t):
        raise torch.cuda.OutOfMemoryError("simulated")

    monkeypatch.setattr(lm.model, "forward", forward)
    with pytest.raises(MemoryError, match="not enough memory"):
        run_to_end(denoiser.run(np.zeros((32, 32, 3), np.float32), DenoiseOptions(sigma=10, device="cpu", tile=128)))


@pytest.mark.parametrize("ensemble", [1, 8, 16])
def test_tiled_run_matches_untiled_with_real_model(denoiser, ensemble):
    """Odd-sized on purpose: with the 8-view ensemble each flipped tile must still fall into the same
    pixel-unshuffle cells as the whole image (before that fix the two differed by up to 0.037); with 16
    views each tile is also moved by one pixel and must come back to the same place."""
    noisy = add_gaussian_noise_8bit(smooth_test_image(201, 263, seed=8), 25, seed=3)
    opts = DenoiseOptions(sigma=25, device="cpu", precision="fp32", ensemble=ensemble)
    whole = run_to_end(denoiser.run(noisy, replace(opts, tile=1024)))
    tiled = run_to_end(denoiser.run(noisy, replace(opts, tile=128)))
    assert np.abs(whole.pixels - tiled.pixels).max() < 2e-3
    assert psnr(whole.pixels, tiled.pixels) > 60


@pytest.mark.parametrize("precision, tolerance_db", [("bf16", 0.5), ("fp16", 0.01)])
def test_reduced_precision_keeps_psnr(denoiser, precision, tolerance_db):
    """Autocast arithmetic (bf16 on CPUs, fp16 on CUDA -- both run here on the CPU). This smooth test
    image comes out at ~43 dB at sigma 15, the worst case for rounding errors: bf16 costs 0.16 dB here with
    the stage-2 model, 0.29 with stage 3's and 0.31-0.42 with the stage-9 to stage-11 runs (0.36 / 0.42 /
    0.31 for stage 9 / 10a / the shipped stage 11), while on 256x256 crops of 6 CBSD68 photos it cost the same with all
    four of those, 0.04-0.05 dB at sigma 15 and 0.00 at sigma 50. fp16 0.00 dB, also on a real GPU
    (benchmarks/RESULTS.md)."""
    clean = smooth_test_image(96, 128, seed=4)
    for sigma in (15, 50):
        noisy = add_gaussian_noise_8bit(clean, sigma, seed=5)
        ref = run_to_end(denoiser.run(noisy, DenoiseOptions(sigma=sigma, device="cpu", precision="fp32")))
        low = run_to_end(denoiser.run(noisy, DenoiseOptions(sigma=sigma, device="cpu", precision=precision)))
        assert not np.array_equal(ref.pixels, low.pixels)  # the option really changes the arithmetic
        assert abs(psnr(low.pixels, clean) - psnr(ref.pixels, clean)) < tolerance_db
        assert psnr(low.pixels, clean) > psnr(noisy, clean) + 3


def test_precision_choice_per_device():
    from desktop_denoiser.pipeline.devices import cpu_has_fast_bf16, resolve_precision

    cpu = torch.device("cpu")
    assert resolve_precision("fp32", cpu) is None
    assert resolve_precision("bf16", cpu) is torch.bfloat16
    assert resolve_precision("auto", torch.device("cuda", 0)) is torch.float16
    assert resolve_precision("auto", cpu) is (torch.bfloat16 if cpu_has_fast_bf16() else None)
    with pytest.raises(ValueError, match="precision"):
        resolve_precision("int8", cpu)


def _camera_noisy(seed: int = 0) -> np.ndarray:
    """A smooth photo with spatially correlated noise (blurred white noise, per-pixel std 8)."""
    clean = smooth_test_image(96, 96, seed=4)
    noisy = clean + blurred_noise(clean.shape, 8.0, seed=seed) / 255
    return (np.clip(np.round(noisy * 255), 0, 255) / 255).astype(np.float32)


def test_estimate_carries_its_analysis_and_plans_reuse_it(denoiser, monkeypatch):
    from desktop_denoiser.core import real_noise as rn
    from desktop_denoiser.pipeline import jobs

    noisy = _camera_noisy()
    est = denoiser.estimate(noisy)
    assert est.correlated and est.analysis is not None and est.analysis.correlated
    assert est.sigma == pytest.approx(est.analysis.sigma)

    def no_analysis(*a, **k):
        raise AssertionError("analysed again")

    monkeypatch.setattr(jobs, "analyse_noise", no_analysis)
    fresh = noisy.copy()  # a new array: the per-array cache cannot answer, the analysis passed in must
    auto = denoiser.plan(fresh, DenoiseOptions(), analysis=est.analysis)
    assert auto.real and auto.steps == rn.plan_real(denoiser.schedule, est.analysis).total
    # an explicit sigma is white noise in auto mode, camera noise at that sigma with noise_model="real"
    white = denoiser.plan(fresh, DenoiseOptions(sigma=12.0), analysis=est.analysis)
    assert not white.real and white.sigma == 12.0 and white.steps == 1
    cam = denoiser.plan(fresh, DenoiseOptions(sigma=12.0, noise_model="real"), analysis=est.analysis)
    assert cam.real and cam.sigma == 12.0 and cam.analysis.sigma == 12.0
    assert cam.timestep == denoiser.schedule.sigma_to_timestep(rn.PD_SIGMA_SCALE * 12.0)
    gauss = denoiser.plan(fresh, DenoiseOptions(noise_model="gaussian"), analysis=est.analysis)
    assert not gauss.real and gauss.sigma == pytest.approx(est.analysis.sigma_white)


def test_forced_camera_path_at_a_manual_sigma_denoises(denoiser):
    noisy = _camera_noisy(1)
    clean = smooth_test_image(96, 96, seed=4)
    res = run_to_end(denoiser.run(noisy, DenoiseOptions(sigma=8.0, noise_model="real", device="cpu")))
    assert res.sigma == 8.0 and res.steps > 1  # pixel-shuffled sub-images + refinement
    assert psnr(res.pixels, clean) > psnr(noisy, clean) + 2.0


@pytest.mark.parametrize("shape", [(10, 12, 3), (7, 5, 3), (1, 200, 3), (200, 1, 1)])
def test_camera_path_at_a_given_sigma_runs_on_photos_too_small_to_measure(denoiser, shape):
    """With sigma given, noise_model="real" has nothing to measure; it used to analyse anyway and fail with
    "too small to measure ... set sigma by hand" on photos under 14 pixels a side, sigma set or not."""
    from desktop_denoiser.core.noise_estimation import NoiseEstimationError

    x = np.random.default_rng(0).random(shape).astype(np.float32)
    plan = denoiser.plan(x, DenoiseOptions(sigma=25.0, noise_model="real"))
    assert plan.real and plan.sigma == 25.0
    res = run_to_end(denoiser.run(x, DenoiseOptions(sigma=25.0, noise_model="real", device="cpu"), plan))
    assert res.pixels.shape == x.shape and np.isfinite(res.pixels).all()
    with pytest.raises(NoiseEstimationError, match="too small"):
        denoiser.plan(x, DenoiseOptions(noise_model="real"))  # no sigma: still the clear message


def test_a_buffer_reused_for_the_next_photo_is_analysed_afresh():
    """The analysis is remembered for the last array; the same array object refilled with another photo
    returned the previous photo's level."""
    d = Denoiser()
    rng = np.random.default_rng(0)
    flat = np.full((64, 64, 3), 0.5, np.float32)
    buf = np.clip(flat + rng.normal(0, 30 / 255, flat.shape), 0, 1).astype(np.float32)
    assert d.estimate(buf).sigma > 25
    assert d.estimate(buf) is not None and d._analyse(buf) is d._analyse(buf)  # remembered while unchanged
    buf[:] = np.clip(flat + rng.normal(0, 3 / 255, flat.shape), 0, 1)
    assert d.estimate(buf).sigma < 5 and d.plan(buf, DenoiseOptions()).sigma < 5


def test_clean_grey_photo_with_fine_texture_comes_back_unchanged(denoiser):
    """Black-and-white photos: the grey noise estimate once read fine texture as sigma 2.8 here (4-21 on
    clean CBSD68 photos in grey: 19 of 68 came back at >= 45 dB; now 58 of 68), and smoothed it."""
    from test_noise_estimation import _grey_with_grass

    grey = (np.round(_grey_with_grass() * 255) / 255).astype(np.float32)
    assert denoiser.estimate(grey).sigma < 1.0
    res = run_to_end(denoiser.run(grey, DenoiseOptions(device="cpu")))
    assert res.pixels.shape == grey.shape
    assert psnr(res.pixels, grey) >= 45.0
    noisy = add_gaussian_noise_8bit(grey[..., None], 15, seed=2)[..., 0]
    blind = run_to_end(denoiser.run(noisy, DenoiseOptions(device="cpu")))
    known = run_to_end(denoiser.run(noisy, DenoiseOptions(sigma=15, device="cpu")))
    assert abs(blind.sigma - 15) < 1.0
    assert blind.timestep >= known.timestep - 1  # 14.8 here: t* 31 instead of 32
    # This synthetic grass is unusually sensitive to t*: one timestep costs 0.11 dB with the stage-7
    # network and 0.22 dB with the grown one (on 12 CBSD68 photos blind and known agree within 0.02 dB).
    assert psnr(blind.pixels, grey) > psnr(known.pixels, grey) - 0.3


def test_grey_photo_stored_as_rgb_is_denoised_as_grey(denoiser):
    """R = G = B: measured and denoised as one grey channel (it was read as noise-free and left as it
    was), and the result stays neutral grey."""
    from test_noise_estimation import _grey_with_grass

    clean = _grey_with_grass()
    grey = add_gaussian_noise_8bit(clean[..., None], 25, seed=4)[..., 0]
    rgb = np.repeat(grey[..., None], 3, axis=2)
    res = run_to_end(denoiser.run(rgb, DenoiseOptions(device="cpu")))
    assert abs(res.sigma - 25) < 1.5 and res.pixels.shape == rgb.shape
    assert np.array_equal(res.pixels[..., 0], res.pixels[..., 1]) and np.array_equal(res.pixels[..., 1],
                                                                                      res.pixels[..., 2])
    as_grey = run_to_end(denoiser.run(grey, DenoiseOptions(device="cpu")))
    np.testing.assert_array_equal(res.pixels[..., 0], as_grey.pixels)
    assert psnr(res.pixels[..., 0], clean) > psnr(grey, clean) + 5


def test_camera_noise_is_suggested_for_a_lossless_raw_export_and_then_runs_at_the_scaled_level(denoiser):
    """Noise demosaiced from a raw mosaic and saved as PNG: Auto keeps it (it reads as detail, a known
    limit) but suggests the camera-noise path; chosen without a sigma, that path runs at
    MOSAIC_SIGMA_SCALE x the measured level and removes most of the noise."""
    from desktop_denoiser.bench.camera import raw_pipeline
    from desktop_denoiser.core import noise_analysis as na

    clean = smooth_test_image(192, 256, seed=8)
    reference, noisy = raw_pipeline(clean, 0.006, 2, noise=False), raw_pipeline(clean, 0.006, 2)
    est = denoiser.estimate(noisy)
    auto = denoiser.plan(noisy, DenoiseOptions(), analysis=est.analysis)
    assert not auto.real and auto.suggest_camera_noise
    cam = denoiser.plan(noisy, DenoiseOptions(noise_model="real"), analysis=est.analysis)
    assert cam.real and cam.sigma == pytest.approx(na.MOSAIC_SIGMA_SCALE * est.analysis.sigma)
    assert not cam.suggest_camera_noise
    res = run_to_end(denoiser.run(noisy, DenoiseOptions(noise_model="real", device="cpu"), cam))
    assert psnr(res.pixels, reference) > psnr(noisy, reference) + 5.0
    # camera noise that Auto already takes keeps its measured level and gets no suggestion
    other = denoiser.plan(_camera_noisy(), DenoiseOptions(noise_model="real"))
    assert other.sigma == pytest.approx(denoiser.estimate(_camera_noisy()).analysis.sigma)
    assert not denoiser.plan(_camera_noisy(), DenoiseOptions()).suggest_camera_noise


def test_strong_noise_of_a_lossless_raw_export_takes_the_camera_path_by_itself(denoiser):
    """Strong demosaiced noise saved as PNG (core.noise_analysis.MOSAIC_AUTO_SIGMA): Auto runs the camera
    path at MOSAIC_AUTO_SIGMA_SCALE x the measured level, the estimate says so, nothing is suggested, and
    a sigma the user gives is the level the camera path runs at."""
    from desktop_denoiser.bench.camera import raw_pipeline
    from desktop_denoiser.core import noise_analysis as na

    clean = smooth_test_image(192, 256, seed=8)
    reference, noisy = raw_pipeline(clean, 0.02, 2, noise=False), raw_pipeline(clean, 0.02, 2)
    est = denoiser.estimate(noisy)
    assert est.correlated and est.analysis.mosaic_noise
    assert est.sigma == pytest.approx(na.MOSAIC_AUTO_SIGMA_SCALE * est.analysis.sigma)
    auto = denoiser.plan(noisy, DenoiseOptions(), analysis=est.analysis)
    assert auto.real and not auto.suggest_camera_noise and auto.sigma == pytest.approx(est.sigma)
    res = run_to_end(denoiser.run(noisy, DenoiseOptions(device="cpu"), auto))
    assert psnr(res.pixels, reference) > psnr(noisy, reference) + 8.0  # measured +11.2 dB (before: +0.4)
    given = denoiser.plan(noisy, DenoiseOptions(sigma=9.0, noise_model="real"), analysis=est.analysis)
    assert given.real and given.sigma == pytest.approx(9.0)


SATURATED = {"blue": (0.1, 0.1, 0.9), "magenta": (0.9, 0.1, 0.8), "green": (0.1, 0.9, 0.1),
             "red": (0.9, 0.1, 0.1), "cyan": (0.1, 0.8, 0.9), "yellow": (0.95, 0.95, 0.2)}


@pytest.mark.parametrize("name", sorted(SATURATED))
def test_flat_saturated_colours_are_denoised_not_destroyed(denoiser, name):
    """The shipped network must handle colours that natural photos rarely hold: before training with
    saturated colours (training.color_augment) flat blue and magenta at sigma 1.5 came out at ~5 dB."""
    flat = np.ones((64, 64, 3), np.float32) * np.array(SATURATED[name], np.float32)
    for sigma in (1.5, 5, 25):
        noisy = add_gaussian_noise_8bit(flat, sigma, seed=0)
        out = run_to_end(denoiser.run(noisy, DenoiseOptions(sigma=sigma, device="cpu"))).pixels
        assert psnr(out, flat) > psnr(noisy, flat) + 1.0, (name, sigma)


def test_ensemble_of_eight_is_exactly_flip_and_rotation_equivariant():
    """A deliberately asymmetric 'network' (a skewed 3x3 convolution): its own output does not commute
    with flips or rotations, the 8-view ensemble's does, to float precision."""
    from desktop_denoiser.core.denoise import ENSEMBLE_SIZES, ensemble_eps

    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 3, 3, padding=1, bias=False)

    def model(x, t):
        return conv(x) + x[:, :, :, :1] * 0.5  # the first column leaks everywhere: not symmetric

    x, t = torch.randn(1, 3, 12, 20), torch.tensor([10])
    rot = lambda a: torch.rot90(a, 1, (2, 3))  # noqa: E731
    hflip = lambda a: a.flip(3)  # noqa: E731
    with torch.no_grad():
        assert (model(rot(x), t) - rot(model(x, t))).abs().max() > 0.1
        ens = ensemble_eps(model, 8)
        for g in (rot, hflip):
            assert (ens(g(x), t) - g(ens(x, t))).abs().max() < 1e-5
        four = ensemble_eps(model, 4)  # flips only: flip-equivariant, not rotation-equivariant
        assert (four(hflip(x), t) - hflip(four(x, t))).abs().max() < 1e-5
        assert (four(rot(x), t) - rot(four(x, t))).abs().max() > 1e-3
        odd = torch.randn(1, 3, 13, 21)  # padded to the down-sampling multiple inside, cropped back
        padded = ensemble_eps(model, 8, multiple=8)(odd, t)
        assert padded.shape == odd.shape and torch.isfinite(padded).all()
    assert ENSEMBLE_SIZES == (1, 2, 4, 8, 16, 32)
    with pytest.raises(ValueError, match="ensemble must be one of"):
        ensemble_eps(model, 3)


@pytest.mark.parametrize("n", [16, 32])
def test_offset_views_move_the_pixel_grid_and_come_back_aligned(n):
    """16 / 32 views add one-pixel offsets of the grid. A 'network' that sees only the first pixel of each
    2x2 cell (as a pixel-unshuffle would) gives, per view, an image that depends on the offset; each view
    must be moved back exactly: a position-independent model (x -> 2x) comes out exactly 2x."""
    from desktop_denoiser.core.denoise import ensemble_eps, _offset_views

    views = _offset_views(n)
    assert len(views) == n and len(set(views)) == n
    assert {o for o, _ in views} == ({(0, 0), (1, 1)} if n == 16 else {(0, 0), (1, 1), (0, 1), (1, 0)})
    x, t = torch.randn(1, 3, 13, 22), torch.tensor([10])  # odd height: padded to the multiple and back
    with torch.no_grad():
        assert torch.allclose(ensemble_eps(lambda a, _t: 2 * a, n, multiple=8)(x, t), 2 * x, atol=1e-6)

        def cell_corner(a, _t):  # each 2x2 cell (of the grid the view was given) filled with its top-left pixel
            return a[:, :, ::2, ::2].repeat_interleave(2, 2).repeat_interleave(2, 3)[..., :a.shape[2], :a.shape[3]]

        flat = torch.arange(16 * 24, dtype=torch.float32).reshape(1, 1, 16, 24).expand(1, 3, 16, 24)
        eight = ensemble_eps(cell_corner, 8, multiple=8)(flat, t)
        more = ensemble_eps(cell_corner, n, multiple=8)(flat, t)
        # at offset (1, 1) the cells are cut across the 8-view ensemble's: the averages differ inside
        assert (more - eight)[..., 2:-2, 2:-2].abs().max() > 0.1
        assert (more - flat)[..., 2:-2, 2:-2].abs().mean() < (eight - flat)[..., 2:-2, 2:-2].abs().mean()


def test_ensemble_improves_psnr_on_a_tiled_non_square_image(denoiser):
    """The 8-view ensemble with the shipped model, through the tiler (non-square tiles are transposed):
    better than a single view on white noise (+0.2 dB on CBSD68 photos, benchmarks/RESULTS.md)."""
    clean = smooth_test_image(96, 136, seed=9)
    noisy = add_gaussian_noise_8bit(clean, 25, seed=2)
    opts = DenoiseOptions(sigma=25, device="cpu", precision="fp32", tile=64)
    one = run_to_end(denoiser.run(noisy, opts))
    eight = run_to_end(denoiser.run(noisy, replace(opts, ensemble=8)))
    assert eight.pixels.shape == noisy.shape
    assert psnr(eight.pixels, clean) > psnr(one.pixels, clean) + 0.5  # measured +1.4 dB


def test_on_tile_reports_every_tile_and_can_abandon_a_step(denoiser):
    """A big photo is one long fidelity step: ``on_tile`` reports its tiles, and raising from it stops
    the run between two tiles (how the GUI cancels inside a step)."""
    noisy = add_gaussian_noise_8bit(smooth_test_image(200, 264, seed=8), 25, seed=3)
    opts = DenoiseOptions(sigma=25, device="cpu", tile=96)
    seen = []
    res = run_to_end(denoiser.run(noisy, opts, on_tile=lambda done, total: seen.append((done, total))))
    n = seen[0][1]
    assert res.steps == 1 and n > 4 and seen == [(k, n) for k in range(1, n + 1)]

    class Stop(Exception):
        pass

    calls = []

    def stop_at_three(done, total):
        calls.append(done)
        if done == 3:
            raise Stop()

    with pytest.raises(Stop):
        run_to_end(denoiser.run(noisy, opts, on_tile=stop_at_three))
    assert calls == [1, 2, 3]
    untiled = []
    run_to_end(denoiser.run(noisy[:64, :64], replace(opts, tile=512), on_tile=lambda d, t: untiled.append((d, t))))
    assert untiled == [(1, 1)]


def test_denoise_files_passes_tile_progress_through(denoiser, tmp_path):
    """The CLI's progress bar shows the tiles of a big photo's one step through denoise_files(on_tile=...)."""
    import cv2

    from desktop_denoiser.pipeline.jobs import FileJob, denoise_files

    src = tmp_path / "in.png"
    noisy = add_gaussian_noise_8bit(smooth_test_image(160, 200, seed=2), 25, seed=1)
    assert cv2.imwrite(str(src), (noisy * 255 + 0.5).astype(np.uint8)[:, :, ::-1])
    seen = []
    items = list(denoise_files([FileJob(src, tmp_path / "out" / "in.png")],
                               DenoiseOptions(sigma=25, device="cpu", tile=64), denoiser=denoiser,
                               on_tile=lambda d, t: seen.append((d, t))))
    assert [i["kind"] for i in items] == ["start", "step", "done"]
    n = seen[0][1]
    assert n > 1 and seen == [(k, n) for k in range(1, n + 1)]
    assert (tmp_path / "out" / "in.png").is_file()


def test_network_choice_per_device(monkeypatch):
    from desktop_denoiser.pipeline import devices

    assert devices.resolve_network("standard", "cpu") == "standard"
    assert devices.resolve_network("fast", torch.device("cuda", 0)) == "fast"
    assert devices.resolve_network("auto", torch.device("cuda", 0)) == "standard"
    monkeypatch.setattr(devices, "cpu_has_fast_bf16", lambda: True)
    assert devices.resolve_network("auto", "cpu") == "standard"
    monkeypatch.setattr(devices, "cpu_has_fast_bf16", lambda: False)  # e.g. an AVX2-only laptop
    assert devices.resolve_network(None, "cpu") == "fast"
    with pytest.raises(ValueError, match="network must be one of"):
        devices.resolve_network("huge", "cpu")


def test_both_shipped_networks_denoise_and_auto_takes_the_fast_one_without_bf16(monkeypatch):
    from desktop_denoiser.pipeline import devices

    d = Denoiser()
    assert d.model_paths["fast"].name == FAST_MODEL_NAME and d.model_paths["standard"] == default_model_path()
    std, fast = d.model("cpu", "standard"), d.model("cpu", "fast")
    assert fast.schedule.config == std.schedule.config
    assert fast.model.num_parameters() < 0.5 * std.model.num_parameters()
    clean = smooth_test_image(64, 80, seed=5)
    noisy = add_gaussian_noise_8bit(clean, 15, seed=1)
    results = {}
    for network in ("standard", "fast"):
        res = run_to_end(d.run(noisy, DenoiseOptions(sigma=15, device="cpu", network=network)))
        assert res.network == network and res.timestep == 32
        assert psnr(res.pixels, clean) > psnr(noisy, clean) + 3
        results[network] = res.pixels
    assert not np.array_equal(results["standard"], results["fast"])
    fp32 = run_to_end(d.run(noisy, DenoiseOptions(sigma=15, device="cpu", network="fast", precision="fp32")))
    monkeypatch.setattr(devices, "cpu_has_fast_bf16", lambda: False)  # such a CPU also computes in float32
    res = run_to_end(d.run(noisy, DenoiseOptions(sigma=15, device="cpu")))
    assert res.network == "fast"
    np.testing.assert_array_equal(res.pixels, fp32.pixels)
    # a model file given by hand is used whichever network is asked for
    named = Denoiser(default_model_path())
    assert set(named.model_paths.values()) == {default_model_path()}


def test_a_fast_network_with_another_noise_schedule_is_refused(tmp_path):
    from desktop_denoiser.core.checkpoint import save_model
    from desktop_denoiser.core.schedule import ScheduleConfig
    from desktop_denoiser.core.unet import UNet, UNetConfig

    other = save_model(tmp_path / "cosine.safetensors", UNet(UNetConfig(base_channels=8, channel_mults=(1, 2))),
                       ScheduleConfig(kind="cosine"))
    d = Denoiser()
    d.model_paths["fast"] = other
    with pytest.raises(ValueError, match="another noise schedule"):
        d.model("cpu", "fast")


def test_auto_takes_the_camera_network_for_camera_noise():
    from desktop_denoiser.pipeline.devices import auto_network_label, resolve_network

    d = Denoiser()
    clean = smooth_test_image(128, 128, seed=3)
    noisy = np.clip(np.round((clean + blurred_noise(clean.shape, 8.0, 1.0, 5) / 255) * 255), 0, 255) / 255
    noisy = noisy.astype(np.float32)
    camera, white = d.plan(noisy, DenoiseOptions()), d.plan(noisy, DenoiseOptions(sigma=8.0))
    assert camera.real and not white.real
    assert resolve_network("auto", "cpu", camera_noise=camera.real) == "camera"
    assert resolve_network("auto", "cpu", camera_noise=white.real) == resolve_network("auto", "cpu")
    assert resolve_network("standard", "cpu", camera_noise=camera.real) == "standard"
    assert resolve_network("fast", "cpu", camera_noise=camera.real) == "fast"
    assert resolve_network("camera", "cpu", camera_noise=white.real) == "camera"
    assert auto_network_label("cuda") == "standard; camera for camera noise"
    runs = {}
    for network in ("auto", "standard"):
        res = run_to_end(d.run(noisy, DenoiseOptions(network=network), camera))
        assert res.network == ("camera" if network == "auto" else "standard")
        assert psnr(res.pixels, clean) > psnr(noisy, clean) + 2
        runs[network] = res.pixels
    named = run_to_end(d.run(noisy, DenoiseOptions(network="camera"), camera)).pixels
    np.testing.assert_array_equal(runs["auto"], named)


def test_the_camera_network_beats_the_white_noise_networks_on_a_simulated_camera():
    """A photo through a simulated camera (raw noise, demosaicing, colour processing, JPEG; a camera the
    network was not trained with, on an image it has not seen). With chroma noise left in (no chroma noise
    reduction) the camera network leads by 1.6-1.7 dB. With the chroma noise blurred away the noise is
    nearly the same in the three channels, like a grey photo's, which the white-noise networks learnt from
    their grey training samples (``train --grey-prob``): there they are level with it (47.66 / 47.17 dB
    against 47.67), and *Auto*'s choice of the camera network must cost nothing."""
    from desktop_denoiser.core.camera_sim import Camera, camera_training_pair

    d = Denoiser()
    assert d.model_paths["camera"].name == CAMERA_MODEL_NAME
    clean = smooth_test_image(192, 192, seed=11).astype(np.float64) * 0.8 + 0.1
    for chroma_blur, lead in ((0.0, 0.5), (1.5, 0.0)):
        cam = Camera(red_gain=1.9, blue_gain=1.5, saturation=0.3, shot_gain=1.5e-3, read_std=1e-3,
                     demosaic="edge-aware", chroma_blur=chroma_blur, sharpen=0.3, jpeg_quality=90)
        reference, noisy = camera_training_pair(clean, np.random.default_rng(4), cam)
        plan = d.plan(noisy, DenoiseOptions(noise_model="real"))
        got = {n: psnr(run_to_end(d.run(noisy, DenoiseOptions(noise_model="real", network=n), plan)).pixels,
                       reference) for n in ("camera", "fast", "standard")}
        assert got["camera"] > psnr(noisy, reference) + 3
        assert got["camera"] >= max(got["fast"], got["standard"]) + lead, (chroma_blur, got)


def test_missing_network_files_fall_back_to_the_more_general_network(tmp_path, monkeypatch):
    from desktop_denoiser import paths

    monkeypatch.setattr(paths, "models_dir", lambda: tmp_path)
    for name in (paths.DEFAULT_MODEL_NAME, paths.FAST_MODEL_NAME):
        (tmp_path / name).write_bytes(b"x")
    got = paths.network_model_paths()
    assert got == {"standard": tmp_path / paths.DEFAULT_MODEL_NAME, "fast": tmp_path / paths.FAST_MODEL_NAME,
                   "camera": tmp_path / paths.FAST_MODEL_NAME}
    (tmp_path / paths.FAST_MODEL_NAME).unlink()
    assert set(paths.network_model_paths().values()) == {tmp_path / paths.DEFAULT_MODEL_NAME}
    one = tmp_path / "mine.safetensors"
    assert set(paths.network_model_paths(one).values()) == {one}



@pytest.mark.parametrize("field,value,message", [
    ("sigma", -1.0, "sigma must be a finite number >= 0"), ("sigma", float("nan"), "sigma must be"),
    ("sigma", float("inf"), "sigma must be"), ("mode", "sharp", "mode must be one of"),
    ("steps", 0, "steps must be at least 1"), ("tile", 8, "tile must be at least 16 pixels"),
    ("ensemble", 3, "ensemble must be one of"), ("noise_model", "film", "noise_model must be one of"),
    ("strength", 1.5, "strength must be between 0 and 1"),
    ("color_strength", -0.5, "color_strength must be between 0 and 1")])
def test_denoise_options_refuse_values_no_run_could_use(field, value, message):
    """The GUI, the CLI and the batch all build DenoiseOptions: a bad value fails there, with its name, not
    later inside a run (or, for a tile below 16 pixels, not at all: it left gaps in the output)."""
    with pytest.raises(ValueError, match=message):
        DenoiseOptions(**{field: value})
    ok = {"sigma": 0.0, "mode": "detail", "steps": 1, "tile": 16, "ensemble": 32, "noise_model": "real",
          "strength": 0.0, "color_strength": 0.0}
    assert getattr(DenoiseOptions(**{field: ok[field]}), field) == ok[field]


def test_a_result_that_could_not_be_saved_fails_before_the_photo_is_denoised(denoiser, tmp_path):
    """Running a folder again: photos whose result already exists are refused before they are read and
    denoised (before, each was denoised in full, minutes for a big photo, and then refused); the others
    are denoised; with overwrite both are."""
    import cv2

    from desktop_denoiser.pipeline.jobs import FileJob, denoise_files

    planned = []

    class Counting(Denoiser):
        def plan(self, pixels, opts, **kw):
            planned.append(pixels.shape)
            return super().plan(pixels, opts, **kw)

    d = Counting(denoiser.model_path)
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    jobs = []
    for name in ("a.png", "b.png"):
        noisy = add_gaussian_noise_8bit(smooth_test_image(48, 64, seed=len(jobs)), 20, seed=1)
        assert cv2.imwrite(str(src / name), np.round(noisy * 255).astype(np.uint8)[..., ::-1])
        jobs.append(FileJob(src / name, out / name))
    (out / "a.png").write_bytes(b"an earlier result")
    events = list(denoise_files(jobs, DenoiseOptions(sigma=20), denoiser=d))
    assert [(e["kind"], e["path"].rsplit("/", 1)[-1]) for e in events if e["kind"] != "step"] == [
        ("failed", "a.png"), ("start", "b.png"), ("done", "b.png")]
    assert "already exists" in events[0]["error"] and len(planned) == 1
    assert (out / "a.png").read_bytes() == b"an earlier result"
    assert events[0]["exists"] and not events[-1].get("exists")
    # skip_existing (resuming a batch): the photo with a result is not read, the other is denoised again
    (out / "b.png").unlink()
    events = list(denoise_files(jobs, DenoiseOptions(sigma=20), skip_existing=True, denoiser=d))
    assert [(e["kind"], e["path"].rsplit("/", 1)[-1]) for e in events if e["kind"] != "step"] == [
        ("skipped", "a.png"), ("start", "b.png"), ("done", "b.png")]
    assert events[0]["output"] == str(out / "a.png") and len(planned) == 2
    assert (out / "a.png").read_bytes() == b"an earlier result" and (out / "b.png").is_file()
    # overwrite wins over skip_existing: both are denoised and written
    kinds = [e["kind"] for e in denoise_files(jobs, DenoiseOptions(sigma=20), overwrite=True, skip_existing=True,
                                              denoiser=d)]
    assert kinds.count("done") == 2 and len(planned) == 4
    assert (out / "a.png").read_bytes()[:4] == b"\x89PNG"


def test_a_full_disk_stops_the_batch_instead_of_failing_every_photo(denoiser, tmp_path, monkeypatch):
    """With the output disk full, each later photo would be denoised (minutes for a big one) only to fail
    the same way: the batch stops at the first, and names the photos it did not start."""
    import errno

    import cv2

    from desktop_denoiser.pipeline.imageio import write as iio_write
    from desktop_denoiser.pipeline.jobs import FileJob, denoise_files

    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    jobs = []
    for i, name in enumerate(("a.png", "b.png", "c.png")):
        noisy = add_gaussian_noise_8bit(smooth_test_image(48, 64, seed=i), 20, seed=1)
        assert cv2.imwrite(str(src / name), np.round(noisy * 255).astype(np.uint8)[..., ::-1])
        jobs.append(FileJob(src / name, out / name))

    def full(_fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(iio_write.os, "fsync", full)
    events = [e for e in denoise_files(jobs, DenoiseOptions(sigma=20), denoiser=denoiser) if e["kind"] != "step"]
    assert [e["kind"] for e in events] == ["start", "failed", "stopped"]
    assert "is full" in events[1]["error"] and events[2]["not_started"] == [str(src / "b.png"), str(src / "c.png")]
    assert sorted(p.name for p in out.iterdir()) == []


def test_output_formats_set_extension_and_bit_depth(tmp_path):
    from desktop_denoiser.pipeline.jobs import collect_inputs

    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    for rel in ("a.jpg", "sub/b.PNG"):
        (src / rel).write_bytes(b"x")
    same = collect_inputs([src], tmp_path / "out", recursive=True)
    assert [(j.output.relative_to(tmp_path / "out").as_posix(), j.bit_depth) for j in same] == [
        ("a.jpg", None), ("sub/b.PNG", None)]
    tif = collect_inputs([src], tmp_path / "out", recursive=True, out_format="tif")
    assert [(j.output.relative_to(tmp_path / "out").as_posix(), j.bit_depth) for j in tif] == [
        ("a.tif", 16), ("sub/b.tif", 16)]
    jpg = collect_inputs([src / "sub" / "b.PNG"], tmp_path / "out", out_format="jpg")
    assert [(j.output.name, j.bit_depth) for j in jpg] == [("b.jpg", 8)]
    with pytest.raises(ValueError, match="same, tif, png, jpg"):
        collect_inputs([src], tmp_path / "out", out_format="bmp")


def test_results_in_another_format_are_not_written_among_the_originals(tmp_path):
    """a.jpg denoised as a.tif into its own folder could replace an original a.tif (with --overwrite):
    the photos' own folder is refused as output folder in every format."""
    from desktop_denoiser.pipeline.jobs import collect_inputs

    (tmp_path / "a.jpg").write_bytes(b"x")
    (tmp_path / "a.tif").write_bytes(b"original")
    for fmt in ("tif", "png", "same"):
        with pytest.raises(ValueError, match="output folder|overwrite an input"):
            collect_inputs([tmp_path / "a.jpg"], tmp_path, out_format=fmt)
    assert collect_inputs([tmp_path / "a.jpg"], tmp_path / "out", out_format="tif")[0].output == tmp_path / "out" / "a.tif"


def test_a_one_bit_image_is_left_as_it_is(denoiser, tmp_path):
    """A 1-bit image (a dithered picture, line art): its dots are the picture. Before, the white-noise
    estimate read them as sigma ~130 and the run blurred the image to grey; now nothing is measured and
    the run returns it unchanged. One grey pixel makes it an ordinary image again."""
    from PIL import Image

    from desktop_denoiser.core.noise_analysis import analyse_noise, is_two_level
    from desktop_denoiser.pipeline.imageio import read_image

    gradient = np.tile(np.linspace(0, 255, 160, dtype=np.float32), (120, 1)).astype(np.uint8)
    Image.fromarray(gradient).convert("1").save(tmp_path / "dither.png")  # Floyd-Steinberg dither
    img = read_image(tmp_path / "dither.png")
    assert 0.2 < img.pixels.mean() < 0.8 and set(np.unique(img.pixels)) == {0.0, 1.0}
    est = denoiser.estimate(img.pixels)
    assert est.analysis.two_level and est.sigma == 0 and est.timestep < 0
    out = run_to_end(denoiser.run(img.pixels, DenoiseOptions(device="cpu"))).pixels
    np.testing.assert_array_equal(out, img.pixels)
    rgb = np.repeat(img.pixels, 3, axis=2)
    assert is_two_level(rgb) and is_two_level((rgb * 255).astype(np.uint8))
    assert is_two_level((rgb * 65535).astype(np.uint16))
    rgb[60, 81] = 0.5
    assert not is_two_level(rgb) and not analyse_noise(rgb).two_level
