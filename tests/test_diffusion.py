import numpy as np
import pytest
import torch

from desktop_denoiser.core.diffusion import Diffusion
from desktop_denoiser.core.schedule import NoiseSchedule, ScheduleConfig


@pytest.mark.parametrize("t", [0, 56, 500, 999])
def test_q_sample_statistics(t):
    d = Diffusion()
    abar = d.schedule.alphas_cumprod[t]
    torch.manual_seed(0)
    x0 = torch.full((4000, 1, 16, 16), 0.6)
    xt = d.q_sample(x0, torch.full((4000,), t))
    assert xt.mean().item() == pytest.approx(np.sqrt(abar) * 0.6, abs=3e-3)
    assert xt.var().item() == pytest.approx(1 - abar, rel=0.02, abs=2e-5)
    assert d.add_noise is not None and Diffusion.add_noise is Diffusion.q_sample


def test_q_sample_is_exact_given_noise_and_x0_roundtrip():
    d = Diffusion(ScheduleConfig(kind="cosine"))
    x0 = torch.rand(3, 3, 8, 8) * 2 - 1
    noise = torch.randn_like(x0)
    t = torch.tensor([1, 300, 900])
    xt = d.q_sample(x0, t, noise)
    a = torch.tensor(d.schedule.sqrt_alphas_cumprod[[1, 300, 900]], dtype=torch.float32).view(-1, 1, 1, 1)
    torch.testing.assert_close(xt, a * x0 + (1 - a**2).sqrt() * noise)
    torch.testing.assert_close(d.pred_original_sample(xt, t, noise), x0, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(d.epsilon_from_x0(xt, t, x0), noise, atol=1e-3, rtol=1e-3)


def test_posterior_matches_bayes_on_scalar_gaussians():
    # q(x_{t-1}|x_t,x0) from the product of q(x_t|x_{t-1}) and q(x_{t-1}|x0), computed by brute force.
    s = NoiseSchedule()
    d = Diffusion(s)
    t = 40
    x0, xt = torch.tensor([[[[0.3]]]], dtype=torch.float64), torch.tensor([[[[0.1]]]], dtype=torch.float64)
    mean, var, _ = d.q_posterior(x0, xt, torch.tensor([t]))
    a, b = s.alphas[t], s.betas[t]
    prior_m, prior_v = np.sqrt(s.alphas_cumprod[t - 1]) * 0.3, 1 - s.alphas_cumprod[t - 1]
    post_v = 1 / (1 / prior_v + a / b)
    post_m = post_v * (prior_m / prior_v + np.sqrt(a) * 0.1 / b)
    assert var.item() == pytest.approx(post_v, rel=1e-9)
    assert mean.item() == pytest.approx(post_m, rel=1e-9)


def test_training_loss_of_perfect_predictor_is_zero():
    d = Diffusion()
    x0 = torch.rand(2, 3, 8, 8)
    noise = torch.randn_like(x0)
    oracle = lambda x, t: noise  # noqa: E731
    assert d.training_loss(oracle, x0, torch.tensor([5, 700]), noise).item() == 0.0
    assert d.training_loss(lambda x, t: torch.zeros_like(x), x0, torch.tensor([5, 700]), noise).item() > 0.5


def test_clipped_observation_noise_embeds_a_clipped_photo():
    d = Diffusion(NoiseSchedule())
    g = torch.Generator().manual_seed(0)
    x0 = torch.cat([torch.full((1, 3, 32, 32), -0.95), torch.zeros(1, 3, 32, 32)])  # a dark and a mid-grey image
    t = torch.tensor([114, 114])  # sigma = 50 in 8-bit units
    noise = torch.randn(x0.shape, generator=g)
    eff = d.clipped_observation_noise(x0, t, noise)
    ab = float(d.schedule.alphas_cumprod[114])
    sigma_t = ((1 - ab) / ab) ** 0.5
    # q_sample with the effective noise is exactly sqrt(abar) * clip(x0 + sigma_t * eps)
    torch.testing.assert_close(d.q_sample(x0, t, eff), ab ** 0.5 * (x0 + sigma_t * noise).clamp(-1, 1),
                               atol=1e-5, rtol=1e-5)
    # the dark image's noise is biased upwards (values below black were cut off) ...
    assert eff[0].mean() > 0.3 and eff[0].min() >= (-1 - (-0.95)) / sigma_t - 1e-6
    # ... the mid-grey one hardly clips: its effective noise is the Gaussian noise itself where unclipped
    unclipped = ((x0[1] + sigma_t * noise[1]).abs() < 1)
    torch.testing.assert_close(eff[1][unclipped], noise[1][unclipped])
    # the mask keeps the Gaussian noise for unselected samples
    mixed = d.clipped_observation_noise(x0, t, noise, mask=torch.tensor([False, True]))
    torch.testing.assert_close(mixed[0], noise[0])
    torch.testing.assert_close(mixed[1], eff[1])


def test_loss_weights_give_the_v_and_min_snr_objectives():
    d = Diffusion()
    ab = torch.tensor(d.schedule.alphas_cumprod, dtype=torch.float64)
    t = torch.tensor([0, 32, 114, 500, 999])
    snr = ab[t] / (1 - ab[t])
    assert d.loss_weights(t, "epsilon") is None  # Ho et al.'s simple loss
    torch.testing.assert_close(d.loss_weights(t, "v").double(), 1 / ab[t], rtol=1e-5, atol=0)
    mins = d.loss_weights(t, "min-snr", min_snr_gamma=5.0).double()
    torch.testing.assert_close(mins[:2], 5.0 / snr[:2], rtol=1e-5, atol=0)  # SNR > 5: capped x0 weight
    assert mins[-2:].tolist() == [1.0, 1.0]  # SNR < 5: the plain epsilon-MSE
    with pytest.raises(ValueError, match="objective"):
        d.loss_weights(t, "x0")

    # weighted epsilon-MSE with the "v" weights = the MSE of v = sqrt(abar) eps - sqrt(1 - abar) x0
    torch.manual_seed(0)
    x0, noise = torch.rand(5, 3, 8, 8) * 2 - 1, torch.randn(5, 3, 8, 8)
    eps_hat = noise + 0.1 * torch.randn_like(noise)
    a = ab[t].float().sqrt().view(-1, 1, 1, 1)
    s = (1 - ab[t]).float().sqrt().view(-1, 1, 1, 1)
    x_t = d.q_sample(x0, t, noise)
    v, v_hat = a * noise - s * x0, a * eps_hat - s * d.pred_original_sample(x_t, t, eps_hat)
    loss = d.training_loss(lambda x, tt: eps_hat, x0, t, noise, d.loss_weights(t, "v"))
    assert loss.item() == pytest.approx((v - v_hat).pow(2).mean().item(), rel=1e-4)
