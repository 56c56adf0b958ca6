import math

import numpy as np

import pytest
import torch

from desktop_denoiser.core.observation import blur_kernel, camera_like_noise


def test_blur_kernel_has_unit_energy():
    for w in (0.45, 0.8, 1.3):
        k = blur_kernel(w)
        assert k.sum() > 1.0  # a low-pass kernel...
        assert float(k.pow(2).sum()) == pytest.approx(1.0, abs=1e-6)  # ...that keeps white noise's variance


@pytest.mark.parametrize("width, rho_c", [(0.6, 0.0), (0.84, 0.8), (1.2, 0.5)])
def test_camera_like_noise_statistics(width, rho_c):
    g = torch.Generator().manual_seed(1)
    n = camera_like_noise((4, 3, 160, 160), g, blur_range=(width, width), channel_corr_range=(rho_c, rho_c))
    assert n.shape == (4, 3, 160, 160)
    assert float(n.std()) == pytest.approx(1.0, abs=0.03)  # per-pixel std stays sqrt(1 - abar) in q_sample
    assert abs(float(n.mean())) < 0.05
    var = float(n.var())
    lag1 = float((n[..., 1:] * n[..., :-1]).mean()) / var
    lag1_v = float((n[..., 1:, :] * n[..., :-1, :]).mean()) / var
    k = blur_kernel(width)
    expected = float((k[:-1] * k[1:]).sum())  # lag-1 autocorrelation of white noise blurred by k
    assert expected == pytest.approx(math.exp(-1 / (4 * width * width)), abs=0.06)  # ~ the continuous formula
    assert lag1 == pytest.approx(expected, abs=0.03) and lag1_v == pytest.approx(expected, abs=0.03)
    chan = float((n[:, 0] * n[:, 1]).mean()) / var
    assert chan == pytest.approx(rho_c, abs=0.05)


def test_camera_like_noise_is_seeded_and_varies_per_sample():
    a = camera_like_noise((3, 3, 32, 32), torch.Generator().manual_seed(5))
    b = camera_like_noise((3, 3, 32, 32), torch.Generator().manual_seed(5))
    torch.testing.assert_close(a, b)
    lags = [float((s[..., 1:] * s[..., :-1]).mean() / s.var()) for s in a]
    assert max(lags) - min(lags) > 0.05  # a different blur per sample


def test_camera_samples_as_sub_images_are_the_renderings_sub_images():
    """--camera-sub-image-prob: a camera sample given as sub-images is the same rendering (clean and noisy)
    cut into the four pixel-shuffled sub-images the camera-noise path denoises, in a 2x2 grid."""
    from desktop_denoiser.core.observation import camera_observations, sub_image_tiles
    from desktop_denoiser.core.real_noise import pd_split
    from desktop_denoiser.core.schedule import NoiseSchedule

    img = np.random.default_rng(3).random((8, 12, 3))
    tiles = sub_image_tiles(img)
    subs, _ = pd_split(img, 2)
    np.testing.assert_array_equal(tiles[:4, :6], subs[0])
    np.testing.assert_array_equal(tiles[4:, 6:], subs[3])
    schedule = NoiseSchedule()
    x0 = torch.from_numpy(np.random.default_rng(4).random((1, 3, 32, 48)).astype(np.float32) * 2 - 1)
    whole = camera_observations(x0, schedule, np.random.default_rng(7))
    shuffled = camera_observations(x0, schedule, np.random.default_rng(7), sub_image_prob=1.0)

    def hwc(t):
        return t[0].permute(1, 2, 0).numpy()

    np.testing.assert_allclose(hwc(shuffled[0]), sub_image_tiles(hwc(whole[0])), atol=1e-6)
    residue = hwc(whole[2]) * float(schedule.sigmas[whole[1][0]])
    np.testing.assert_allclose(hwc(shuffled[2]) * float(schedule.sigmas[shuffled[1][0]]), sub_image_tiles(residue),
                               atol=1e-5)
    assert not np.allclose(hwc(shuffled[0]), hwc(whole[0]))
