import numpy as np
import pytest
import torch

from desktop_denoiser.core.denoise import denoise_image, plan_denoise
from desktop_denoiser.core.diffusion import Diffusion
from desktop_denoiser.core.sampler import StepEvent, ddpm_timesteps, reverse_process, run_to_end, strided_timesteps
from desktop_denoiser.core.schedule import NoiseSchedule, ScheduleConfig
from desktop_denoiser.core.tiling import MIN_TILE_SIZE, tiled_eps
from desktop_denoiser.core.unet import UNet, UNetConfig


def zero_eps(x, t):
    return torch.zeros_like(x)


def test_timestep_lists():
    assert ddpm_timesteps(3) == [3, 2, 1, 0]
    assert strided_timesteps(56, 1) == [56]
    ts = strided_timesteps(114, 10)
    assert ts[0] == 114 and ts[-1] == 0 and len(ts) == 10 and all(a > b for a, b in zip(ts, ts[1:]))
    assert strided_timesteps(2, 10) == [2, 1, 0]


@pytest.mark.parametrize("timesteps,eta", [(ddpm_timesteps(20), 1.0), (strided_timesteps(60, 7), 0.0)])
def test_generator_events_and_result(timesteps, eta):
    d = Diffusion()
    x = torch.randn(1, 3, 16, 16)
    gen = reverse_process(zero_eps, d, x, timesteps, eta=eta, generator=torch.Generator().manual_seed(0), preview=True)
    events = []
    while True:
        try:
            events.append(next(gen))
        except StopIteration as stop:
            result = stop.value
            break
    assert len(events) == len(timesteps)
    assert all(isinstance(e, StepEvent) for e in events)
    assert [e.index for e in events] == list(range(1, len(timesteps) + 1))
    assert [e.t for e in events] == list(timesteps) and events[-1].t == 0
    assert all(e.total == len(timesteps) for e in events)
    assert events[0].pred_x0.shape == (16, 16, 3) and events[0].pred_x0.dtype == np.float32
    assert events[0].x_t.flags.owndata or events[0].x_t.base is None
    assert result.shape == x.shape and result.abs().max() <= 1.0


def test_seeded_runs_reproduce_and_differ_by_seed():
    d = Diffusion()
    x = torch.randn(1, 3, 8, 8)

    def run(seed):
        return run_to_end(reverse_process(zero_eps, d, x, ddpm_timesteps(30), generator=torch.Generator().manual_seed(seed)))

    torch.testing.assert_close(run(1), run(1))
    assert (run(1) - run(2)).abs().max() > 1e-3


def test_consumer_stops_cleanly_after_two_steps():
    d = Diffusion()
    calls = []

    def counting_eps(x, t):
        calls.append(int(t[0]))
        return torch.zeros_like(x)

    gen = reverse_process(counting_eps, d, torch.randn(1, 3, 8, 8), ddpm_timesteps(50))
    for ev in gen:
        if ev.index == 2:
            break
    gen.close()
    assert calls == [50, 49]  # no work after the consumer stopped


def test_ancestral_chain_with_oracle_recovers_x0():
    # With the true epsilon of a fixed x0 the chain must land on x0.
    d = Diffusion()
    x0 = torch.rand(1, 3, 8, 8) * 1.6 - 0.8
    t0 = 40
    xt = d.q_sample(x0, torch.tensor([t0]), torch.randn_like(x0))
    oracle = lambda x, t: d.epsilon_from_x0(x, t, x0)  # noqa: E731
    out = run_to_end(reverse_process(oracle, d, xt, ddpm_timesteps(t0), generator=torch.Generator().manual_seed(0)))
    torch.testing.assert_close(out, x0, atol=1e-4, rtol=0)


def test_algorithm2_from_pure_noise_runs_full_schedule():
    d = Diffusion()
    x = torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    gen = reverse_process(zero_eps, d, x, ddpm_timesteps(d.num_timesteps - 1))
    n = sum(1 for _ in gen)
    assert n == 1000


def test_plan_modes():
    s = NoiseSchedule()
    p = plan_denoise(s, 25, "fidelity")
    assert p.timestep == 56 and p.timesteps == (56,) and p.eta == 0.0
    p = plan_denoise(s, 25, "detail")
    assert p.timesteps == tuple(range(56, -1, -1)) and p.eta == 1.0
    assert plan_denoise(s, 25, "detail", steps=10).steps == 10
    assert plan_denoise(s, 0.1, "detail").steps == 0
    with pytest.raises(ValueError):
        plan_denoise(s, 25, "sharpen")


def _tiny_model():
    torch.manual_seed(0)
    m = UNet(UNetConfig(base_channels=8, channel_mults=(1, 2), num_res_blocks=1, time_embed_dim=16))
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0, 0.05)
    return m.eval()


def test_tiled_equals_untiled():
    m = _tiny_model()
    x = torch.randn(1, 3, 150, 210)
    t = torch.tensor([30])
    with torch.no_grad():
        full = m(x, t)
        tiled = tiled_eps(m, "cpu", tile=64, overlap=16, margin=32)(x, t)
        no_margin = tiled_eps(m, "cpu", tile=64, overlap=16, margin=0)(x, t)
    assert (tiled - full).abs().max().item() < 1e-5
    # without context margins the tile borders would show: the test can fail
    assert (no_margin - full).abs().max().item() > 1e-3


