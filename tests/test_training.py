import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from desktop_denoiser.core.checkpoint import load_model
from desktop_denoiser.core.schedule import NoiseSchedule
from desktop_denoiser.core.training import TrainConfig, Trainer, sample_timesteps
from desktop_denoiser.core.unet import UNetConfig

TINY = UNetConfig(base_channels=8, channel_mults=(1, 2), num_res_blocks=1, time_embed_dim=16).to_dict()


@pytest.fixture
def photo_dir(tmp_path):
    from conftest import smooth_test_image

    d = tmp_path / "photos" / "sub"
    d.mkdir(parents=True)
    for i in range(3):
        img = (smooth_test_image(48, 64, seed=i) * 255).astype(np.uint8)
        Image.fromarray(img).save(d / f"p{i}.png" if i else d / f"p{i}.jpg")
    return tmp_path / "photos"


def _cfg(photo_dir, out, steps, **kw):
    kw.setdefault("device", "cpu")
    return TrainConfig(data=[str(photo_dir)], out_dir=str(out), steps=steps, batch_size=2, crop_size=32,
                       save_every=2, val_every=1000, model=TINY, warmup_steps=2, **kw)


def test_timestep_sampling_focuses_on_photo_noise_levels():
    s = NoiseSchedule()
    t = sample_timesteps(20000, s, focus_sigma=75, focus_prob=0.9, generator=torch.Generator().manual_seed(0))
    t_focus = s.sigma_to_timestep(75)
    frac = (t <= t_focus).float().mean().item()
    assert 0.9 < frac < 0.95  # 90% focused + the uniform share that falls there too
    assert t.max().item() > 900  # the whole schedule is still trained


def test_train_loss_decreases_and_resume_is_exact(photo_dir, tmp_path):
    torch.manual_seed(0)
    straight = Trainer(_cfg(photo_dir, tmp_path / "a", 6))
    res = straight.train()
    assert res["step"] == 6 and np.isfinite(res["loss"])

    first = Trainer(_cfg(photo_dir, tmp_path / "b", 6))
    first.train(until=4)  # interrupted
    resumed = Trainer(_cfg(photo_dir, tmp_path / "b", 6))
    assert resumed.step == 4
    resumed.train()
    for p, q in zip(straight.model.parameters(), resumed.model.parameters()):
        torch.testing.assert_close(p, q, atol=1e-5, rtol=1e-4)
    lm = load_model(tmp_path / "b" / "model_ema.safetensors")
    assert lm.info["steps"] == 6 and lm.model.config == UNetConfig.from_dict(TINY)


def test_training_reduces_denoising_loss(photo_dir, tmp_path):
    from desktop_denoiser.core.diffusion import Diffusion
    from desktop_denoiser.core.training import PatchSampler, list_image_files, to_unit_range

    tr = Trainer(_cfg(photo_dir, tmp_path / "c", 150, lr=3e-3, corr_prob=0.0))  # white-noise loss below
    gen = torch.Generator().manual_seed(123)
    x0 = to_unit_range(PatchSampler(list_image_files([photo_dir]), 32, gen).crops(8))
    t = torch.full((8,), 40)
    noise = torch.randn(x0.shape, generator=gen)
    d = Diffusion(tr.schedule)
    with torch.no_grad():
        before = d.training_loss(tr.model, x0, t, noise).item()
    tr.train()
    with torch.no_grad():
        after = d.training_loss(tr.model, x0, t, noise).item()
    assert after < 0.85 * before


def test_torchrun_ddp_two_cpu_processes(photo_dir, tmp_path):
    out = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    import socket

    with socket.socket() as sock:  # a free port: two test runs on one machine must not join each other's job
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={port}",
           "-m", "desktop_denoiser.cli", "train", str(photo_dir), "--out", str(out), "--steps", "3",
           "--batch-size", "2", "--crop", "32", "--device", "cpu", "--base-channels", "8",
           "--channel-mults", "1", "2", "--res-blocks", "1", "--save-every", "3"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    lm = load_model(out / "model_ema.safetensors")
    assert lm.info["steps"] == 3 and lm.info["batch_size"] == 4  # 2 ranks x 2
    # a time limit under DDP: the ranks share one clock, so they stop at the same step instead of one
    # rank waiting forever in the gradient all-reduce (the timeout below would fail the test)
    timed = [*cmd[:cmd.index("--steps")], "--steps", "1000000", "--time-limit", "3",
             *cmd[cmd.index("--steps") + 2:], "--out", str(tmp_path / "ddp_timed")]
    r = subprocess.run(timed, capture_output=True, text=True, env=env, timeout=240)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert 0 < load_model(tmp_path / "ddp_timed" / "model_ema.safetensors").info["steps"] < 1000000


