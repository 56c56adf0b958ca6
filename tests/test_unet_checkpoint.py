import pytest
import torch

from desktop_denoiser.core.checkpoint import CheckpointError, load_model, save_model
from desktop_denoiser.core.schedule import ScheduleConfig
from desktop_denoiser.core.unet import UNet, UNetConfig

TINY = UNetConfig(base_channels=8, channel_mults=(1, 2), num_res_blocks=1, time_embed_dim=16)


def _randomised(cfg=TINY, seed=0):
    torch.manual_seed(seed)
    m = UNet(cfg)
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0, 0.1)
    return m.eval()


@pytest.mark.parametrize("hw", [(17, 23), (32, 32), (5, 40)])
def test_unet_any_size_and_time_conditioning(hw):
    m = _randomised()
    x = torch.randn(2, 3, *hw)
    with torch.no_grad():
        a = m(x, torch.tensor([3, 3]))
        b = m(x, torch.tensor([300, 300]))
    assert a.shape == x.shape
    assert (a - b).abs().mean() > 1e-3  # output depends on t
    assert torch.isfinite(a).all()


def test_unet_output_is_local_no_image_statistics():
    # No normalisation layers: changing far-away pixels must not change the output at a distant location.
    m = _randomised()
    x = torch.randn(1, 3, 64, 128)
    y = x.clone()
    y[..., 100:] += 5.0
    with torch.no_grad():
        a, b = m(x, torch.tensor([10])), m(y, torch.tensor([10]))
    torch.testing.assert_close(a[..., :40], b[..., :40])


@pytest.mark.parametrize("t", [[7], [7, 7], [7, 300]])
def test_inference_folds_film_into_the_convolution_without_changing_the_function(t):
    # eval mode with one t per batch folds FiLM into conv1; train mode applies it to the activations
    m = _randomised()
    x = torch.randn(len(t), 3, 24, 40)
    with torch.no_grad():
        folded = m.eval()(x, torch.tensor(t))
        plain = m.train()(x, torch.tensor(t))
        single = m.eval()(x[-1:], torch.tensor(t[-1:]))
    torch.testing.assert_close(folded, plain, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(folded[-1:], single, rtol=1e-5, atol=1e-5)  # batch rows stay independent
    assert (plain - m.eval()(x, torch.tensor(t) + 50)).abs().mean() > 1e-3  # and t still matters


def test_checkpoint_round_trip_carries_config_and_schedule(tmp_path):
    m = _randomised()
    sched = ScheduleConfig(kind="cosine", num_timesteps=500)
    path = save_model(tmp_path / "m.safetensors", m, sched, info={"steps": 7})
    lm = load_model(path)
    assert lm.model.config == TINY
    assert lm.schedule.config == sched and lm.schedule.num_timesteps == 500
    assert lm.info["steps"] == 7
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(lm.model(x, torch.tensor([4])), m(x, torch.tensor([4])))


def test_checkpoint_errors_are_clear(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_model(tmp_path / "missing.safetensors")
    bad = tmp_path / "corrupt.safetensors"
    bad.write_bytes(b"\x00\x01garbage" * 10)
    with pytest.raises(CheckpointError, match="not a readable"):
        load_model(bad)
    from safetensors.torch import save_file

    other = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(other), metadata={"format": "something-else"})
    with pytest.raises(CheckpointError, match="not a Desktop Denoiser model"):
        load_model(other)
    newer = tmp_path / "newer.safetensors"
    save_file({"w": torch.zeros(2)}, str(newer), metadata={"format": "desktop-denoiser-ddpm", "version": "99"})
    with pytest.raises(CheckpointError, match="version"):
        load_model(newer)


def test_v_predicting_network_returns_epsilon_and_round_trips(tmp_path):
    from desktop_denoiser.core.schedule import NoiseSchedule

    sched = NoiseSchedule()
    ab = torch.tensor(sched.alphas_cumprod, dtype=torch.float32)
    cfg = UNetConfig(base_channels=8, channel_mults=(1, 2), num_res_blocks=1, time_embed_dim=16, prediction="v")
    with pytest.raises(ValueError, match="alphas_cumprod"):
        UNet(cfg)
    with pytest.raises(ValueError, match="prediction"):
        UNet(UNetConfig(prediction="x0"))
    fresh = UNet(cfg, alphas_cumprod=sched.alphas_cumprod).eval()  # zero-initialised output layer: v = 0
    x, t = torch.randn(2, 3, 20, 28), torch.tensor([10, 900])
    with torch.no_grad():
        torch.testing.assert_close(fresh(x, t), (1 - ab[t]).sqrt().view(-1, 1, 1, 1) * x)
    torch.manual_seed(1)
    m = UNet(cfg, alphas_cumprod=sched.alphas_cumprod)
    as_eps = UNet(UNetConfig(**{**cfg.to_dict(), "channel_mults": (1, 2), "prediction": "epsilon"}))
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0, 0.1)
    as_eps.load_state_dict(m.state_dict())  # the same weights read as an epsilon-network give the raw v
    m.eval(), as_eps.eval()
    with torch.no_grad():
        v = as_eps(x, t)
        a = ab[t].sqrt().view(-1, 1, 1, 1)
        torch.testing.assert_close(m(x, t), a * v + (1 - a**2).sqrt() * x, rtol=1e-5, atol=1e-5)
    lm = load_model(save_model(tmp_path / "v.safetensors", m, sched.config, info={}))
    assert lm.model.config.prediction == "v"
    with torch.no_grad():
        torch.testing.assert_close(lm.model(x, t), m(x, t))


