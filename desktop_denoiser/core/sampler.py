"""The DDPM reverse process as a generator.

``reverse_process`` starts from x_{t*} at any timestep and walks a list of timesteps down to 0. Each
step yields a small :class:`StepEvent` (timestep, step index, optional cheap previews) and the
generator *returns* the final x_0 (on the [-1, 1] scale). The GUI worker, the CLI progress bar and the
tests all consume this same generator; a consumer cancels simply by no longer iterating (or ``close()``).

Steps:

* consecutive timesteps with ``eta=1`` -> Algorithm 2 of Ho et al.: x_{t-1} ~ q(x_{t-1} | x_t, x0_pred),
  i.e. the posterior mean plus sqrt(posterior_variance) * z (ancestral DDPM sampling);
* any other pair (strided timesteps, or ``eta<1``) -> the DDIM update of Song et al. with stochasticity
  ``eta`` (0 = deterministic).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Generator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .diffusion import Diffusion

EpsFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class StepEvent:
    """One finished reverse step. Previews are owned float32 HxWxC copies in [0, 1] (safe to send
    across threads), present only when the sampler was asked for them."""

    index: int  # 1-based number of the step just finished
    total: int
    t: int  # timestep the step started from
    x_t: np.ndarray | None = None
    pred_x0: np.ndarray | None = None


def ddpm_timesteps(t_start: int) -> list[int]:
    """Every timestep from t_start down to 0 (Algorithm 2 from x_{t*})."""
    return list(range(int(t_start), -1, -1))


def strided_timesteps(t_start: int, steps: int) -> list[int]:
    """``steps`` timesteps spaced evenly from t_start down to 0 (fewer when t_start is small)."""
    t_start = int(t_start)
    steps = max(1, min(int(steps), t_start + 1))
    if steps == 1:
        return [t_start]
    ts = np.round(np.linspace(t_start, 0, steps)).astype(int)
    out: list[int] = []
    for t in ts:
        if not out or t < out[-1]:
            out.append(int(t))
    return out


def to_preview(x: torch.Tensor, max_size: int | None) -> np.ndarray:
    """(1, C, H, W) tensor on [-1, 1] -> owned float32 HxWxC array in [0, 1], at most max_size pixels wide/high."""
    x = x[:1].detach()
    if max_size:
        h, w = x.shape[-2:]
        scale = max_size / max(h, w)
        if scale < 1:
            x = F.interpolate(x.float(), size=(max(1, round(h * scale)), max(1, round(w * scale))), mode="area")
    img = ((x[0].float().clamp(-1, 1) + 1) * 0.5).permute(1, 2, 0).cpu().numpy()
    return np.array(img, dtype=np.float32, copy=True)


# The network predicts E[eps | x_t] of unit-variance noise, which cannot plausibly leave +-5 (a unit
# Gaussian exceeds 5 with probability 6e-7, and the clipped or camera-like noise the model is trained on
# is no larger). Bounding it caps what a network failure can do to x0 at 5 sigma_t per pixel: the stage-2
# and stage-3 models' small-t gain of ~1/sigma_t leaked the level of flat saturated blue and magenta
# into eps (|eps| ~ 100, a 5 dB result at sigma 1.5); natural photos never reach the bound (unchanged
# PSNR, benchmarks/RESULTS.md).
EPS_BOUND = 5.0


def reverse_process(
    eps_fn: EpsFn,
    diffusion: Diffusion,
    x: torch.Tensor,
    timesteps: Sequence[int],
    *,
    eta: float = 1.0,
    generator: torch.Generator | None = None,
    preview: bool = False,
    preview_max_size: int | None = 256,
    clip_x0: bool = True,
    eps_bound: float | None = EPS_BOUND,
    overwrite_eps: bool = False,
) -> Generator[StepEvent, None, torch.Tensor]:
    """Run the reverse process from ``x`` = x_{timesteps[0]} through ``timesteps`` (strictly decreasing).

    Returns x_0. Noise is drawn from ``generator`` on the CPU (so seeded runs match across devices).
    ``overwrite_eps``: ``eps_fn`` returns a new tensor on every call, which the sampler may overwrite
    (x0 is then computed in its memory: two full-size buffers fewer, 600 MB each on a 50 MP photo)."""
    ts = [int(t) for t in timesteps]
    if any(b >= a for a, b in zip(ts, ts[1:])):
        raise ValueError(f"timesteps must be strictly decreasing, got {ts[:8]}...")
    if ts and not 0 <= ts[-1] <= ts[0] < diffusion.num_timesteps:
        raise ValueError(f"timesteps out of range [0, {diffusion.num_timesteps})")
    abar = diffusion.schedule.alphas_cumprod
    total = len(ts)
    B = x.shape[0]
    for i, t in enumerate(ts):
        t_prev = ts[i + 1] if i + 1 < total else -1
        t_batch = torch.full((B,), t, dtype=torch.long, device=x.device)
        with torch.no_grad():
            eps = eps_fn(x, t_batch)
            if eps_bound is not None:
                eps = eps.clamp_(-eps_bound, eps_bound) if overwrite_eps else eps.clamp(-eps_bound, eps_bound)
            ancestral = t_prev == t - 1 and eta == 1.0
            if overwrite_eps and (t_prev < 0 or ancestral or clip_x0):  # eps itself is not needed after x0
                x0 = diffusion.pred_original_sample_(x, t_batch, eps)
            else:
                x0 = diffusion.pred_original_sample(x, t_batch, eps)
            if clip_x0:
                x0.clamp_(-1, 1)  # x0 is this step's own tensor
            if t_prev < 0:
                x = x0
            elif ancestral:
                mean, var, _ = diffusion.q_posterior(x0, x, t_batch)
                x = mean + var.sqrt() * _noise(x, generator)
            else:
                if clip_x0:  # the epsilon that the clipped x0 implies (only the DDIM update uses it)
                    eps = diffusion.epsilon_from_x0(x, t_batch, x0)
                a_t, a_prev = float(abar[t]), float(abar[t_prev])
                sigma = eta * np.sqrt((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev))
                x = np.sqrt(a_prev) * x0 + np.sqrt(max(1 - a_prev - sigma**2, 0.0)) * eps
                if sigma > 0:
                    x = x + sigma * _noise(x, generator)
        yield StepEvent(
            index=i + 1,
            total=total,
            t=t,
            x_t=to_preview(x, preview_max_size) if preview else None,
            pred_x0=to_preview(x0, preview_max_size) if preview else None,
        )
    return x


def _noise(like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    z = torch.randn(like.shape, generator=generator, dtype=torch.float32, device="cpu")
    return z.to(device=like.device, dtype=like.dtype)


def run_to_end(gen: Generator[StepEvent, None, torch.Tensor], on_event: Callable[[StepEvent], None] | None = None):
    """Drive a reverse-process generator to completion and return its result."""
    while True:
        try:
            ev = next(gen)
        except StopIteration as stop:
            return stop.value
        if on_event is not None:
            on_event(ev)
