"""Ours on grey (black-and-white) photos: noise estimate, blind vs σ known, and clean photos unchanged.

    python benchmarks/grey_photos.py [--data DIR ...] [--every N] [--sigmas 5 15 25 50]

The colour dev photos are converted to 8-bit grey (ITU-R 601 luma). Clean: every photo of each folder
goes through the app's default (blind) path and should come back unchanged (PSNR >= 45 dB against the
input). Noisy: every Nth photo with seeded 8-bit clipped Gaussian noise, denoised blind (the default)
and with σ known; the σ estimate's mean absolute error. One thread; prints markdown tables.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

from desktop_denoiser.bench.common import STANDARD_HELP, app_denoiser, grey_photo
from desktop_denoiser.core.metrics import add_gaussian_noise_8bit, psnr
from desktop_denoiser.core.sampler import run_to_end
from desktop_denoiser.pipeline.imageio import list_images
from desktop_denoiser.pipeline.jobs import DenoiseOptions


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", nargs="+", default=["../shared/data/dev/CBSD68", "../shared/data/dev/McMaster"])
    ap.add_argument("--every", type=int, default=4, help="noisy runs on every Nth photo of the first folder")
    ap.add_argument("--sigmas", type=float, nargs="+", default=[5, 15, 25, 50])
    ap.add_argument("--standard", metavar="FILE", help=STANDARD_HELP)
    args = ap.parse_args()
    torch.set_num_threads(1)
    d = app_denoiser(args.standard)
    print("| grey photos, no noise added | n | PSNR ≥ 45 dB vs input | taken for camera noise | median (dB, capped at 99) "
          "| worst (dB) |")
    print("| :--- | ---: | ---: | ---: | ---: | ---: |")
    for folder in args.data:
        rows = []
        for path in list_images(Path(folder)):
            g = grey_photo(path)
            est = d.estimate(g)
            out = run_to_end(d.run(g, DenoiseOptions(), d.plan(g, DenoiseOptions(), analysis=est.analysis)))
            rows.append((min(psnr(out.pixels, g), 99.0), est.correlated))
        r = np.array(rows, dtype=np.float64)
        print(f"| {Path(folder).name} | {len(r)} | {int((r[:, 0] >= 45).sum())}/{len(r)} | {int(r[:, 1].sum())} "
              f"| {np.median(r[:, 0]):.2f} | {r[:, 0].min():.2f} |", flush=True)
    paths = list_images(Path(args.data[0]))[:: args.every]
    print(f"\n{len(paths)} grey photos of `{args.data[0]}` (every {args.every}th), 8-bit clipped noise:\n")
    print("| σ | σ estimate (mean) | MAE | noisy (dB) | ours blind (dB) | ours σ known (dB) | blind − known |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for sigma in args.sigmas:
        rows = []
        for i, path in enumerate(paths):
            g = grey_photo(path)
            noisy = add_gaussian_noise_8bit(g, sigma, seed=1000 * i + int(sigma))
            blind = run_to_end(d.run(noisy, DenoiseOptions()))
            known = run_to_end(d.run(noisy, DenoiseOptions(sigma=sigma)))
            rows.append((blind.sigma, psnr(noisy, g), psnr(blind.pixels, g), psnr(known.pixels, g)))
        r = np.array(rows, dtype=np.float64)
        print(f"| {sigma:g} | {r[:, 0].mean():.2f} | {np.abs(r[:, 0] - sigma).mean():.2f} | {r[:, 1].mean():.2f} "
              f"| {r[:, 2].mean():.2f} | {r[:, 3].mean():.2f} | {r[:, 2].mean() - r[:, 3].mean():+.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