def test_init_from_weights_fine_tunes_with_clipped_samples(photo_dir, tmp_path):
    base = Trainer(_cfg(photo_dir, tmp_path / "base", 2))
    base.train()
    weights = tmp_path / "base" / "model_ema.safetensors"
    tuned = Trainer(_cfg(photo_dir, tmp_path / "tuned", 3, init=str(weights), clip_prob=1.0))
    assert tuned.step == 0
    for p, q in zip(base.ema.parameters(), tuned.model.parameters()):
        torch.testing.assert_close(p, q)  # starts from the given weights, not random ones
    res = tuned.train()
    assert res["step"] == 3 and np.isfinite(res["loss"])
    lm = load_model(tmp_path / "tuned" / "model_ema.safetensors")
    assert lm.info["init"] == "model_ema.safetensors" and lm.info["clip_prob"] == 1.0
    other = dict(TINY, base_channels=16)
    with pytest.raises(ValueError, match="another model"):
        Trainer(TrainConfig(data=[str(photo_dir)], out_dir=str(tmp_path / "x"), init=str(weights), model=other))


def test_camera_samples_train_and_are_recorded(photo_dir, tmp_path, monkeypatch):
    from desktop_denoiser.core import training

    calls = []
    real = training.camera_observations

    def spy(x0, schedule, rng, sub_image_prob):
        out = real(x0, schedule, rng, sub_image_prob)
        calls.append((x0.shape[0], out[1].clone(), sub_image_prob))
        return out

    monkeypatch.setattr(training, "camera_observations", spy)
    res = Trainer(_cfg(photo_dir, tmp_path / "cam", 3, camera_prob=1.0, camera_sub_image_prob=0.5)).train()
    assert res["step"] == 3 and np.isfinite(res["loss"])
    assert [n for n, _, _ in calls] == [2, 2, 2]  # every sample of every step went through the camera
    assert all(int(t.max()) < NoiseSchedule().sigma_to_timestep(120) for _, t, _ in calls)  # at its noise level
    assert all(p == 0.5 for _, _, p in calls)  # --camera-sub-image-prob reaches the samples
    info = load_model(tmp_path / "cam" / "model_ema.safetensors").info
    assert info["camera_prob"] == 1.0 and info["camera_sub_image_prob"] == 0.5


def test_training_precision_is_resolved_and_recorded(photo_dir, tmp_path):
    from desktop_denoiser.core.precision import cpu_has_fast_bf16
    from desktop_denoiser.core.training import training_autocast_dtype

    cpu = torch.device("cpu")
    assert training_autocast_dtype("fp32", cpu) is None
    assert training_autocast_dtype("bf16", cpu) is torch.bfloat16
    assert training_autocast_dtype("auto", cpu) is (torch.bfloat16 if cpu_has_fast_bf16() else None)
    with pytest.raises(ValueError, match="precision"):
        training_autocast_dtype("fp8", cpu)
    losses = {}
    for prec in ("fp32", "bf16"):
        tr = Trainer(_cfg(photo_dir, tmp_path / prec, 2, precision=prec))
        seen = []
        tr.train(progress=lambda d: seen.append(d["loss"]))
        assert len(seen) == 2 and all(np.isfinite(seen))
        losses[prec] = seen[0]
        lm = load_model(tmp_path / prec / "model_ema.safetensors")
        assert lm.info["precision"] == prec
    # same seed, same first batch: the bf16 loss is the float32 loss to bf16 accuracy
    assert abs(losses["bf16"] - losses["fp32"]) < 0.05 * losses["fp32"]


