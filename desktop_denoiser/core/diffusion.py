"""The Gaussian diffusion of Ho et al. 2020 in torch: forward process q(x_t | x_0), the posterior
q(x_{t-1} | x_t, x_0), epsilon <-> x0 conversions and the Algorithm 1 training loss.

All functions take the :class:`~desktop_denoiser.core.schedule.NoiseSchedule` buffers through a
:class:`Diffusion` object that caches them as torch tensors per device.
"""

from __future__ import annotations

import torch

from .schedule import NoiseSchedule, ScheduleConfig


def _extract(buf: torch.Tensor, t: torch.Tensor, ndim: int) -> torch.Tensor:
    """buf[t] reshaped to broadcast over a (B, C, H, W) batch."""
    out = buf.gather(0, t.long().reshape(-1))
    return out.reshape(-1, *([1] * (ndim - 1)))


# Training objectives, as weights of the epsilon-MSE (Diffusion.loss_weights); "v" also makes the network
# v-parameterised (UNetConfig.prediction), so its loss is the MSE of the network's own output
OBJECTIVES = ("epsilon", "v", "min-snr")


class Diffusion:
    """Torch view of a noise schedule (float64 buffers, cast at use)."""

    _BUFFERS = (
        "betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod",
        "sqrt_one_minus_alphas_cumprod", "posterior_variance", "posterior_log_variance_clipped",
        "posterior_mean_coef1", "posterior_mean_coef2", "sigmas",
    )

    def __init__(self, schedule: NoiseSchedule | ScheduleConfig | None = None):
        if not isinstance(schedule, NoiseSchedule):
            schedule = NoiseSchedule(schedule)
        self.schedule = schedule
        self.num_timesteps = schedule.num_timesteps
        self._cache: dict[str, dict[str, torch.Tensor]] = {}

    def buffer(self, name: str, device: torch.device | str = "cpu") -> torch.Tensor:
        key = str(device)
        if key not in self._cache:
            self._cache[key] = {
                n: torch.as_tensor(getattr(self.schedule, n), dtype=torch.float64, device=device)
                for n in self._BUFFERS
            }
        return self._cache[key][name]

    def _coef(self, name: str, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return _extract(self.buffer(name, like.device), t.to(like.device), like.ndim).to(like.dtype)

    # -- forward process -------------------------------------------------------------------
    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """Sample x_t ~ q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I) in closed form."""
        if noise is None:
            noise = torch.randn_like(x0)
        return self._coef("sqrt_alphas_cumprod", t, x0) * x0 + self._coef("sqrt_one_minus_alphas_cumprod", t, x0) * noise

    add_noise = q_sample  # diffusers' name

    def q_posterior(self, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor):
        """Mean, variance and clipped log-variance of q(x_{t-1} | x_t, x_0)."""
        mean = self._coef("posterior_mean_coef1", t, x_t) * x0 + self._coef("posterior_mean_coef2", t, x_t) * x_t
        var = self._coef("posterior_variance", t, x_t)
        log_var = self._coef("posterior_log_variance_clipped", t, x_t)
        return mean, var, log_var

    # -- parameterisation --------------------------------------------------------------------
    def pred_original_sample(self, x_t: torch.Tensor, t: torch.Tensor, epsilon: torch.Tensor) -> torch.Tensor:
        """x0 = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)."""
        return (x_t - self._coef("sqrt_one_minus_alphas_cumprod", t, x_t) * epsilon) / self._coef("sqrt_alphas_cumprod", t, x_t)

    def pred_original_sample_(self, x_t: torch.Tensor, t: torch.Tensor, epsilon: torch.Tensor) -> torch.Tensor:
        """:meth:`pred_original_sample` computed in ``epsilon``'s memory (overwritten; the same values):
        no full-size temporaries, for big photos."""
        c = self._coef("sqrt_one_minus_alphas_cumprod", t, x_t)
        return epsilon.mul_(-c).add_(x_t).div_(self._coef("sqrt_alphas_cumprod", t, x_t))

    def epsilon_from_x0(self, x_t: torch.Tensor, t: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        return (x_t - self._coef("sqrt_alphas_cumprod", t, x_t) * x0) / self._coef("sqrt_one_minus_alphas_cumprod", t, x_t)

    def clipped_observation_noise(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor,
                                  mask: torch.Tensor | None = None) -> torch.Tensor:
        """The noise that makes ``q_sample(x0, t, result)`` the embedding of a *clipped* photo.

        A user's noisy file is y = clip(x0 + sigma_t * eps, -1, 1) (8-bit values cannot leave the range),
        embedded as x_t = sqrt(abar_t) * y. Its effective noise (y - x0) / sigma_t equals ``noise`` where
        nothing clipped and is biased towards the image where it did (dark and bright areas). Training on
        it for part of the batch teaches the network the bias; ``mask`` (B,) bool picks those samples.
        """
        ab = self._coef("alphas_cumprod", t, x0)
        sigma_t = ((1 - ab) / ab).sqrt()
        eff = ((x0 + sigma_t * noise).clamp(-1.0, 1.0) - x0) / sigma_t
        if mask is not None:
            eff = torch.where(mask.to(x0.device).reshape(-1, *([1] * (x0.ndim - 1))), eff, noise)
        return eff

    # -- Algorithm 1 ---------------------------------------------------------------------------
    def loss_weights(self, t: torch.Tensor, objective: str = "epsilon", min_snr_gamma: float = 5.0) -> torch.Tensor | None:
        """Per-sample weights of the epsilon-MSE that make it another objective (:data:`OBJECTIVES`;
        None = Ho et al.'s simple loss). With SNR_t = abar_t / (1 - abar_t):

        * ``"v"``: the v-prediction loss |v - v_hat|^2 (Salimans & Ho 2022, v = sqrt(abar) eps -
          sqrt(1 - abar) x0), which is |eps - eps_hat|^2 / abar_t for the epsilon that v_hat implies,
          i.e. the weight (SNR_t + 1) / SNR_t;
        * ``"min-snr"``: Min-SNR-gamma (Hang et al. 2023) for epsilon-prediction, min(SNR_t, gamma) / SNR_t,
          i.e. the x0-error |x0 - x0_hat|^2 (= |eps - eps_hat|^2 / SNR_t) with its weight capped at gamma.
        """
        if objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
        if objective == "epsilon":
            return None
        ab = _extract(self.buffer("alphas_cumprod", t.device), t, 1).reshape(-1)
        snr = ab / (1 - ab)
        w = (snr + 1) / snr if objective == "v" else snr.clamp(max=min_snr_gamma) / snr
        return w.float()

    def training_loss(self, model, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor | None = None,
                      weights: torch.Tensor | None = None) -> torch.Tensor:
        """|| eps - eps_theta(sqrt(abar) x0 + sqrt(1 - abar) eps, t) ||^2, averaged (optionally weighted per sample)."""
        if noise is None:
            noise = torch.randn_like(x0)
        x_t = self.q_sample(x0, t, noise)
        per_sample = (model(x_t, t) - noise).pow(2).flatten(1).mean(1)
        if weights is not None:
            per_sample = per_sample * weights
        return per_sample.mean()
