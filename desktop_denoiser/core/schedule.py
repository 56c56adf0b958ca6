"""Beta schedules of the DDPM and every buffer derived from them (computed in float64).

* ``linear``: Ho et al. 2020, betas linearly spaced from 1e-4 to 0.02 over T=1000 steps.
* ``cosine``: Nichol & Dhariwal 2021, alphas_cumprod = cos^2(((t/T)+s)/(1+s) * pi/2), betas clipped at 0.999.

Timesteps are 0-based indices ``t = 0 .. T-1`` into ``alphas_cumprod`` (``alphas_cumprod[0]`` is the
least noisy level). The noise level matching an image with additive Gaussian noise of standard
deviation ``sigma`` (8-bit units) is the timestep whose noise-to-signal ratio
``sqrt((1 - alphas_cumprod) / alphas_cumprod)`` equals ``sigma' = 2 * sigma / 255`` (the [-1, 1] scale),
i.e. ``alphas_cumprod[t*] ~= 1 / (1 + sigma'^2)``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

SCHEDULE_KINDS = ("linear", "cosine")


@dataclass(frozen=True)
class ScheduleConfig:
    kind: str = "linear"
    num_timesteps: int = 1000
    beta_start: float = 1e-4
    beta_end: float = 0.02
    cosine_s: float = 0.008

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ScheduleConfig":
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def make_betas(config: ScheduleConfig) -> np.ndarray:
    T = int(config.num_timesteps)
    if T < 1:
        raise ValueError("num_timesteps must be >= 1")
    if config.kind == "linear":
        # Ho et al. define the endpoints for T=1000; rescale so other T keep the same total noise.
        scale = 1000.0 / T
        if scale * config.beta_end >= 1.0:  # (T <= 20 at Ho's endpoints: a beta of 1 or more, alpha_bar <= 0)
            raise ValueError(f"a linear schedule of {T} steps would need beta up to {scale * config.beta_end:.3g} "
                             f"(at most just below 1): use more timesteps or a smaller beta_end")
        return np.linspace(scale * config.beta_start, scale * config.beta_end, T, dtype=np.float64)
    if config.kind == "cosine":
        steps = np.arange(T + 1, dtype=np.float64) / T
        f = np.cos((steps + config.cosine_s) / (1 + config.cosine_s) * math.pi / 2) ** 2
        alphas_cumprod = f / f[0]
        betas = 1.0 - alphas_cumprod[1:] / alphas_cumprod[:-1]
        return np.clip(betas, 0.0, 0.999)
    raise ValueError(f"unknown schedule kind {config.kind!r}; expected one of {SCHEDULE_KINDS}")


class NoiseSchedule:
    """All float64 buffers of a DDPM noise schedule (numpy arrays of length T)."""

    def __init__(self, config: ScheduleConfig | None = None):
        self.config = config or ScheduleConfig()
        self.betas = make_betas(self.config)
        self.num_timesteps = len(self.betas)
        self.alphas = 1.0 - self.betas
        self.alphas_cumprod = np.cumprod(self.alphas)
        self.alphas_cumprod_prev = np.append(1.0, self.alphas_cumprod[:-1])
        self.sqrt_alphas_cumprod = np.sqrt(self.alphas_cumprod)
        self.sqrt_one_minus_alphas_cumprod = np.sqrt(1.0 - self.alphas_cumprod)
        # Posterior q(x_{t-1} | x_t, x_0) (Ho et al. eq. 6-7).
        self.posterior_variance = self.betas * (1.0 - self.alphas_cumprod_prev) / (1.0 - self.alphas_cumprod)
        self.posterior_log_variance_clipped = np.log(
            np.append(self.posterior_variance[1], self.posterior_variance[1:])
        )
        self.posterior_mean_coef1 = self.betas * np.sqrt(self.alphas_cumprod_prev) / (1.0 - self.alphas_cumprod)
        self.posterior_mean_coef2 = (1.0 - self.alphas_cumprod_prev) * np.sqrt(self.alphas) / (1.0 - self.alphas_cumprod)
        # Noise-to-signal ratio of x_t / sqrt(alphas_cumprod): the Gaussian noise level the
        # network removes at t, on the [-1, 1] image scale.
        self.sigmas = np.sqrt((1.0 - self.alphas_cumprod) / self.alphas_cumprod)

    # -- noise level <-> timestep ---------------------------------------------------------
    def timestep_to_sigma(self, t: int) -> float:
        """Gaussian noise std (8-bit units) that timestep ``t`` removes."""
        return float(self.sigmas[int(t)] * 255.0 / 2.0)

    def sigma_to_timestep(self, sigma: float) -> int:
        """Timestep whose noise level best matches ``sigma`` (8-bit units), nearest in log-sigma.

        Returns ``-1`` when ``sigma`` is below half the smallest level of the schedule (nothing to
        remove: the image is already clean at the model's finest noise level)."""
        sigma = float(sigma)
        if not math.isfinite(sigma) or sigma < 0:
            raise ValueError(f"sigma must be a finite number >= 0, got {sigma}")
        s = 2.0 * sigma / 255.0
        if s < 0.5 * self.sigmas[0]:
            return -1
        idx = int(np.argmin(np.abs(np.log(self.sigmas) - math.log(s))))
        return idx

    def to_dict(self) -> dict:
        return self.config.to_dict()
