import numpy as np
import pytest

from desktop_denoiser.core.schedule import NoiseSchedule, ScheduleConfig


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_alphas_cumprod_monotone_and_bounded(kind):
    s = NoiseSchedule(ScheduleConfig(kind=kind))
    assert s.betas.dtype == np.float64 and s.alphas_cumprod.dtype == np.float64
    assert len(s.betas) == 1000
    assert np.all(np.diff(s.alphas_cumprod) < 0)
    assert 0 < s.alphas_cumprod[-1] < 1e-2 and s.alphas_cumprod[0] > 0.99
    np.testing.assert_allclose(s.alphas_cumprod, np.cumprod(1 - s.betas))


def test_linear_schedule_endpoints():
    s = NoiseSchedule()
    assert s.betas[0] == pytest.approx(1e-4) and s.betas[-1] == pytest.approx(0.02)


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_posterior_variance_formula(kind):
    s = NoiseSchedule(ScheduleConfig(kind=kind))
    t = np.arange(1, 1000)
    expected = (1 - s.alphas_cumprod[t - 1]) / (1 - s.alphas_cumprod[t]) * s.betas[t]
    np.testing.assert_allclose(s.posterior_variance[t], expected, rtol=1e-12)
    assert s.posterior_variance[0] == 0.0
    # noiseless x_t = sqrt(abar_t) x0 must give the posterior mean sqrt(abar_{t-1}) x0
    lhs = s.posterior_mean_coef1 + s.posterior_mean_coef2 * np.sqrt(s.alphas_cumprod)
    np.testing.assert_allclose(lhs, np.sqrt(s.alphas_cumprod_prev), rtol=1e-9)


@pytest.mark.parametrize("sigma,expected", [(15, 32), (25, 56), (50, 114)])
def test_linear_sigma_to_timestep(sigma, expected):
    # Ho et al.'s 1-based t = 33 / 57 / 115; we index timesteps from 0 like diffusers.
    s = NoiseSchedule()
    t = s.sigma_to_timestep(sigma)
    assert t == expected
    abar = s.alphas_cumprod[t]
    target = 1 / (1 + (2 * sigma / 255) ** 2)
    assert abs(abar - target) < 0.003
    assert s.timestep_to_sigma(t) == pytest.approx(sigma, rel=0.03)


def test_clean_image_maps_to_no_timestep_and_bad_sigma_rejected():
    s = NoiseSchedule()
    assert s.sigma_to_timestep(0.0) == -1
    assert s.sigma_to_timestep(0.3) == -1
    assert s.sigma_to_timestep(1.3) == 0
    with pytest.raises(ValueError):
        s.sigma_to_timestep(-1)
    with pytest.raises(ValueError):
        NoiseSchedule(ScheduleConfig(kind="quadratic"))


@pytest.mark.parametrize("T", [10, 20])
def test_a_linear_schedule_too_short_for_its_endpoints_is_refused(T):
    """Ho's endpoints rescaled to T <= 20 steps give beta >= 1 (alpha_bar <= 0, NaN sigmas) without a word."""
    from desktop_denoiser.core.schedule import ScheduleConfig, make_betas

    with pytest.raises(ValueError, match="at most just below 1"):
        make_betas(ScheduleConfig(num_timesteps=T))
    assert make_betas(ScheduleConfig(num_timesteps=21)).max() < 1

