"""``bench train``: training throughput (Algorithm 1 steps per second) of the shipped architecture on
this machine's device, the plain training step against the ``--compile`` one, in the same run.

A lent GPU is short (15 minutes a session), so its training rate decides how far a session gets: run
this first on a GPU machine (``--device cuda --batch-size 128 --crop 128``) to see what the loop
delivers there before starting a timed training run."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from ..core.training import TrainConfig, Trainer, list_image_files
from .report import fmt, table

VARIANTS = ("eager", "compile")


def choose_batch_size(timed: dict[int, float], sizes: list[int], min_gain: float = 1.25) -> int:
    """The training batch size for a GPU slot from ``bench train`` results (batch size -> training
    Mpixel/s): the fastest in pixels/s if it beats the smallest timed batch by ``min_gain`` (a bigger
    batch takes fewer optimiser steps per pixel, so it has to buy clearly more pixels), else the smallest.
    With nothing timed (a failed benchmark), the smallest of ``sizes``."""
    if not timed:
        return min(sizes)
    small = min(timed)
    best = max(timed, key=timed.get)
    return best if timed[best] >= min_gain * timed[small] else small


def main_choose(argv: list[str]) -> int:
    """``python -m desktop_denoiser.bench.train DIR SIZE...``: print the batch size chosen from the
    ``bench_train_grown_b{SIZE}.json`` files in DIR (used by models/gpu_grow.sh)."""
    import json

    folder, sizes = Path(argv[0]), [int(a) for a in argv[1:]]
    timed = {}
    for bs in sizes:
        f = folder / f"bench_train_grown_b{bs}.json"
        if f.exists():
            timed[bs] = json.loads(f.read_text())["results"][0]["mpix_s"]
    print(choose_batch_size(timed, sizes))
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default=None,
                   help="folder of training photos (default: 8 synthetic 512x384 photos made on the fly)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--crop", type=int, default=96)
    p.add_argument("--steps", type=int, default=50, help="timed steps per variant (after the warm-up steps)")
    p.add_argument("--warmup", type=int, default=25,
                   help="untimed steps first (cuDNN autotuning, torch.compile's compilation)")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)


def _synthetic_photos(folder: Path, n: int = 8) -> None:
    from .speed import synthetic_photo

    for i in range(n):
        img = synthetic_photo(0.2, seed=i)
        Image.fromarray(np.round(img * 255).astype(np.uint8)).save(folder / f"photo{i}.png")


def _rate(cfg: TrainConfig, warmup: int, steps: int) -> dict:
    """Steps per second between the end of step ``warmup`` and step ``warmup + steps``. The progress
    callback reads the loss, which waits for the device, so the clock sees finished steps only (on a
    GPU the callback comes every 25 steps: warmup and steps are rounded up to multiples of 25)."""
    trainer = Trainer(cfg, log=lambda s: None)
    marks: dict[int, float] = {}
    trainer.train(progress=lambda d: marks.setdefault(d["step"], time.perf_counter()))
    t0, t1 = marks[warmup], marks[warmup + steps]
    return {"seconds": t1 - t0, "it_s": steps / (t1 - t0), "steps": steps}


def run(args, ctx) -> dict:
    cuda = ctx.device.startswith("cuda")
    warmup, steps = args.warmup, args.steps
    if cuda:  # the progress callback comes every 25 steps there
        warmup, steps = -(-warmup // 25) * 25, -(-steps // 25) * 25
    model = ctx.denoiser.model("cpu")
    rows, results = [], []
    with tempfile.TemporaryDirectory(prefix="bench_train_") as tmp:
        data = Path(args.data) if args.data else Path(tmp) / "photos"
        if args.data is None:
            data.mkdir()
            _synthetic_photos(data)
        elif not list_image_files([data]):
            raise FileNotFoundError(f"no training images in {data}")
        base = None
        for variant in args.variants:
            cfg = TrainConfig(data=[str(data)], out_dir=str(Path(tmp) / variant), steps=warmup + steps,
                              batch_size=args.batch_size, crop_size=args.crop, save_every=10**9,
                              device=ctx.device, threads=ctx.threads, compile=variant == "compile",
                              model=model.model.config.to_dict(), schedule=model.schedule.config.to_dict())
            r = _rate(cfg, warmup, steps)
            r.update(variant=variant, mpix_s=r["it_s"] * args.batch_size * args.crop ** 2 / 1e6)
            base = base or r["it_s"]
            r["vs_eager"] = r["it_s"] / base if args.variants[0] == "eager" else None
            results.append(r)
            rows.append([variant, ctx.device, str(args.batch_size), f"{args.crop}²", fmt(r["it_s"], 2),
                         fmt(r["mpix_s"], 2), fmt(r["vs_eager"], 2) + "×" if r["vs_eager"] else "–"])
    which = f"`{Path(args.model).name}`" if args.model else "the shipped model"
    md = [f"Architecture of {which} ({sum(p.numel() for p in model.model.parameters()) / 1e6:.2f} M "
          f"parameters), {'synthetic photos' if args.data is None else f'photos of `{args.data}`'}; "
          f"{warmup} untimed warm-up steps, then {steps} timed steps per variant.\n",
          table(["training step", "device", "batch", "crop", "it/s", "training Mpixel/s", "vs eager"], rows)]
    return {"section": "train", "results": results, "markdown": "\n".join(md)}


if __name__ == "__main__":
    import sys

    sys.exit(main_choose(sys.argv[1:]))
