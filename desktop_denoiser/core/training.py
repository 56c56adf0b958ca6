"""Algorithm 1 of Ho et al. (2020): train the epsilon-network on random crops of clean photos.

Features: timestep sampling focused on the noise levels photos need (``focus_sigma``), EMA weights,
AdamW, gradient clipping, resumable training state (step, optimiser, EMA, RNG) saved with
``torch.save`` and read back with ``weights_only=True``, periodic validation PSNR at sigma 15/25/50 on
8-bit clipped noisy crops, bf16 autocast (AMP) on CUDA and on CPUs with native bf16, and
DistributedDataParallel when started by ``torchrun`` (NCCL on GPUs, gloo on CPU).
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
import torch.distributed as dist
from PIL import Image

from .checkpoint import load_model, save_model
from .denoise import denoise_image, plan_denoise
from .diffusion import Diffusion
from .growth import grow_unet
from .metrics import LUMA_WEIGHTS, add_gaussian_noise_8bit, psnr
from .observation import camera_like_noise, camera_observations
from .precision import cpu_has_fast_bf16
from .sampler import run_to_end
from .schedule import NoiseSchedule, ScheduleConfig
from .transfer import to_device
from .unet import UNet, UNetConfig

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp")


@dataclass
class TrainConfig:
    data: list[str] = field(default_factory=list)
    val_data: list[str] = field(default_factory=list)
    out_dir: str = "runs/train"
    steps: int = 10000
    batch_size: int = 16
    crop_size: int = 96
    lr: float = 2e-4
    weight_decay: float = 1e-4
    warmup_steps: int = 200
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    focus_sigma: float = 80.0  # 8-bit sigma bounding the timesteps that matter for photos
    focus_prob: float = 0.9  # fraction of samples drawn from t in [0, t(focus_sigma)]
    corr_prob: float = 0.3  # fraction of focus-range samples with camera-like correlated noise (observation.py)
    clip_prob: float = 0.5  # fraction of focus-range samples whose noisy image is clipped to [-1, 1] like a file
    # the objective (Diffusion.loss_weights): "epsilon" (Ho et al.'s simple loss, every shipped network), "v"
    # (a v-parameterised network, UNetConfig.prediction, with the v-MSE) or "min-snr" (Min-SNR-gamma weights);
    # measured against each other in benchmarks/train_ablation.py
    objective: str = "epsilon"
    min_snr_gamma: float = 5.0
    # fraction of samples rendered through a random simulated camera (raw noise, demosaicing, JPEG...), at the
    # timestep of their noise level (observation.camera_observations); 0 for the standard and fast networks,
    # 0.5 for the camera network (models/README.md)
    camera_prob: float = 0.0
    # share of those camera samples given as their 2x2 pixel-shuffled sub-images (the camera-noise path's first
    # pass; observation.sub_image_tiles)
    camera_sub_image_prob: float = 0.0
    # fraction of samples with saturated colours (channel permutation, saturation boost, per-channel gain):
    # without them the network's small-t gain of ~1/sigma_t leaks the DC level of flat saturated colours
    # (flat blue at sigma 1.5 came out at 5 dB); see color_augment
    color_prob: float = 0.5
    # fraction of samples made grey: the crop's luma in all three channels and the same noise in each, as
    # the app feeds a black-and-white photo (grey_augment); 0.2 in the CPU stages that taught the shipped
    # standard and fast networks grey photos and 4:2:0 JPEGs (models/README.md, stage 11)
    grey_prob: float = 0.0
    init: str | None = None  # start from these weights (.safetensors) instead of random ones (fine-tuning)
    # with ``init``: grow its network into ``model`` (wider and/or deeper, same function at the start:
    # core/growth.py) instead of requiring the same architecture
    grow: bool = False
    time_limit: float = 0.0  # seconds of training for this run (0 = none): stop then, cosine LR over the time
    val_every: int = 1000
    save_every: int = 250
    val_images: int = 8
    val_crop: int = 256
    seed: int = 0
    device: str = "auto"
    threads: int = 0
    # autocast dtype of the forward pass: auto = bf16 on CUDA and on CPUs with native bf16 (measured 1.95x
    # faster per step on this 2-core AMD EPYC, weights and optimiser stay float32), else fp32
    precision: str = "auto"
    # torch.compile the training forward/backward (fuses the element-wise work around the convolutions;
    # measured: at most ~10 % faster on an H100 after ~40 s of compiling, slower on this CPU; see bench
    # train). The EMA and exported weights are the plain modules'.
    compile: bool = False
    model: dict = field(default_factory=lambda: UNetConfig().to_dict())
    schedule: dict = field(default_factory=lambda: ScheduleConfig().to_dict())


def list_image_files(paths) -> list[Path]:
    files: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES and not f.name.startswith("."))
        elif p.suffix.lower() in IMAGE_SUFFIXES:
            files.append(p)
    return files


class TrainingSetupError(ValueError):
    """A training run cannot start as asked: no usable photos (none found, none readable, all smaller than the
    crop), or a saved state in its output folder that cannot be read or belongs to another network."""


def load_rgb(path: Path) -> np.ndarray:
    """An image file as 8-bit RGB (HxWx3 uint8). Grey photos of 16 bits (and 32-bit integer or float ones)
    are scaled to 8 bits; Pillow's own conversion clips their values at 255, which made them white."""
    with Image.open(path) as im:
        if im.mode.startswith("I") or im.mode == "F":
            a = np.asarray(im, dtype=np.float64)
            a = a * 255.0 if im.mode == "F" else a / 257.0  # F: floats in [0, 1]; I, I;16: 16-bit values
            grey = np.clip(np.round(a), 0, 255).astype(np.uint8)
            return np.repeat(grey[:, :, None], 3, axis=2)
        return np.asarray(im.convert("RGB"), dtype=np.uint8)


