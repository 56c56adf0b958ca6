import math

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
