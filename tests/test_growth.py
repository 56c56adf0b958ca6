"""Growing a trained network wider/deeper (core/growth.py): same function at the start, trainable after."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import smooth_test_image
from desktop_denoiser.cli import main
from desktop_denoiser.core.checkpoint import load_model, save_model
from desktop_denoiser.core.denoise import denoise_image, plan_denoise
from desktop_denoiser.core.growth import check_growable, grow_unet
from desktop_denoiser.core.metrics import psnr
from desktop_denoiser.core.sampler import run_to_end
from desktop_denoiser.core.diffusion import Diffusion
from desktop_denoiser.core.schedule import NoiseSchedule, ScheduleConfig
from desktop_denoiser.core.training import TrainConfig, Trainer
from desktop_denoiser.core.unet import UNet, UNetConfig
from desktop_denoiser.paths import default_model_path

TINY = UNetConfig(base_channels=8, channel_mults=(1, 2), num_res_blocks=1, time_embed_dim=16)


def _randomised(cfg=TINY, seed=0, std=0.2) -> UNet:
    """A network whose every weight is non-zero (a fresh UNet's zero-initialised convs would hide bugs)."""
    torch.manual_seed(seed)
    m = UNet(cfg)
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0, std)
    return m.eval()


def _x_t(schedule, t, h=40, w=36, seed=0):
    x0 = torch.from_numpy(smooth_test_image(h, w, seed).transpose(2, 0, 1))[None] * 2 - 1
    g = torch.Generator().manual_seed(seed)
    return Diffusion(schedule).q_sample(x0, torch.tensor([t]), torch.randn(x0.shape, generator=g))


@pytest.mark.parametrize("grow", [dict(base_channels=12), dict(num_res_blocks=3),
                                  dict(base_channels=16, channel_mults=(1, 3), num_res_blocks=2)])
def test_grown_network_computes_the_same_function(grow):
    old = _randomised()
    new = grow_unet(old, replace(TINY, **grow)).eval()
    assert new.num_parameters() > old.num_parameters()
    s = NoiseSchedule()
    for t in (0, 20, 150, 999):
        x = _x_t(s, t, seed=t)
        with torch.no_grad():
            a, b = old(x, torch.tensor([t])), new(x, torch.tensor([t]))
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5 * float(a.abs().max()))


def test_the_shipped_model_grown_denoises_exactly_as_before():
    lm = load_model(default_model_path())
    cfg = lm.model.config
    grown = grow_unet(lm.model, replace(cfg, base_channels=cfg.base_channels + 8,
                                        num_res_blocks=cfg.num_res_blocks + 1)).eval()
    clean = smooth_test_image(64, 72, seed=3)
    noisy = np.clip(clean + np.random.default_rng(0).normal(0, 25 / 255, clean.shape), 0, 1).astype(np.float32)
    plan = plan_denoise(lm.schedule, 25.0)
    out_old = run_to_end(denoise_image(lm.model, lm.schedule, noisy, plan, dtype=torch.float32))
    out_new = run_to_end(denoise_image(grown, lm.schedule, noisy, plan, dtype=torch.float32))
    assert psnr(out_old, clean) > psnr(noisy, clean) + 5  # a real denoising, not two zero outputs
    assert np.abs(out_new - out_old).max() < 1e-4


def test_new_capacity_is_trained():
    """The new channels start disconnected from the output (zero weights into the old channels); after a
    few optimiser steps those weights and the new channels' own weights have moved."""
    old = _randomised(std=0.05)
    new = grow_unet(old, replace(TINY, base_channels=12, num_res_blocks=2)).train()
    out_cols0 = new.out.weight[:, 8:].detach().clone()
    inp_rows0 = new.inp.weight[8:].detach().clone()
    extra0 = new.down_blocks[0][1].conv2.weight.detach().clone()  # an appended block: starts as the identity
    assert out_cols0.abs().max() == 0 and extra0.abs().max() == 0
    opt = torch.optim.Adam(new.parameters(), lr=1e-3)
    s = NoiseSchedule()
    for step in range(3):
        x = _x_t(s, 50, seed=step)
        loss = (new(x, torch.tensor([50])) - torch.randn(x.shape, generator=torch.Generator().manual_seed(9))).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert new.out.weight[:, 8:].abs().max() > 0
    assert (new.inp.weight[8:] - inp_rows0).abs().max() > 0
    assert new.down_blocks[0][1].conv2.weight.abs().max() > 0