def load_readable(files, skipped: list[str] | None = None) -> Iterator[np.ndarray]:
    """:func:`load_rgb` of each file that can be read; the others (damaged, not an image) are left out and
    their 'name: reason' appended to ``skipped``, so one broken file does not stop a training run."""
    for f in files:
        try:
            yield load_rgb(f)
        except (OSError, ValueError, SyntaxError) as exc:  # PIL: UnidentifiedImageError is an OSError
            if skipped is not None:
                skipped.append(f"{Path(f).name}: {exc}")


def validation_crops(paths, n: int, crop: int, skipped: list[str] | None = None) -> list[np.ndarray]:
    """Centre crops (at most ``crop``², float32 in [0, 1]) of the first ``n`` readable photos under ``paths``:
    what :func:`validate` measures during training (``TrainConfig.val_data``)."""
    out: list[np.ndarray] = []
    if n <= 0:
        return out
    for im in load_readable(list_image_files(paths), skipped):
        c = min(crop, *im.shape[:2])
        y, x = (im.shape[0] - c) // 2, (im.shape[1] - c) // 2
        out.append(im[y:y + c, x:x + c].astype(np.float32) / 255.0)
        if len(out) == n:
            break
    return out


def to_unit_range(crops: torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
    """(n, crop, crop, 3) uint8 crops -> (n, 3, crop, crop) float in [-1, 1] on ``device`` (moved there as
    uint8, a quarter of the bytes, queued from pinned memory on a GPU)."""
    return to_device(crops, device).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)


class PatchSampler:
    """Random crops with random flips / 90-degree rotations from images held in memory (uint8)."""

    def __init__(self, files, crop: int, generator: torch.Generator, skipped: list[str] | None = None):
        self.images = [im for im in load_readable(files, skipped) if min(im.shape[:2]) >= crop]
        if not self.images:
            raise TrainingSetupError(f"no readable training images of at least {crop}x{crop} pixels "
                                     f"(--crop) among {len(files)} file(s)")
        self.crop = crop
        self.gen = generator

    def crops(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """(n, crop, crop, 3) uint8 crops, the random choices drawn from ``generator`` (default: the
        sampler's own)."""
        c = self.crop
        out = np.empty((n, c, c, 3), dtype=np.uint8)
        r = torch.randint(0, 2**31 - 1, (n, 4), generator=generator or self.gen).numpy()
        for i in range(n):
            im = self.images[r[i, 0] % len(self.images)]
            y = r[i, 1] % (im.shape[0] - c + 1)
            x = r[i, 2] % (im.shape[1] - c + 1)
            p = im[y:y + c, x:x + c]
            k = r[i, 3] % 8
            p = np.rot90(p, k % 4)
            if k >= 4:
                p = p[:, ::-1]
            out[i] = p
        return torch.from_numpy(out)


class CropPrefetcher:
    """The crops of training step k are made by a background thread while step k - 1 runs, so a GPU
    does not wait for the Python crop loop. Each step's crops come from a generator seeded by
    (seed, step), so they do not depend on what ran before: prefetching keeps runs reproducible and a
    resumed run gets exactly the crops the uninterrupted one would have."""

    def __init__(self, patches: PatchSampler, batch_size: int, seed: int, pin: bool):
        self.patches, self.batch_size, self.seed, self.pin = patches, batch_size, seed, pin
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="crops")
        self._pending: tuple[int, Future] | None = None

    def _make(self, step: int) -> torch.Tensor:
        # SeedSequence mixes (seed, step) into the 32 bits that torch's CPU generator keeps of a seed
        state = int(np.random.SeedSequence([self.seed, step]).generate_state(1)[0])
        crops = self.patches.crops(self.batch_size, torch.Generator().manual_seed(state))
        return crops.pin_memory() if self.pin else crops

    def get(self, step: int) -> torch.Tensor:
        """The uint8 crops of ``step``; starts making those of ``step + 1``."""
        if self._pending is not None and self._pending[0] == step:
            crops = self._pending[1].result()
        else:
            crops = self._make(step)
        self._pending = (step + 1, self._pool.submit(self._make, step + 1))
        return crops

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._pending = None


