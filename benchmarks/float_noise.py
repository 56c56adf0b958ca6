"""Ours on unclipped float Gaussian noise (the papers' setting) next to the same noise as 8-bit files.

    python benchmarks/float_noise.py [--data ../shared/data/dev/CBSD68] [--sigmas 15 25 50] [--limit N]

Fidelity mode, σ known, white-noise path, one thread. Prints mean PSNR per σ for both inputs: if they
match, a gap to published float-noise numbers is not an artefact of the 8-bit benchmark (bench_awgn.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

from desktop_denoiser.bench.common import STANDARD_HELP, app_denoiser
from desktop_denoiser.core.metrics import psnr
from desktop_denoiser.core.sampler import run_to_end
from desktop_denoiser.pipeline.imageio import list_images, read_image
from desktop_denoiser.pipeline.jobs import DenoiseOptions


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data/dev/CBSD68")
    ap.add_argument("--sigmas", type=float, nargs="+", default=[15, 25, 50])
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--standard", metavar="FILE", help=STANDARD_HELP)
    args = ap.parse_args()
    torch.set_num_threads(1)
    paths = list_images(Path(args.data))
    paths = paths[: args.limit] if args.limit else paths
    denoiser = app_denoiser(args.standard)
    print("| σ | float noise (dB) | 8-bit clipped (dB) | images |\n| ---: | ---: | ---: | ---: |")
    for sigma in args.sigmas:
        res = {"float": [], "8bit": []}
        for i, path in enumerate(paths):
            clean = read_image(path).pixels.astype(np.float32)
            noisy = clean + np.random.default_rng(i).standard_normal(clean.shape).astype(np.float32) * sigma / 255
            inputs = {"float": noisy, "8bit": (np.round(np.clip(noisy, 0, 1) * 255) / 255).astype(np.float32)}
            for k, y in inputs.items():
                opts = DenoiseOptions(sigma=sigma, noise_model="gaussian")
                res[k].append(psnr(run_to_end(denoiser.run(y, opts)).pixels, clean))
        print(f"| {sigma:g} | {np.mean(res['float']):.2f} | {np.mean(res['8bit']):.2f} | {len(paths)} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
