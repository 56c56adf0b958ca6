"""Which training options pay: the timestep sampling and the objective, trained side by side.

    python benchmarks/train_ablation.py [--steps 2500] [--seeds 0 1] [--configs ...] [--write]

Each configuration trains the same small network from random weights (Algorithm 1, the shipped
recipe's other settings: clipped, camera-like and saturated-colour samples, AdamW, EMA, cosine decay)
for the same number of steps on the same crops, then is measured the way the app uses it:

* **denoising**: fidelity-mode PSNR at σ 15 / 25 / 50 (σ known, 8-bit clipped noise) on the validation
  crops (``core.training.validate``, the curve printed during training);
* **the rest of the schedule**: the PSNR of the predicted x0 at t = 250, 500, 750, 999 (fixed noise
  draws) on the same crops, i.e. how well the timesteps that only Algorithm 2 from x_T uses were learnt.

Runs resume (``--out`` keeps each run's training state and result), so the table can be built over
several sessions. ``--write`` puts it into the ``train_ablation`` section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

from desktop_denoiser.bench.common import machine_info, set_threads
from desktop_denoiser.bench.report import DEFAULT_RESULTS, fmt, provenance, table, update_section
from desktop_denoiser.core.diffusion import Diffusion
from desktop_denoiser.core.metrics import psnr
from desktop_denoiser.core.training import TrainConfig, Trainer, validate, validation_crops
from desktop_denoiser.core.unet import UNetConfig

# name -> (description, TrainConfig overrides); "shipped" is the recipe every shipped network used
CONFIGS = {
    "shipped": ("ε-MSE, t 90 % in [0, t(σ=80)] + 10 % uniform (shipped)", {}),
    "uniform": ("ε-MSE, t uniform over [0, 999] (Ho et al.)", {"focus_prob": 0.0}),
    "focus-only": ("ε-MSE, t only in [0, t(σ=80)]", {"focus_prob": 1.0}),
    "v": ("v-prediction (the network predicts v; v-MSE), t as shipped", {"objective": "v"}),
    "min-snr": ("ε-MSE with Min-SNR-5 weights (min(SNR, 5)/SNR), t as shipped", {"objective": "min-snr"}),
}
HIGH_T = (250, 500, 750, 999)
SIGMAS = (15, 25, 50)


@torch.no_grad()
def high_t_psnr(model, diffusion: Diffusion, crops: list[np.ndarray]) -> dict[int, float]:
    """PSNR (dB) of the predicted x0 at the timesteps of :data:`HIGH_T`, where only Algorithm 2 from x_T
    goes (σ_t = 122 / 439 / 2,216 / 20,069 levels); the same noise draws for every model."""
    model.eval()
    x0 = torch.from_numpy(np.stack(crops).transpose(0, 3, 1, 2)).mul(2).sub(1)
    res = {}
    for t in HIGH_T:
        noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(t))
        tt = torch.full((x0.shape[0],), t, dtype=torch.long)
        x_t = diffusion.q_sample(x0, tt, noise)
        pred = diffusion.pred_original_sample(x_t, tt, model(x_t, tt)).clamp(-1, 1)
        res[t] = float(np.mean([psnr(((p + 1) / 2).numpy(), ((c + 1) / 2).numpy()) for p, c in zip(pred, x0)]))
    return res


def run_dir(args, name: str, seed: int) -> Path:
    """Where one run keeps its training state, weights and ``result.json``."""
    return Path(args.out) / f"{name}-seed{seed}"


def run_one(name: str, seed: int, args, val: list[np.ndarray]) -> dict:
    out = run_dir(args, name, seed)
    done = out / "result.json"
    settings = {k: getattr(args, k) for k in ("data", "val", "val_images", "val_crop", "steps", "batch_size", "crop",
                                              "lr", "base_channels")}
    if done.exists():
        res = json.loads(done.read_text())
        if res.get("settings", settings) != settings:
            raise SystemExit(f"{done} was made with other settings ({res['settings']}); use another --out")
        return res
    model = UNetConfig(base_channels=args.base_channels, channel_mults=(1, 2, 4)).to_dict()
    cfg = TrainConfig(data=[args.data], out_dir=str(out), steps=args.steps, batch_size=args.batch_size,
                      crop_size=args.crop, lr=args.lr, save_every=500, seed=seed, threads=args.threads,
                      device="cpu", model=model, **CONFIGS[name][1])
    trainer = Trainer(cfg, log=lambda s: None)
    t0 = time.time()
    trainer.train()
    res = {"config": name, "seed": seed, "settings": settings, "steps": trainer.step, "train_s": time.time() - t0,
           **validate(trainer.ema, trainer.schedule, val, sigmas=SIGMAS),
           **{f"x0_{t}": v for t, v in high_t_psnr(trainer.ema, trainer.diffusion, val).items()}}
    done.write_text(json.dumps(res, indent=1))
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="../shared/data/train/CBSD432")
    ap.add_argument("--val", default="../shared/data/dev/McMaster", help="validation photos (the training runs' own)")
    ap.add_argument("--val-images", type=int, default=8)
    ap.add_argument("--val-crop", type=int, default=256)
    ap.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--steps", type=int, default=2500)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--crop", type=int, default=64)
    ap.add_argument("--lr", type=float, default=4e-4, help="stage 1's rate (training from random weights)")
    ap.add_argument("--base-channels", type=int, default=32, help="the fast network's width")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="runs/train_ablation")
    ap.add_argument("--report-only", action="store_true",
                    help="train nothing: the table of the finished runs in --out (e.g. more seeds for some options)")
    ap.add_argument("--write", action="store_true", help="put the table into the results file's train_ablation section")
    ap.add_argument("--results", default=str(DEFAULT_RESULTS), help="results markdown file (default %(default)s)")
    args = ap.parse_args(argv)
    set_threads(args.threads)
    val = validation_crops([args.val], args.val_images, args.val_crop)
    results = []
    for seed in args.seeds:
        for name in args.configs:
            if args.report_only and not (run_dir(args, name, seed) / "result.json").exists():
                continue
            r = run_one(name, seed, args, val)
            results.append(r)
            print(json.dumps(r), file=sys.stderr, flush=True)
    rows = []
    base = {s: next((r for r in results if r["config"] == "shipped" and r["seed"] == s), None) for s in args.seeds}
    for name in args.configs:
        rs = [r for r in results if r["config"] == name]
        if not rs:
            continue
        mean = {k: float(np.mean([r[k] for r in rs])) for k in rs[0] if k.startswith(("psnr_", "x0_"))}
        paired = [r for r in rs if base[r["seed"]]]  # the same seed: the same crops, noise and initial weights
        diff = " / ".join(fmt(float(np.mean([r[f"psnr_{s}"] - base[r["seed"]][f"psnr_{s}"] for r in paired])), signed=True)
                          for s in SIGMAS) if paired and name != "shipped" else "–"
        rows.append([CONFIGS[name][0], *(fmt(mean[f"psnr_{s}"]) for s in SIGMAS), diff,
                     *(fmt(mean[f"x0_{t}"]) for t in HIGH_T), f"{np.mean([r['train_s'] for r in rs]) / 60:.0f}",
                     ", ".join(str(r["seed"]) for r in rs)])
    shipped = [r for r in results if r["config"] == "shipped"]
    spread = ""
    if len(shipped) > 1:
        spread = ("\n\nThe same recipe's spread over seeds (max − min of the shipped row, σ 15 / 25 / 50): "
                  + " / ".join(f"{np.ptp([r[f'psnr_{s}'] for r in shipped]):.2f}" for s in SIGMAS) + " dB.")
    command = shlex.join(["python", "benchmarks/train_ablation.py", *(sys.argv[1:] if argv is None else argv)])
    md = [provenance(command, machine_info(args.threads), None),
          "",
          f"Each row: a {args.base_channels}-base-channel network (the fast network's architecture) trained from "
          f"random weights for {args.steps} steps of batch {args.batch_size}, {args.crop}² crops of `{args.data}`, "
          f"lr {args.lr:g} (cosine), mean over the seeds named; measured on "
          f"{len(val)} centre crops ({args.val_crop}²) of `{args.val}`.",
          "",
          table(["training option", *(f"PSNR σ={s}" for s in SIGMAS), "vs shipped, same seed (σ 15 / 25 / 50)",
                 *(f"x0 PSNR t={t}" for t in HIGH_T), "min / run", "seeds"], rows) + spread]
    text = "\n".join(md)
    print(text)
    if args.write:
        update_section(args.results, "train_ablation", text, title="Training options (ablation)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