def color_augment(x0: torch.Tensor, prob: float, generator: torch.Generator) -> torch.Tensor:
    """Saturated-colour versions of a fraction ``prob`` of the (B, 3, H, W) crops in [-1, 1]: a random
    channel permutation, a saturation boost by 1-3x about the pixel's grey level and a per-channel gain
    of 0.5-1 towards a random bound, clipped to [-1, 1] (so flat, clipped saturated areas occur too, as in
    photos of signs, flowers or stage lights). Natural photos rarely hold such colours, and a network
    that never saw them fails on them at small timesteps. The random numbers come from ``generator``
    (CPU) and reach the crops' device in one queued copy."""
    B = x0.shape[0]
    if prob <= 0 or x0.shape[1] != 3:
        return x0
    pick = torch.rand(B, generator=generator) < prob
    if not pick.any():
        return x0
    perms = torch.rand(B, 3, generator=generator).argsort(dim=1)
    sat = 1.0 + 2.0 * torch.rand(B, 1, generator=generator)
    gain = 0.5 + 0.5 * torch.rand(B, 3, generator=generator)
    towards = torch.where(torch.rand(B, 3, generator=generator) < 0.5, -1.0, 1.0)
    p = to_device(torch.cat([pick[:, None].float(), perms.float(), sat, gain, towards], dim=1), x0.device)
    pick, perms, sat = p[:, 0].view(B, 1, 1, 1) > 0.5, p[:, 1:4].long(), p[:, 4].view(B, 1, 1, 1)
    g, b = p[:, 5:8].view(B, 3, 1, 1), p[:, 8:11].view(B, 3, 1, 1)
    x = torch.gather(x0, 1, perms[:, :, None, None].expand(-1, -1, *x0.shape[2:]))
    grey = x.mean(1, keepdim=True)
    x = grey + sat * (x - grey)
    x = (g * x + (1 - g) * b).clamp_(-1.0, 1.0)
    return torch.where(pick, x.to(x0.dtype), x0)