def test_time_limit_stops_the_run_and_decays_the_learning_rate_over_the_time(photo_dir, tmp_path):
    import time

    val = tmp_path / "val"
    val.mkdir()
    Image.fromarray((np.random.default_rng(0).random((40, 40, 3)) * 255).astype(np.uint8)).save(val / "v.png")
    cfg = _cfg(photo_dir, tmp_path / "tl", 10**6, time_limit=1.5, val_data=[str(val)], val_crop=32)
    tr = Trainer(cfg)
    started = time.time()
    res = tr.train()
    assert 0 < res["step"] < 10**6 and time.time() - started < 60
    assert tr.history and tr.history[-1]["step"] == res["step"]  # validated where time ran out
    assert load_model(tmp_path / "tl" / "model_ema.safetensors").info["steps"] == res["step"]
    # the cosine decay follows the clock: half the time gone = half-way down, all of it = the 5% floor
    tr.step = cfg.warmup_steps + 1
    tr._elapsed = cfg.time_limit / 2
    assert tr._lr() == pytest.approx(cfg.lr * (0.05 + 0.95 * 0.5), rel=0.01)
    tr._elapsed = 2 * cfg.time_limit
    assert tr._lr() == pytest.approx(cfg.lr * 0.05)


def test_color_augment_makes_saturated_colours_from_a_fraction_of_the_batch():
    from desktop_denoiser.core.training import color_augment

    x = torch.rand(64, 3, 24, 24, generator=torch.Generator().manual_seed(1)) * 0.6 - 0.3  # dull colours
    y = color_augment(x, 0.5, torch.Generator().manual_seed(2))
    changed = (y != x).flatten(1).any(1)
    assert 20 <= int(changed.sum()) <= 44  # about half
    assert y.min() >= -1 and y.max() <= 1 and y.shape == x.shape
    sat = lambda z: (z - z.mean(1, keepdim=True)).abs().mean().item()  # noqa: E731
    assert sat(y[changed]) > 1.5 * sat(x[changed])  # more saturated
    assert y[changed].abs().amax((1, 2, 3)).mean() > 0.6  # pushed towards the range bounds (from <= 0.3)
    torch.testing.assert_close(y, color_augment(x, 0.5, torch.Generator().manual_seed(2)))  # seeded
    torch.testing.assert_close(color_augment(x, 0.0, torch.Generator()), x)


def test_grey_augment_gives_a_fraction_of_the_batch_luma_and_the_same_noise_in_each_channel():
    from desktop_denoiser.core.training import grey_augment

    g = torch.Generator().manual_seed(1)
    x = torch.rand(64, 3, 16, 16, generator=g) * 2 - 1
    noise = torch.randn(64, 3, 16, 16, generator=g)
    gx, gn = grey_augment(x, noise, 0.5, torch.Generator().manual_seed(3))
    grey = (gx[:, :1] == gx).all(dim=(1, 2, 3)) & (gn[:, :1] == gn).all(dim=(1, 2, 3))
    assert 20 <= int(grey.sum()) <= 44  # about half
    luma = 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
    torch.testing.assert_close(gx[grey, 0], luma[grey])  # BT.601 luma, as the grey benchmark makes it
    torch.testing.assert_close(gn[grey, 0], noise[grey, 0])  # the first channel's noise, unit variance kept
    assert torch.equal(gx[~grey], x[~grey]) and torch.equal(gn[~grey], noise[~grey])  # the rest untouched
    assert not (x[:, :1] == x).all(dim=(1, 2, 3)).any()  # the inputs themselves are not changed
    same = grey_augment(x, noise, 0.5, torch.Generator().manual_seed(3))
    assert torch.equal(same[0], gx) and torch.equal(same[1], gn)  # seeded
    assert grey_augment(x, noise, 0.0, torch.Generator()) == (x, noise)


def test_grey_samples_train_and_are_recorded(photo_dir, tmp_path, monkeypatch):
    """--grey-prob reaches the loss: every sample of every step grey (identical channels in the image and
    in the noise, after the camera-like and clipped-observation noise), and the file records the share."""
    from desktop_denoiser.core.diffusion import Diffusion

    seen = []
    real = Diffusion.training_loss

    def spy(self, model, x0, t, noise, *args, **kwargs):
        seen.append(bool((x0[:, :1] == x0).all() and (noise[:, :1] == noise).all()))
        return real(self, model, x0, t, noise, *args, **kwargs)

    monkeypatch.setattr(Diffusion, "training_loss", spy)
    res = Trainer(_cfg(photo_dir, tmp_path / "grey", 3, grey_prob=1.0, corr_prob=1.0, clip_prob=1.0)).train()
    assert res["step"] == 3 and np.isfinite(res["loss"]) and seen == [True, True, True]
    assert load_model(tmp_path / "grey" / "model_ema.safetensors").info["grey_prob"] == 1.0
    seen.clear()
    Trainer(_cfg(photo_dir, tmp_path / "colour", 1)).train()
    assert seen == [False]