@pytest.mark.parametrize("bad, why", [
    (dict(base_channels=4), "narrower"),
    (dict(channel_mults=(1, 2, 4)), "levels"),
    (dict(unshuffle=1), "unshuffle"),
    (dict(time_embed_dim=32), "time_embed_dim"),
    (dict(num_res_blocks=0), "fewer"),
    (dict(base_channels=16, channel_mults=(1, 1)), "equal"),  # the second level's first block would lose its 1x1 skip
])
def test_growing_refuses_what_it_cannot_preserve(bad, why):
    with pytest.raises(ValueError, match=why):
        check_growable(TINY, replace(TINY, **bad))
    with pytest.raises(ValueError, match=why):
        grow_unet(_randomised(), replace(TINY, **bad))


def _photos(tmp_path):
    d = tmp_path / "photos"
    d.mkdir()
    for i in range(2):
        Image.fromarray((smooth_test_image(48, 48, seed=i) * 255).astype(np.uint8)).save(d / f"{i}.png")
    return d


def test_trainer_grows_its_init_and_records_it(tmp_path):
    photos = _photos(tmp_path)
    init = save_model(tmp_path / "small.safetensors", _randomised(), ScheduleConfig(), {"steps": 7})
    wide = replace(TINY, base_channels=12).to_dict()
    kw = dict(data=[str(photos)], batch_size=2, crop_size=32, save_every=2, val_every=1000, warmup_steps=1,
              device="cpu", init=str(init), model=wide)
    with pytest.raises(ValueError, match="another model config"):
        Trainer(TrainConfig(out_dir=str(tmp_path / "refused"), steps=1, **kw))
    tr = Trainer(TrainConfig(out_dir=str(tmp_path / "grown"), steps=2, grow=True, **kw))
    x = _x_t(NoiseSchedule(), 40)
    with torch.no_grad():  # step 0: the grown network is the init's function
        a, b = _randomised()(x, torch.tensor([40])), tr.ema(x, torch.tensor([40]))
    torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5 * float(a.abs().max()))
    tr.train()
    lm = load_model(tmp_path / "grown" / "model_ema.safetensors")
    assert lm.model.config.base_channels == 12 and lm.info["steps"] == 2
    assert lm.info["grown_from"] == TINY.to_dict() and lm.info["init"] == "small.safetensors"
    # resumed runs keep the record
    again = Trainer(TrainConfig(out_dir=str(tmp_path / "grown"), steps=3, grow=True, **kw))
    assert again.step == 2
    again.train()
    assert load_model(tmp_path / "grown" / "model_ema.safetensors").info["grown_from"] == TINY.to_dict()


def test_cli_grow(tmp_path, capsys):
    photos = _photos(tmp_path)
    init = save_model(tmp_path / "small.safetensors", _randomised(), ScheduleConfig(), {"steps": 7})
    common = ["train", str(photos), "--steps", "1", "--batch-size", "2", "--crop", "32", "--threads", "1"]
    assert main([*common, "--out", str(tmp_path / "a"), "--grow"]) == 2
    assert "--grow needs --init" in capsys.readouterr().err
    # TINY's time embedding is 16 wide; the CLI builds 128-wide configs, so growing it is refused clearly
    assert main([*common, "--out", str(tmp_path / "b"), "--init", str(init), "--grow"]) == 2
    assert "time_embed_dim" in capsys.readouterr().err
    small = UNetConfig(base_channels=8, channel_mults=(1, 2), num_res_blocks=1)
    init = save_model(tmp_path / "small128.safetensors", _randomised(small), ScheduleConfig(), {"steps": 7})
    out = tmp_path / "grown.safetensors"
    assert main([*common, "--out", str(tmp_path / "c"), "--init", str(init), "--grow", "--base-channels", "12",
                 "--channel-mults", "1", "2", "--res-blocks", "2", "--export", str(out)]) == 0
    lm = load_model(out)
    assert (lm.model.config.base_channels, lm.model.config.num_res_blocks) == (12, 2)
    assert lm.info["grown_from"]["base_channels"] == 8