def test_tiles_crossfade_over_their_overlap():
    """Where two tiles disagree, the blend goes from one to the other smoothly across the overlap. The earlier
    tile kept weight 1 through it, so the blend rose only halfway and then jumped (0 ... 24, then 48)."""
    calls = []

    def per_tile(x, t):  # each tile 'predicts' its own constant
        calls.append(len(calls))
        return torch.full_like(x, 48.0 * (len(calls) - 1))

    x = torch.zeros(1, 1, 48, 112)
    out = tiled_eps(per_tile, "cpu", tile=64, overlap=16, margin=0)(x, torch.tensor([1]))[0, 0, 0]
    assert len(calls) == 2 and out[0] == 0 and out[-1] == 48
    steps = out[1:] - out[:-1]
    assert (steps >= -1e-4).all() and steps.max() < 48 / 16 * 1.6  # a raised cosine over the 16 pixels


@pytest.mark.parametrize("size", [(48, 64), (100, 37), (129, 300)])
def test_every_allowed_tile_size_covers_the_whole_image(size):
    """Tiles sit on a 16-pixel grid: from MIN_TILE_SIZE up every tile size must cover every pixel (a pointwise
    'network' comes back exactly); smaller tiles left gaps (NaN, saved as black) and are refused."""
    def pointwise(x, t):
        return torch.tanh(2 * x + 0.1)

    x = torch.randn(1, 3, *size)
    t = torch.tensor([1])
    for tile in list(range(MIN_TILE_SIZE, 70)) + [96, 130, 256]:
        out = tiled_eps(pointwise, "cpu", tile)(x, t)
        assert torch.isfinite(out).all() and (out - pointwise(x, t)).abs().max().item() < 1e-6, tile
    for tile in (1, 5, MIN_TILE_SIZE - 1):
        with pytest.raises(ValueError, match=f"at least {MIN_TILE_SIZE} pixels"):
            tiled_eps(pointwise, "cpu", tile)


def test_denoise_image_clean_input_is_returned_untouched(clean_image):
    s = NoiseSchedule()
    out = run_to_end(denoise_image(_tiny_model(), s, clean_image, plan_denoise(s, 0.0)))
    np.testing.assert_array_equal(out, clean_image)


def test_denoise_image_grayscale_shape():
    s = NoiseSchedule()
    gray = np.random.default_rng(0).random((20, 30, 1), dtype=np.float32)
    out = run_to_end(denoise_image(_tiny_model(), s, gray, plan_denoise(s, 20)))
    assert out.shape == (20, 30, 1) and out.dtype == np.float32


def test_fidelity_uses_more_steps_only_at_heavy_noise():
    s = NoiseSchedule()
    assert plan_denoise(s, 25, "fidelity").steps == 1
    heavy = plan_denoise(s, 50, "fidelity")
    assert heavy.timestep == 114 and heavy.steps == 3 and heavy.timesteps[0] == 114 and heavy.eta == 0.0
    assert plan_denoise(s, 50, "fidelity", steps=1).steps == 1


@pytest.mark.parametrize("t", [0, 3, 40])
def test_a_runaway_epsilon_is_bounded(t):
    """A network failure (|eps| ~ 100 on flat saturated colours, seen at small t) moves x0 by at most
    EPS_BOUND * sigma_t from the observation, not by the runaway value; a sane eps is untouched."""
    from desktop_denoiser.core.sampler import EPS_BOUND

    d = Diffusion(NoiseSchedule())
    x = torch.rand(1, 3, 16, 16) * 1.6 - 0.8
    ab = float(d.schedule.alphas_cumprod[t])
    sigma_t = ((1 - ab) / ab) ** 0.5
    runaway = run_to_end(reverse_process(lambda xt, tt: torch.full_like(xt, -100.0), d, x, [t], clip_x0=False))
    shift = (runaway - x / ab ** 0.5).abs().max().item()
    assert shift == pytest.approx(EPS_BOUND * sigma_t, rel=1e-4)
    sane = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(0)).clamp(-4, 4)
    bounded = run_to_end(reverse_process(lambda xt, tt: sane, d, x, [t], clip_x0=False))
    unbounded = run_to_end(reverse_process(lambda xt, tt: sane, d, x, [t], clip_x0=False, eps_bound=None))
    torch.testing.assert_close(bounded, unbounded)


def test_overwriting_eps_saves_memory_without_changing_the_result():
    """overwrite_eps=True computes x0 in eps's memory: the same numbers bit for bit, for the one-step,
    strided DDIM and ancestral chains; with the default the sampler leaves eps_fn's tensor alone."""
    d = Diffusion(NoiseSchedule(ScheduleConfig(kind="linear")))
    x = torch.randn(1, 3, 16, 24, generator=torch.Generator().manual_seed(1))
    w = torch.randn(3, 3, generator=torch.Generator().manual_seed(2)) * 0.3

    def fresh_eps(xt, tt):  # a new tensor per call, depending on x_t and t
        return torch.tanh(torch.einsum("cd,bdhw->bchw", w, xt) * (1 + tt.float()[:, None, None, None] / 500))

    for ts, eta in (([56], 0.0), (strided_timesteps(114, 3), 0.0), (ddpm_timesteps(12), 1.0),
                    (strided_timesteps(60, 5), 0.5)):
        runs = [run_to_end(reverse_process(fresh_eps, d, x.clone(), ts, eta=eta, overwrite_eps=flag,
                                           generator=torch.Generator().manual_seed(0))) for flag in (False, True)]
        assert torch.equal(runs[0], runs[1])
    shared = fresh_eps(x, torch.tensor([56])) * 10  # beyond the sampler's bound on eps, so a clamp would show
    kept = shared.clone()
    for bound in (5.0, None):
        run_to_end(reverse_process(lambda xt, tt: shared, d, x.clone(), [56], eps_bound=bound))
        assert torch.equal(shared, kept)