def test_compiled_training_step_matches_eager(photo_dir, tmp_path):
    """--compile runs the same training: the same batches give the same weights (to float tolerance), and
    what is saved and exported are the plain module's weights (no torch.compile wrapper prefixes)."""
    eager = Trainer(_cfg(photo_dir, tmp_path / "e", 3, precision="fp32"))
    eager.train()
    compiled = Trainer(_cfg(photo_dir, tmp_path / "c", 3, precision="fp32", compile=True))
    assert compiled.net is not compiled.model  # the loss really goes through the compiled module
    compiled.train()
    for p, q in zip(eager.model.parameters(), compiled.model.parameters()):
        torch.testing.assert_close(p, q, atol=1e-5, rtol=1e-4)
    lm = load_model(tmp_path / "c" / "model_ema.safetensors")
    assert lm.info["steps"] == 3
    for (k, p), (k2, q) in zip(eager.ema.state_dict().items(), lm.model.state_dict().items()):
        assert k == k2
        torch.testing.assert_close(p, q, atol=1e-5, rtol=1e-4)


def test_crop_prefetcher_gives_each_step_its_own_reproducible_crops(photo_dir):
    """The background thread makes step k + 1's crops while step k runs; a step's crops depend only on
    (seed, step), so a resumed run (which starts at any step, with nothing prefetched) sees the same
    crops as an uninterrupted one, and other seeds (other DDP ranks) see other crops."""
    from desktop_denoiser.core.training import CropPrefetcher, PatchSampler, list_image_files, to_unit_range

    patches = PatchSampler(list_image_files([photo_dir]), 32, torch.Generator().manual_seed(0))
    run = CropPrefetcher(patches, 4, seed=7, pin=False)
    straight = [run.get(s) for s in range(5)]
    run.close()
    resumed = CropPrefetcher(patches, 4, seed=7, pin=False)
    later = [resumed.get(s) for s in range(3, 5)]
    resumed.close()
    other = CropPrefetcher(patches, 4, seed=8, pin=False)
    assert all(torch.equal(a, b) for a, b in zip(straight[3:], later))
    assert not torch.equal(straight[3], straight[4])  # steps differ
    assert not torch.equal(other.get(3), straight[3])  # seeds (ranks) differ
    other.close()
    x = to_unit_range(straight[0])
    assert straight[0].dtype == torch.uint8 and straight[0].shape == (4, 32, 32, 3)
    assert x.shape == (4, 3, 32, 32) and x.min() >= -1 and x.max() <= 1
    torch.testing.assert_close(x[1, 2], straight[0][1, :, :, 2].float() / 127.5 - 1)


def test_to_device_copies_to_the_cpu_and_queues_gpu_copies():
    from desktop_denoiser.core.transfer import to_device

    a = torch.arange(6)
    assert torch.equal(to_device(a, "cpu"), a)
    if torch.cuda.is_available():  # on a GPU machine: a queued copy from pinned memory arrives intact
        b = to_device(torch.arange(1000), "cuda")
        assert b.is_cuda and torch.equal(b.cpu(), torch.arange(1000))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (run on a lent GPU machine)")
def test_training_loop_on_cuda_matches_the_cpu_loop(photo_dir, tmp_path):
    """On a GPU the crops come pinned from the background thread and every per-step tensor is queued
    (core/transfer.py). The noise is drawn on the device there (another random stream than the CPU's),
    so the runs are compared by their loss, and the pinned crops must equal the plain ones."""
    cpu = Trainer(_cfg(photo_dir, tmp_path / "cpu", 3, precision="fp32", device="cpu"))
    gpu = Trainer(_cfg(photo_dir, tmp_path / "gpu", 3, precision="fp32", device="cuda"))
    r_cpu, r_gpu = cpu.train(), gpu.train()
    assert np.isfinite(r_gpu["loss"]) and abs(r_gpu["loss"] - r_cpu["loss"]) < 0.5 * r_cpu["loss"]
    assert next(gpu.model.parameters()).is_cuda
    from desktop_denoiser.core.training import CropPrefetcher, PatchSampler, list_image_files

    patches = PatchSampler(list_image_files([photo_dir]), 32, torch.Generator().manual_seed(0))
    pinned, plain = CropPrefetcher(patches, 4, 3, pin=True), CropPrefetcher(patches, 4, 3, pin=False)
    a, b = pinned.get(5), plain.get(5)
    assert a.is_pinned() and torch.equal(a, b)
    pinned.close(), plain.close()