def _gpu_script_setup(tmp_path):
    """Two training photos, one validation photo and the environment of a GPU script's CPU trial mode."""
    import os
    import shutil
    import sys

    if shutil.which("bash") is None or shutil.which("split") is None:
        pytest.skip("needs bash and split")
    train, val = tmp_path / "train", tmp_path / "val"
    for d, n in ((train, 2), (val, 1)):
        d.mkdir()
        for i in range(n):
            Image.fromarray((smooth_test_image(64, 64, seed=i) * 255).astype(np.uint8)).save(d / f"{i}.png")
    env = dict(os.environ, DEVICE="cpu", STEPS="2", BENCH_STEPS="1", BENCH_WARMUP="1", BATCHES="2",
               CROP="32", PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    return train, val, env


def _run_gpu_script(name, train, val, out, env, *args):
    import subprocess

    root = Path(__file__).resolve().parents[1]
    r = subprocess.run(["bash", f"models/{name}", str(train), str(val), str(out), *args], cwd=root, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]


def _joined_parts(out, name, tmp_path):
    """The weights a GPU machine sends back as parts under its 16 MiB limit, joined as `cat` would."""
    parts = sorted(out.glob(f"{name}.safetensors.part-*"))
    assert len(parts) >= 2 and all(p.stat().st_size <= 15 * 2 ** 20 for p in parts)
    joined = tmp_path / f"{name}.safetensors"
    joined.write_bytes(b"".join(p.read_bytes() for p in parts))
    return joined


@pytest.mark.parametrize("grow", [True, False])
def test_gpu_grow_script_runs_on_the_cpu(tmp_path, grow):
    """models/gpu_grow.sh (the next GPU slot's run) in its CPU trial mode: it must hand back the weights
    in parts under 16 MiB that join into a loadable checkpoint, grown when asked for a wider network and
    the shipped architecture otherwise (the width left out), and the validation log."""
    train, val, env = _gpu_script_setup(tmp_path)
    out = tmp_path / "out"
    shipped = load_model(default_model_path())
    width = shipped.model.config.base_channels + (8 if grow else 0)
    _run_gpu_script("gpu_grow.sh", train, val, out, env, "60", *([str(width)] if grow else []))
    lm = load_model(_joined_parts(out, "grown", tmp_path))
    assert lm.model.config == (replace(shipped.model.config, base_channels=width) if grow
                               else shipped.model.config)
    assert (lm.info.get("grown_from") or {}).get("base_channels") == (
        shipped.model.config.base_channels if grow else None)
    assert lm.info["steps"] == 2
    log = (out / "grow_train.log").read_text()
    assert log.startswith("batch size 2 ")  # BATCH=auto picked the only timed batch size
    millions = sum(p.numel() for p in shipped.model.parameters()) / 1e6
    assert '"step": 0' in log and (f"grown from {millions:.2f} M" in log) == grow
    assert (out / "bench_train_grown_b2.json").exists()


def test_growing_leaves_the_callers_model_and_random_stream_alone():
    old = _randomised().to(torch.bfloat16)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    grow_unet(old, replace(TINY, base_channels=12))
    assert torch.equal(torch.rand(3), expected)  # the new weights came from their own seeded stream
    assert all(p.dtype == torch.bfloat16 for p in old.parameters())  # not converted in place

@pytest.mark.parametrize("second", [True, False])
def test_gpu_continue_script_runs_on_the_cpu(tmp_path, second):
    """models/gpu_continue.sh in its CPU trial mode: run A continues the shipped network, run B (unless its
    seconds are 0) continues A's weights; each comes back as parts that join into a loadable checkpoint of the
    shipped architecture, trained with grey samples, with its validation log, and no more files than a GPU
    machine sends back (8)."""
    train, val, env = _gpu_script_setup(tmp_path)
    env["BATCH"] = "2"
    out = tmp_path / "out"
    _run_gpu_script("gpu_continue.sh", train, val, out, env, "60", "60" if second else "0")
    shipped = load_model(default_model_path())
    for name in ("a", "b") if second else ("a",):
        lm = load_model(_joined_parts(out, name, tmp_path))
        assert lm.model.config == shipped.model.config and lm.info["steps"] == 2
        assert lm.info["grey_prob"] == 0.2  # grey samples kept (stage 11)
        log = (out / f"{name}_train.log").read_text()
        assert '"step": 0' in log and '"step": 2' in log
    assert (out / "b_train.log").exists() == second
    if second:
        assert "a.safetensors (2 steps)" in (out / "b_train.log").read_text()  # B started from A's weights
    assert len(list(out.iterdir())) <= 8
