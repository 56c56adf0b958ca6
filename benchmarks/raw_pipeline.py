"""Ours on a synthetic camera raw path: noise we have no real photos of (a known limit, README).

    python benchmarks/raw_pipeline.py [--data DIR ...] [--every N ...] [--gains 0 0.0003 0.002 0.006]
                                      [--network auto|standard|fast|camera] [--model FILE]

Clean photos (every Nth of each folder) go through ``desktop_denoiser.bench.camera.raw_pipeline``
(RGGB mosaic, Poisson-Gaussian noise with the given gain, bilinear or edge-aware demosaicing, 8-bit
sRGB), saved as is (PNG/TIFF) or as JPEG; the reference is the same path without noise (gain 0: the
noise-free export itself, which must come back unchanged). Per row: ours blind (the app's default),
and, for comparison, the camera-noise path at the true per-pixel noise level and at 0.6 x that level
(what a better estimate could give); how many photos get the camera-noise suggestion, and what
choosing *Camera noise* (no sigma) then gives. One thread; prints a markdown table.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

from desktop_denoiser.bench.camera import DEMOSAIC, jpeg, raw_pipeline
from desktop_denoiser.core.metrics import psnr
from desktop_denoiser.core.sampler import run_to_end
from desktop_denoiser.pipeline.devices import NETWORKS
from desktop_denoiser.pipeline.imageio import list_images, read_image
from desktop_denoiser.pipeline.jobs import DenoiseOptions, Denoiser


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", nargs="+", default=["../shared/data/dev/McMaster", "../shared/data/dev/CBSD68"])
    ap.add_argument("--every", type=int, nargs="+", default=[3, 12], help="every Nth photo of each folder")
    ap.add_argument("--gains", type=float, nargs="+", default=[0.0, 0.0003, 0.002, 0.006])
    ap.add_argument("--jpeg", type=int, nargs="*", default=[0, 92], help="0 = lossless (PNG/TIFF)")
    ap.add_argument("--network", choices=NETWORKS, default="auto",
                    help="which shipped network (DenoiseOptions.network)")
    ap.add_argument("--model", default=None, help="a model file instead of the shipped networks")
    args = ap.parse_args()
    torch.set_num_threads(1)
    paths = []
    for folder, n in zip(args.data, args.every + args.every[-1:] * len(args.data)):
        paths += list_images(Path(folder))[::n]
    cleans = [read_image(p).pixels.astype(np.float32) for p in paths]
    cleans = [c[: c.shape[0] // 2 * 2, : c.shape[1] // 2 * 2] for c in cleans]
    denoiser = Denoiser(args.model)
    base = DenoiseOptions(network=args.network)
    print(f"{len(cleans)} photos: {', '.join(f'every {n}-th photo of `{d}`' for d, n in zip(args.data, args.every))}\n")
    print("| demosaic | gain | saved as | noise std | noisy (dB) | ours blind (dB) | worst photo (dB vs noisy) "
          "| camera noise | suggested | Camera noise chosen (dB; worst vs noisy) "
          "| camera path at the true level / at 0.6× (dB) |")
    print("| :--- | ---: | :--- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for demosaic in DEMOSAIC:
        for gain in args.gains:
            for q in args.jpeg:
                res = []
                for i, clean in enumerate(cleans):
                    ref = raw_pipeline(clean, gain or 1.0, i, demosaic, noise=False)
                    noisy = raw_pipeline(clean, gain, i, demosaic) if gain else ref
                    if q:
                        ref, noisy = jpeg(ref, q), jpeg(noisy, q)
                    std = float(np.std(noisy - ref)) * 255
                    plan = denoiser.plan(noisy, base)
                    out = run_to_end(denoiser.run(noisy, base, plan)).pixels
                    # what the user gets after choosing Noise type: Camera noise (no sigma) for a grainy photo
                    chosen = run_to_end(denoiser.run(noisy, replace(base, noise_model="real"))).pixels
                    oracle = []
                    for f in (1.0, 0.6):
                        if std > 0.5:
                            opts = replace(base, sigma=f * std, noise_model="real")
                            oracle.append(psnr(run_to_end(denoiser.run(noisy, opts)).pixels, ref))
                        else:
                            oracle.append(float("nan"))
                    res.append((std, min(psnr(noisy, ref), 99.0), min(psnr(out, ref), 99.0), plan.real, *oracle,
                                plan.suggest_camera_noise, min(psnr(chosen, ref), 99.0)))
                r = np.array(res, dtype=np.float64)
                # noise-free exports: the worst output against the input itself (should be >= 45 dB)
                worst = f"{r[:, 2].min():.2f} dB" if not gain else f"{(r[:, 2] - r[:, 1]).min():+.2f}"
                orc = "–" if np.isnan(r[:, 4]).all() else f"{np.nanmean(r[:, 4]):.2f} / {np.nanmean(r[:, 5]):.2f}"
                chosen = f"{r[:, 7].mean():.2f} ({(r[:, 7] - r[:, 1]).min():+.2f})" if gain else \
                    f"{r[:, 7].mean():.2f} ({r[:, 7].min():.2f} dB)"
                print(f"| {demosaic} | {gain:g} | {'JPEG q%d' % q if q else 'PNG'} | {r[:, 0].mean():.2f} | "
                      f"{r[:, 1].mean():.2f} | {r[:, 2].mean():.2f} | {worst} | {int(r[:, 3].sum())}/{len(cleans)} "
                      f"| {int(r[:, 6].sum())}/{len(cleans)} | {chosen} | {orc} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