@pytest.mark.parametrize("objective", ["v", "min-snr"])
def test_objectives_train_and_are_recorded(photo_dir, tmp_path, objective):
    res = Trainer(_cfg(photo_dir, tmp_path / objective, 3, objective=objective)).train()
    assert res["step"] == 3 and np.isfinite(res["loss"])
    lm = load_model(tmp_path / objective / "model_ema.safetensors")
    assert lm.info["objective"] == objective
    assert lm.model.config.prediction == ("v" if objective == "v" else "epsilon")
    if objective == "v":  # an epsilon-network cannot be fine-tuned into a v-network: a clear message
        eps_file = tmp_path / "eps" / "model_ema.safetensors"
        Trainer(_cfg(photo_dir, tmp_path / "eps", 1)).train()
        with pytest.raises(ValueError, match="predicts epsilon"):
            Trainer(_cfg(photo_dir, tmp_path / "x", 1, objective="v", init=str(eps_file)))


def test_training_state_saved_before_the_prediction_field_resumes(photo_dir, tmp_path):
    import json

    first = Trainer(_cfg(photo_dir, tmp_path / "old", 4))
    first.train(until=2)
    state = torch.load(tmp_path / "old" / "train_state.pt", weights_only=True)
    cfg = json.loads(state["config"])
    del cfg["model"]["prediction"]  # as an older version wrote it
    state["config"] = json.dumps(cfg)
    torch.save(state, tmp_path / "old" / "train_state.pt")
    assert Trainer(_cfg(photo_dir, tmp_path / "old", 4)).step == 2


def test_load_rgb_scales_16_bit_grey_photos_to_8_bits(tmp_path):
    """Pillow opens 16-bit grey PNGs as mode I;16 and its convert("RGB") clipped them at 255: a training
    folder of such photos trained on white crops."""
    from desktop_denoiser.core.training import load_rgb

    values = np.full((8, 12), 20000, np.uint16)
    values[:, 6:] = 60000
    Image.fromarray(values).save(tmp_path / "grey16.png")
    rgb = load_rgb(tmp_path / "grey16.png")
    assert rgb.dtype == np.uint8 and rgb.shape == (8, 12, 3)
    assert (rgb[:, :6] == 78).all() and (rgb[:, 6:] == 233).all()  # 20000 / 257, 60000 / 257
    Image.fromarray(np.full((8, 12), 0.5, np.float32)).save(tmp_path / "grey32.tif")  # mode F
    assert (load_rgb(tmp_path / "grey32.tif") == 128).all()
    Image.fromarray(np.full((8, 12, 3), 90, np.uint8)).save(tmp_path / "rgb.png")
    assert (load_rgb(tmp_path / "rgb.png") == 90).all()


def test_train_device_that_is_not_here_is_a_setup_error():
    from desktop_denoiser.core.training import TrainingSetupError, _pick_device

    with pytest.raises(TrainingSetupError, match="unknown device 'gpu'"):
        _pick_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(TrainingSetupError, match="no CUDA GPU is available here"):
            _pick_device("cuda")
    assert _pick_device("cpu").type == "cpu"


def test_weights_of_an_earlier_run_without_its_state_are_not_replaced(photo_dir, tmp_path):
    """With train_state.pt gone, a run into the same --out started from step 0 and overwrote the earlier
    run's model_ema.safetensors at its first save."""
    from desktop_denoiser.core.training import TrainingSetupError

    Trainer(_cfg(photo_dir, tmp_path / "run", 2)).train()
    weights = tmp_path / "run" / "model_ema.safetensors"
    before = weights.read_bytes()
    (tmp_path / "run" / "train_state.pt").unlink()
    with pytest.raises(TrainingSetupError, match="holds the weights of an earlier run.*--init"):
        Trainer(_cfg(photo_dir, tmp_path / "run", 4))
    assert weights.read_bytes() == before
    tr = Trainer(_cfg(photo_dir, tmp_path / "run", 4, init=str(weights)))  # fine-tuning them there is fine
    assert tr.step == 0