def grey_augment(x0: torch.Tensor, noise: torch.Tensor, prob: float,
                 generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Grey versions of a fraction ``prob`` of the (B, 3, H, W) samples: the crop's luma in all three
    channels and the first channel's noise in all three, i.e. a black-and-white photo with its noise as
    the app gives it to the network (the grey channel three times). Colour-trained networks rarely see
    noise that is identical across the channels. ``noise`` may already be camera-like; its spatial
    structure is kept. Returns new tensors (the inputs are not changed)."""
    B = x0.shape[0]
    if prob <= 0 or x0.shape[1] != 3:
        return x0, noise
    pick = torch.rand(B, generator=generator) < prob
    if not pick.any():
        return x0, noise
    pick = to_device(pick, x0.device).view(B, 1, 1, 1)
    w = torch.tensor(LUMA_WEIGHTS, dtype=x0.dtype, device=x0.device).view(1, 3, 1, 1)
    grey = (x0 * w).sum(1, keepdim=True).expand_as(x0)
    return torch.where(pick, grey, x0), torch.where(pick, noise[:, :1].expand_as(noise), noise)


def sample_timesteps(n: int, schedule: NoiseSchedule, focus_sigma: float, focus_prob: float,
                     generator: torch.Generator) -> torch.Tensor:
    """Mostly t in [0, t(focus_sigma)] (denoising photos), the rest uniform over the whole schedule so
    Algorithm 2 from x_T still works."""
    T = schedule.num_timesteps
    t_focus = max(1, schedule.sigma_to_timestep(focus_sigma) + 1)
    u = torch.rand(n, generator=generator)
    t_low = torch.randint(0, t_focus, (n,), generator=generator)
    t_all = torch.randint(0, T, (n,), generator=generator)
    return torch.where(u < focus_prob, t_low, t_all)


def validate(model, schedule: NoiseSchedule, images: list[np.ndarray], sigmas=(15, 25, 50), device="cpu") -> dict:
    """Mean PSNR of the fidelity mode (sigma known) on 8-bit clipped noisy images."""
    model.eval()
    res = {}
    for s in sigmas:
        vals = []
        for k, clean in enumerate(images):
            noisy = add_gaussian_noise_8bit(clean, s, seed=1000 + k)
            out = run_to_end(denoise_image(model, schedule, noisy, plan_denoise(schedule, s), device=device, tile=None))
            vals.append(psnr(out, clean))
        res[f"psnr_{s}"] = float(np.mean(vals))
    return res


def _pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise TrainingSetupError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise TrainingSetupError("CUDA was requested but no CUDA GPU is available here; use --device cpu or auto")
    return device


TRAIN_PRECISIONS = ("auto", "fp32", "bf16")


def training_autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of training steps (None = float32); see ``TrainConfig.precision``."""
    if precision not in TRAIN_PRECISIONS:
        raise ValueError(f"precision must be one of {TRAIN_PRECISIONS}, got {precision!r}")
    if precision == "auto":
        fast = device.type == "cuda" or (device.type == "cpu" and cpu_has_fast_bf16())
        precision = "bf16" if fast else "fp32"
    return torch.bfloat16 if precision == "bf16" else None


class Trainer:
    def __init__(self, cfg: TrainConfig, log: Callable[[str], None] = print):
        self.cfg = cfg
        self.log = log
        self.distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
        self.rank = int(os.environ.get("RANK", "0"))
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        if self.distributed and not dist.is_initialized():
            backend = "nccl" if torch.cuda.is_available() and cfg.device != "cpu" else "gloo"
            dist.init_process_group(backend=backend)
        self.device = _pick_device(cfg.device)
        if self.device.type == "cuda" and self.distributed:
            local = int(os.environ.get("LOCAL_RANK", "0"))
            torch.cuda.set_device(local)
            self.device = torch.device("cuda", local)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.schedule_config = ScheduleConfig.from_dict(cfg.schedule)
        self.schedule = NoiseSchedule(self.schedule_config)
        self.diffusion = Diffusion(self.schedule)
        self.t_focus = self.schedule.sigma_to_timestep(cfg.focus_sigma)  # observation samples stay below it
        torch.manual_seed(cfg.seed)
        self.amp_dtype = training_autocast_dtype(cfg.precision, self.device)
        # channels-last: the fastest convolution layout for oneDNN and cuDNN (checkpoints are saved contiguous)
        # the objective decides what the network's output is (checked against --init's network below)
        cfg.model = {**cfg.model, "prediction": "v" if cfg.objective == "v" else "epsilon"}
        self.model = UNet(UNetConfig.from_dict(cfg.model), alphas_cumprod=self.schedule.alphas_cumprod)
        self.model.to(self.device, memory_format=torch.channels_last)
        self.ema = copy.deepcopy(self.model).eval()
        for p in self.ema.parameters():
            p.requires_grad_(False)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
                                     fused=self.device.type == "cuda")
        # no loss scaler: training autocasts to bf16 only (TRAIN_PRECISIONS), which has float32's range
        self.gen = torch.Generator().manual_seed(cfg.seed * 1000 + self.rank)
        # the batch's noise is drawn on the training device (a GPU would otherwise wait for CPU randn)
        if self.device.type == "cpu":
            self.noise_gen = self.gen
        else:
            self.noise_gen = torch.Generator(self.device).manual_seed(cfg.seed * 1000 + self.rank)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed crop size: let cuDNN pick the fastest kernels
        self._elapsed: float | None = None  # seconds of this run so far, the same on every rank
        self.step = 0
        self.out_dir = Path(cfg.out_dir)
        self.state_path = self.out_dir / "train_state.pt"
        self.history: list[dict] = []
        self.grown_from: dict | None = None  # the model config of ``init`` when it was grown into this one
        earlier = self.out_dir / "model_ema.safetensors"
        if self.state_path.exists():
            self.resume()
        elif earlier.exists() and not (cfg.init and Path(cfg.init).resolve() == earlier.resolve()):
            # weights of an earlier run without its state: starting over here would replace them
            raise TrainingSetupError(f"{earlier} holds the weights of an earlier run, but there is no "
                                     f"{self.state_path.name} beside it to resume from, and a new run would "
                                     f"replace them: fine-tune from them with --init {earlier}, or use another --out")
        elif cfg.init:
            self._init_from(Path(cfg.init))
        self.ddp = torch.nn.parallel.DistributedDataParallel(self.model) if self.distributed else self.model
        self.net = torch.compile(self.ddp) if cfg.compile else self.ddp  # what the training loss calls

    # -- state ------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "step": self.step,
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict(),
            "optimizer": self.opt.state_dict(),
            "rng": self.gen.get_state(),
            "torch_rng": torch.get_rng_state(),
            "noise_rng": self.noise_gen.get_state(),
            "config": json.dumps(asdict(self.cfg)),
            "history": json.dumps(self.history),
            "grown_from": json.dumps(self.grown_from),
        }

    def close(self) -> None:
        """End a distributed run together: every rank waits for the others (rank 0 saves and exports last),
        then the process group is taken down, as torch.distributed asks of a finished job. A no-op in one
        process."""
        if self.distributed and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()

    def save(self) -> None:
        if self.rank != 0:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        torch.save(self.state_dict(), tmp)
        tmp.replace(self.state_path)
        self.export(self.out_dir / "model_ema.safetensors")

    def resume(self) -> None:
        try:
            state = torch.load(self.state_path, map_location="cpu", weights_only=True)
            saved = json.loads(state["config"])
        except Exception as exc:  # damaged or not ours: say so and leave the file for the user to look at
            raise TrainingSetupError(f"{self.state_path} cannot be read to resume from ({type(exc).__name__}); "
                                     "move it away to start afresh, or use another --out") from exc
        same_model = UNetConfig.from_dict(saved.get("model", {})) == UNetConfig.from_dict(self.cfg.model)
        if not same_model or saved.get("schedule") != self.cfg.schedule:  # (states saved before "prediction" existed: epsilon)
            raise TrainingSetupError(f"{self.state_path} was trained with another model/schedule config; "
                                     "use another --out")
        self.model.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"])
        self.opt.load_state_dict(state["optimizer"])
        self.gen.set_state(state["rng"])
        torch.set_rng_state(state["torch_rng"])
        if "noise_rng" in state and self.noise_gen is not self.gen:
            self.noise_gen.set_state(state["noise_rng"])
        self.step = int(state["step"])
        self.history = json.loads(state.get("history", "[]"))
        self.grown_from = json.loads(state.get("grown_from", "null"))
        self.log(f"resumed from {self.state_path} at step {self.step}")

    def _init_from(self, path: Path) -> None:
        loaded = load_model(path)
        if loaded.schedule.config.to_dict() != self.cfg.schedule:
            raise TrainingSetupError(f"{path} has another schedule than this run")
        weights, grown = loaded.model, ""
        if loaded.model.config.prediction != self.cfg.model["prediction"]:
            raise TrainingSetupError(f"{path} predicts {loaded.model.config.prediction}; this run's objective "
                                     f"{self.cfg.objective!r} trains a network that predicts "
                                     f"{self.cfg.model['prediction']}")
        if loaded.model.config.to_dict() != self.cfg.model:
            if not self.cfg.grow:
                raise ValueError(f"{path} has another model config than this run (grow=True widens/deepens it)")
            old = loaded.model.num_parameters()
            weights = grow_unet(loaded.model, UNetConfig.from_dict(self.cfg.model), seed=self.cfg.seed)
            grown = f", grown from {old / 1e6:.2f} M to {weights.num_parameters() / 1e6:.2f} M parameters"
            self.grown_from = loaded.model.config.to_dict()
        self.model.load_state_dict(weights.state_dict())
        self.ema.load_state_dict(weights.state_dict())
        self.log(f"initialised from {path} ({loaded.info.get('steps', '?')} steps{grown})")

    def export(self, path: Path) -> Path:
        info = {"steps": self.step, "data": [str(d) for d in self.cfg.data], "crop_size": self.cfg.crop_size,
                "batch_size": self.cfg.batch_size * self.world, "focus_sigma": self.cfg.focus_sigma,
                "clip_prob": self.cfg.clip_prob, "corr_prob": self.cfg.corr_prob, "color_prob": self.cfg.color_prob,
                "grey_prob": self.cfg.grey_prob,
                "camera_prob": self.cfg.camera_prob, "camera_sub_image_prob": self.cfg.camera_sub_image_prob,
                "focus_prob": self.cfg.focus_prob,
                "objective": self.cfg.objective,
                "precision": "bf16" if self.amp_dtype is not None else "fp32", "history": self.history[-3:]}
        if self.cfg.init:
            info["init"] = Path(self.cfg.init).name
            if self.grown_from is not None:
                info["grown_from"] = self.grown_from
        return save_model(path, self.ema, self.schedule_config, info)

    # -- loop -------------------------------------------------------------------------------
    def _lr(self) -> float:
        cfg = self.cfg
        if self.step < cfg.warmup_steps:
            return cfg.lr * (self.step + 1) / cfg.warmup_steps
        progress = min(1.0, (self.step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps))
        if cfg.time_limit > 0 and self._elapsed is not None:  # whichever ends first: steps or time
            progress = max(progress, min(1.0, self._elapsed / cfg.time_limit))
        return cfg.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))

    def _update_ema(self) -> None:
        d = min(self.cfg.ema_decay, (1 + self.step) / (10 + self.step))  # warmed up: 0.999 from step 8,991
        with torch.no_grad():
            torch._foreach_lerp_(list(self.ema.parameters()), [p.detach() for p in self.model.parameters()], 1 - d)

    def _tick(self, t0: float) -> bool:
        """Update the run's elapsed time; True when ``cfg.time_limit`` is used up. Under DDP every rank
        takes the largest clock, so all ranks use the same learning rate and stop at the same step
        (a rank that stopped alone would leave the others waiting in the gradient all-reduce)."""
        elapsed = time.time() - t0
        if self.distributed and self.cfg.time_limit > 0:
            dev = self.device if dist.get_backend() == "nccl" else torch.device("cpu")
            e = torch.tensor([elapsed], dtype=torch.float64, device=dev)
            dist.all_reduce(e, op=dist.ReduceOp.MAX)
            elapsed = float(e.item())
        self._elapsed = elapsed
        return self.cfg.time_limit > 0 and elapsed >= self.cfg.time_limit

    def _validate(self, val_imgs: list[np.ndarray], loss: float | None, seconds: float) -> None:
        res = validate(self.ema, self.schedule, val_imgs, device=self.device)
        res.update(step=self.step, loss=loss, seconds=seconds)
        self.history.append(res)
        self.log(json.dumps(res))

    def make_batch(self, crops: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One step's training samples from ``crops`` ((B, crop, crop, 3) uint8, PatchSampler.crops): the clean
        x0 in [-1, 1] (saturated-colour and grey ones among them), the timesteps t and the noise that makes
        x_t = q_sample(x0, t, noise): white, camera-like, clipped like a file or rendered through a simulated
        camera, in the shares of the config. Draws from the trainer's generators."""
        cfg, n, t_focus = self.cfg, crops.shape[0], self.t_focus
        x0 = to_unit_range(crops, self.device)
        if cfg.color_prob > 0:
            x0 = color_augment(x0, cfg.color_prob, self.gen)
        x0 = x0.contiguous(memory_format=torch.channels_last)
        t_cpu = sample_timesteps(n, self.schedule, cfg.focus_sigma, cfg.focus_prob, self.gen)
        t = to_device(t_cpu, self.device)
        noise = torch.randn(x0.shape, generator=self.noise_gen, device=self.device)
        if cfg.corr_prob > 0:
            corr = (torch.rand(n, generator=self.gen) < cfg.corr_prob) & (t_cpu <= t_focus)
            if corr.any():
                idx = to_device(corr.nonzero().flatten(), self.device)  # an index, not a mask: no sync
                noise[idx] = camera_like_noise((int(corr.sum()), *x0.shape[1:]), self.gen,
                                               noise_generator=self.noise_gen)
        if cfg.grey_prob > 0:  # after the camera-like noise (kept, in one channel), before clipping
            x0, noise = grey_augment(x0, noise, cfg.grey_prob, self.gen)
        if cfg.clip_prob > 0:
            clip = (torch.rand(n, generator=self.gen) < cfg.clip_prob) & (t_cpu <= t_focus)
            noise = self.diffusion.clipped_observation_noise(x0, t, noise, to_device(clip, self.device))
        if cfg.camera_prob > 0:
            cam = torch.rand(n, generator=self.gen) < cfg.camera_prob
            if cam.any():
                seed = int(torch.randint(0, 2**62, (1,), generator=self.gen))
                idx = to_device(cam.nonzero().flatten(), self.device)
                x0, t, noise = x0.clone(), t.clone(), noise.clone()
                x0[idx], t[idx], noise[idx] = camera_observations(x0[idx], self.schedule,
                                                                  np.random.default_rng(seed),
                                                                  cfg.camera_sub_image_prob)
        return x0, t, noise

    def train(self, progress: Callable[[dict], None] | None = None, until: int | None = None) -> dict:
        """Train to ``cfg.steps`` (or stop early at step ``until``, e.g. to fit a time slot; resume later).

        With ``cfg.time_limit`` the run also stops after that many seconds of training, and the cosine
        learning-rate decay runs over whichever of steps or time ends first (a fixed slot on a lent GPU)."""
        cfg = self.cfg
        stop = min(cfg.steps, until) if until is not None else cfg.steps
        files = list_image_files(cfg.data)
        if not files:
            raise TrainingSetupError(f"no training images found in {', '.join(map(str, cfg.data))} "
                                    f"(looked for {', '.join(sorted(IMAGE_SUFFIXES))}, in sub-folders too)")
        skipped: list[str] = []
        patches = PatchSampler(files, cfg.crop_size, self.gen, skipped)
        val_imgs = validation_crops(cfg.val_data, cfg.val_images, cfg.val_crop, skipped) if self.rank == 0 else []
        if skipped and self.rank == 0:
            self.log(f"skipped {len(skipped)} unreadable image(s): " + "; ".join(skipped))
        if cfg.val_data and not val_imgs and self.rank == 0:
            self.log(f"warning: no readable validation photos in {', '.join(map(str, cfg.val_data))}; "
                     "this run is not validated")
        if val_imgs and self.step == 0 and cfg.init:  # the starting point of a fine-tuning run, for comparison
            self._validate(val_imgs, None, 0.0)
        self.model.train()
        t0, last_step, ema_loss = time.time(), self.step, None
        # Per step, everything the host sends to a GPU is queued (to_device), so the host prepares the
        # next step while the GPU still runs this one; the crops are made by a background thread.
        prefetch = CropPrefetcher(patches, cfg.batch_size, cfg.seed * 1000 + self.rank, pin=self.device.type == "cuda")
        out_of_time = self._tick(t0)
        try:
            while self.step < stop and not out_of_time:
                x0, t, noise = self.make_batch(prefetch.get(self.step))
                for g in self.opt.param_groups:
                    g["lr"] = self._lr()
                weights = self.diffusion.loss_weights(t, cfg.objective, cfg.min_snr_gamma)
                with torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32, enabled=self.amp_dtype is not None):
                    loss = self.diffusion.training_loss(self.net, x0, t, noise, weights)
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
                self.opt.step()
                self.step += 1
                self._update_ema()
                lv = loss.detach()  # stays on the device: reading it every step would stall a GPU
                ema_loss = lv if ema_loss is None else 0.98 * ema_loss + 0.02 * lv
                report = self.device.type == "cpu" or self.step % 25 == 0
                if progress is not None and self.rank == 0 and report:
                    dt = time.time() - t0
                    progress({"step": self.step, "steps": cfg.steps, "loss": float(ema_loss), "lr": self._lr(),
                              "it_s": (self.step - last_step) / dt if dt > 0 else 0.0})
                if self.step % cfg.save_every == 0 or self.step == cfg.steps:
                    self.save()
                out_of_time = self._tick(t0)
                if val_imgs and (self.step % cfg.val_every == 0 or self.step == cfg.steps or out_of_time):
                    self._validate(val_imgs, float(ema_loss), time.time() - t0)
                    self.model.train()
        finally:
            prefetch.close()
        self.save()
        return {"step": self.step, "loss": None if ema_loss is None else float(ema_loss), "history": self.history}