def test_app_denoises_with_a_v_predicting_model_file(tmp_path):
    """A checkpoint trained with --objective v runs through the app unchanged: its v becomes epsilon inside
    the network. With v = 0 (a fresh network) epsilon = sqrt(1 - abar) x_t, so fidelity mode's x0 is
    abar * y (an epsilon-network with output 0 would return y itself)."""
    import numpy as np

    from desktop_denoiser.core.sampler import run_to_end
    from desktop_denoiser.core.schedule import NoiseSchedule
    from desktop_denoiser.pipeline.jobs import DenoiseOptions, Denoiser

    sched = NoiseSchedule()
    cfg = UNetConfig(base_channels=8, channel_mults=(1, 2), num_res_blocks=1, time_embed_dim=16, prediction="v")
    path = save_model(tmp_path / "v.safetensors", UNet(cfg, alphas_cumprod=sched.alphas_cumprod), sched.config, {})
    y = np.random.default_rng(0).uniform(0.1, 0.9, (24, 40, 3)).astype(np.float32)
    res = run_to_end(Denoiser(path).run(y, DenoiseOptions(sigma=10, noise_model="gaussian", precision="fp32", device="cpu")))
    assert res.steps == 1 and res.timestep == sched.sigma_to_timestep(10)
    ab = float(sched.alphas_cumprod[res.timestep])
    np.testing.assert_allclose(res.pixels, (ab * (2 * y - 1) + 1) / 2, atol=2e-6)
    assert np.abs(res.pixels - y).max() > 1e-3  # not the epsilon reading of the same weights


def test_save_model_leaves_no_temporary_file_when_it_fails(tmp_path, monkeypatch):
    from pathlib import Path

    from desktop_denoiser.core.schedule import ScheduleConfig
    from desktop_denoiser.core.unet import UNet, UNetConfig

    m = UNet(UNetConfig(base_channels=8, channel_mults=(1,), num_res_blocks=1))

    def refuse(self, target):
        raise IsADirectoryError(21, "Is a directory")

    monkeypatch.setattr(Path, "replace", refuse)
    with pytest.raises(IsADirectoryError):
        save_model(tmp_path / "m.safetensors", m, ScheduleConfig())
    assert list(tmp_path.iterdir()) == []
